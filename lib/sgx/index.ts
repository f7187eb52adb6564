/**
 * Intel SGX enclave measurement and signing for Gramine 1.9, without Gramine's tools: manifest
 * expansion, enclave layout and MRENCLAVE, SIGSTRUCT reading, building and signing.
 * See docs/signing.md.
 */
export { signGramineEnclave } from './sign.js';
export type { CallbackSigner, EnclaveSigner, PrivateKeySigner, SignGramineOptions, SignedEnclave } from './sign.js';
export { expandGramineManifest, readGramineSgxSettings, parseSize, DEFAULT_LOADER_ENTRYPOINT_URI } from './manifest.js';
export type { ExpandManifestOptions, GramineSgxSettings, SgxAttributes } from './manifest.js';
export { measureGramineEnclave, measureAreas } from './measure.js';
export type { Measurement, MeasureOptions } from './measure.js';
export { layoutGramineEnclave, formatEnclaveAreas, describeSecinfo } from './layout.js';
export type { EnclaveArea, EnclaveAreaName, EnclaveLayoutOptions } from './layout.js';
export { parseElf } from './elf.js';
export type { ElfImage, ElfLoadSegment } from './elf.js';
export {
  parseSigstruct, verifySigstructSignature, buildSigstruct, setSigstructSignature, sigstructSigningData,
} from './sigstruct.js';
export type { Sigstruct, SigstructBody } from './sigstruct.js';
