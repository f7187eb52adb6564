/**
 * ocicrypt's layer annotations (containers/ocicrypt encryption.go) and media types (spec/spec.go).
 * JSON byte fields are standard padded base64, as Go's encoding/json writes `[]byte`.
 */
import { EnclavifyError } from '../oci/errors.js';
import { LAYER_CIPHER, type LayerKey } from './cipher.js';

export const ENC_PREFIX = 'org.opencontainers.image.enc.';
export const PUBOPTS = 'org.opencontainers.image.enc.pubopts';
export const KEYS_PREFIX = 'org.opencontainers.image.enc.keys.';
export const JWE_ANNOTATION = 'org.opencontainers.image.enc.keys.jwe';
export const ENCRYPTED_SUFFIX = '+encrypted';

/** Whether a layer media type is an ocicrypt-encrypted one. */
export const isEncryptedType = (mt: string): boolean => mt.endsWith(ENCRYPTED_SUFFIX);

/** The encrypted twin of an OCI layer media type (`…tar+gzip` → `…tar+gzip+encrypted`). */
export function encryptedType(ociType: string): string {
  if (!ociType.startsWith('application/vnd.oci.image.layer.')) throw new EnclavifyError('OCICRYPT_UNSUPPORTED', `cannot encrypt a layer of media type ${ociType} (OCI layer types only)`);
  return ociType + ENCRYPTED_SUFFIX;
}

/** The plain media type under an encrypted one. */
export const plainType = (mt: string): string => (isEncryptedType(mt) ? mt.slice(0, -ENCRYPTED_SUFFIX.length) : mt);

/** ocicrypt's private options of a layer: what the wrapped keys hold. */
export interface PrivateOptions extends LayerKey {
  /** Digest of the layer blob before encryption. */
  readonly digest: string;
}

/** Public options: the cipher and the ciphertext's HMAC. */
export interface PublicOptions {
  readonly hmac: Uint8Array;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
function unb64(v: unknown, what: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what} is not base64`);
  return Buffer.from(v, 'base64');
}
function parseObj(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what} is not JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** The JSON bytes of private options, as ocicrypt writes them. */
export function encodePrivateOptions(o: PrivateOptions): Buffer {
  return Buffer.from(JSON.stringify({ symkey: b64(o.symkey), digest: o.digest, cipheroptions: { nonce: b64(o.nonce) } }));
}

export function decodePrivateOptions(bytes: Uint8Array, what: string): PrivateOptions {
  const o = parseObj(bytes, `${what}: the unwrapped layer options (a wrong A256CTR key-encryption key gives garbage here)`);
  const co = (o.cipheroptions ?? {}) as Record<string, unknown>;
  const symkey = unb64(o.symkey, `${what}: symkey`);
  const nonce = unb64(co.nonce, `${what}: cipheroptions.nonce`);
  if (symkey.length !== 32 || nonce.length !== 16) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: the layer options hold a ${symkey.length}-byte key and a ${nonce.length}-byte nonce (32 and 16 expected)`);
  if (typeof o.digest !== 'string') throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: the layer options name no digest of the plain layer`);
  return { symkey, nonce, digest: o.digest };
}

/** The `pubopts` annotation value. */
export function encodePublicOptions(o: PublicOptions): string {
  return b64(Buffer.from(JSON.stringify({ cipher: LAYER_CIPHER, hmac: b64(o.hmac), cipheroptions: {} })));
}

/**
 * Parses `pubopts`. A nonce (or anything else) in the *public* cipher options is refused:
 * ocicrypt merges public over private options, so such a value would silently replace the
 * wrapped one (skopeo is fooled by it).
 */
export function decodePublicOptions(value: string | undefined, what: string): PublicOptions {
  if (value === undefined) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: encrypted layer without ${PUBOPTS}`);
  const o = parseObj(unb64(value, `${what}: ${PUBOPTS}`), `${what}: ${PUBOPTS}`);
  if (o.cipher !== LAYER_CIPHER) throw new EnclavifyError('OCICRYPT_UNSUPPORTED', `${what}: layer cipher ${String(o.cipher)} is not supported (${LAYER_CIPHER})`);
  const co = o.cipheroptions;
  if (co !== undefined && co !== null && (typeof co !== 'object' || Object.keys(co).length > 0)) {
    throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: public cipher options must be empty (a public nonce would override the wrapped one)`);
  }
  const hmac = unb64(o.hmac, `${what}: hmac`);
  if (hmac.length !== 32) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: the HMAC in ${PUBOPTS} is ${hmac.length} bytes (32 expected)`);
  return { hmac };
}

/** Annotations less ocicrypt's own (what a decrypted layer keeps). */
export function withoutEncAnnotations(a: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!a) return undefined;
  const kept = Object.fromEntries(Object.entries(a).filter(([k]) => !k.startsWith(ENC_PREFIX)));
  return Object.keys(kept).length ? kept : undefined;
}
