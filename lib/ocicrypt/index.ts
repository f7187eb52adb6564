/** ocicrypt layer encryption (JWE recipients and CoCo's attestation-agent key provider). */
export { LAYER_CIPHER, LayerEncryptStream, LayerDecryptStream, newLayerKey, type LayerKey } from './cipher.js';
export { jweEncrypt, jweDecrypt, concatKdf } from './jwe.js';
export { AA_ANNOTATION, aaWrap, aaParse, aaUnwrap, parseKbsId, type AaAlgorithm, type AnnotationPacket } from './keyprovider-aa.js';
export { PUBOPTS, JWE_ANNOTATION, KEYS_PREFIX, isEncryptedType, encryptedType, plainType, encodePrivateOptions, decodePrivateOptions, encodePublicOptions, decodePublicOptions, type PrivateOptions, type PublicOptions } from './annotations.js';
export { parseRecipient, parsePublicKey, parsePrivateKey, readDecryptionKeys, readKek, type Recipient, type DecryptionKeys } from './keys.js';
export { encryptLayer, decryptLayer, encryptedImage, decryptingImage, isEncryptedImage, selectLayers, unwrapLayerOptions, EncryptedLayer, DecryptedLayer, type EncryptLayerOptions, type EncryptImageOptions, type ResolvedRecipient } from './layers.js';
export { verifyOcicrypt, bundleKeks, type VerifyOcicryptOptions, type OcicryptReport, type OcicryptFinding, type OcicryptLayerReport } from './verify.js';
