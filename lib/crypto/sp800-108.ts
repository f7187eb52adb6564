/**
 * NIST SP 800-108 key derivation in counter mode with AES-128-CMAC as the PRF, in the one-block
 * form that Intel's SGX protected-files library and Gramine use to turn the wrap key (key
 * derivation key) and a per-write nonce into the metadata key of an encrypted file.
 */
import type { CryptoBackend } from './backend.js';
import { checkLength } from './backend.js';

/** The label Gramine uses for metadata keys, zero-padded to 64 bytes in the KDF input. */
export const METADATA_KEY_LABEL = 'SGX-PROTECTED-FS-METADATA-KEY';

/**
 * Derives a 128-bit key: `AES-CMAC(kdk, u32le 1 || label[64] || context || u32le 128)`.
 * `label` is ASCII, at most 63 bytes (it must stay NUL-terminated in its 64-byte field).
 */
export function sp800108CounterCmac(
  backend: CryptoBackend,
  kdk: Uint8Array,
  label: string,
  context: Uint8Array,
): Uint8Array {
  checkLength('key derivation key', kdk, 16);
  const labelBytes = new TextEncoder().encode(label);
  if (labelBytes.length > 63) throw new RangeError(`KDF label is ${labelBytes.length} bytes, at most 63 allowed`);
  const input = new Uint8Array(4 + 64 + context.length + 4);
  const view = new DataView(input.buffer);
  view.setUint32(0, 1, true); // counter: one block of output
  input.set(labelBytes, 4);
  input.set(context, 68);
  view.setUint32(68 + context.length, 128, true); // output length in bits
  const key = backend.aesCmac(kdk, input);
  input.fill(0);
  return key;
}

/**
 * The metadata key of a Gramine encrypted file: SP 800-108 (above) keyed with the 16-byte wrap key,
 * label `SGX-PROTECTED-FS-METADATA-KEY`, context = the 32-byte `metadata_key_nonce` stored in the
 * file's plaintext header.
 */
export function deriveMetadataKey(backend: CryptoBackend, wrapKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  checkLength('wrap key', wrapKey, 16);
  checkLength('metadata key nonce', nonce, 32);
  return sp800108CounterCmac(backend, wrapKey, METADATA_KEY_LABEL, nonce);
}
