/**
 * The small set of primitives the rest of enclavify needs, behind one interface so that the same
 * code runs on node:crypto (OpenSSL, the fast path) or on @noble (pure JS, portable).
 *
 * Keys for AES are 16 bytes (AES-128) everywhere: that is what Gramine's and SCONE's formats use,
 * and pinning it catches a wrong key early instead of silently switching to AES-256.
 */
import { EnclavifyError } from '../oci/errors.js';

/** Incremental SHA-256: feed data with `update`, finish once with `digest`. */
export interface Sha256Hash {
  /** Adds `data` to the hash; returns the same object for chaining. */
  update(data: Uint8Array): Sha256Hash;
  /** Returns the 32-byte digest. The object must not be used afterwards. */
  digest(): Uint8Array;
}

/** Result of an AES-GCM encryption: ciphertext (same length as the plaintext) and 16-byte tag. */
export interface GcmSealed {
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/** A set of cryptographic primitives. All functions are synchronous and pure (except randomness). */
export interface CryptoBackend {
  /** Short name for reports and benchmarks, e.g. `node` or `noble`. */
  readonly name: string;
  /**
   * AES-128-GCM encryption with a 16-byte key and a 12-byte IV, optional additional data, 16-byte tag.
   */
  aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): GcmSealed;
  /**
   * AES-128-GCM decryption. Throws {@link GcmAuthError} when the tag does not verify (wrong key or
   * modified ciphertext/AAD/tag); never returns unauthenticated plaintext.
   */
  aesGcmDecrypt(
    key: Uint8Array,
    iv: Uint8Array,
    ciphertext: Uint8Array,
    tag: Uint8Array,
    aad?: Uint8Array,
  ): Uint8Array;
  /** AES-128-CMAC (RFC 4493, NIST SP 800-38B) of `message`; 16 bytes. */
  aesCmac(key: Uint8Array, message: Uint8Array): Uint8Array;
  /** SHA-256 of `data`; 32 bytes. */
  sha256(data: Uint8Array): Uint8Array;
  /** A fresh incremental SHA-256. */
  createSha256(): Sha256Hash;
  /**
   * HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes
   * (`length` <= 8160; `info` <= 1024 bytes, the limit of node:crypto).
   */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** `length` bytes from a cryptographically secure random generator. */
  randomBytes(length: number): Uint8Array;
}

/** Thrown by {@link CryptoBackend.aesGcmDecrypt} when authentication fails. */
export class GcmAuthError extends EnclavifyError {
  constructor() {
    super('CRYPTO_AUTH_FAILED', 'AES-GCM authentication failed (wrong key or modified data)');
    this.name = 'GcmAuthError';
  }
}

/** Throws a RangeError unless `bytes` has exactly `length` bytes; `what` names it (never its value). */
export function checkLength(what: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new RangeError(`${what} must be ${length} bytes, got ${got}`);
  }
}

/** Validates the AES-GCM key and IV sizes shared by both backends. */
export function checkGcmParams(key: Uint8Array, iv: Uint8Array): void {
  checkLength('AES-128-GCM key', key, 16);
  checkLength('AES-GCM IV', iv, 12);
}
