/**
 * The @noble backend: audited pure-JS primitives (@noble/ciphers, @noble/hashes). Portable to any
 * JS runtime, slower than OpenSSL; also an independent second implementation that the tests
 * compare the node backend against.
 */
import { cmac, gcm } from '@noble/ciphers/aes.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import type { CryptoBackend, GcmSealed, Sha256Hash } from './backend.js';
import { GcmAuthError, checkGcmParams, checkLength } from './backend.js';

function gcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): GcmSealed {
  checkGcmParams(key, iv);
  const sealed = gcm(key, iv, aad).encrypt(plaintext);
  const n = plaintext.length;
  return { ciphertext: sealed.subarray(0, n), tag: sealed.slice(n) };
}

function gcmDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkGcmParams(key, iv);
  checkLength('AES-GCM tag', tag, 16);
  const sealed = new Uint8Array(ciphertext.length + 16);
  sealed.set(ciphertext);
  sealed.set(tag, ciphertext.length);
  try {
    return gcm(key, iv, aad).decrypt(sealed);
  } catch {
    // noble throws only on a tag mismatch once the sizes are checked above
    throw new GcmAuthError();
  }
}

function createSha256(): Sha256Hash {
  const h = sha256.create();
  const api: Sha256Hash = {
    update(data) {
      h.update(data);
      return api;
    },
    digest: () => h.digest(),
  };
  return api;
}

/** @noble/ciphers + @noble/hashes implementation of {@link CryptoBackend}. */
export const nobleBackend: CryptoBackend = Object.freeze({
  name: 'noble',
  aesGcmEncrypt: gcmEncrypt,
  aesGcmDecrypt: gcmDecrypt,
  aesCmac: (key: Uint8Array, message: Uint8Array) => {
    checkLength('AES-128-CMAC key', key, 16);
    return cmac(message, key);
  },
  sha256: (data: Uint8Array) => sha256(data),
  createSha256,
  hkdfSha256: (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number) =>
    hkdf(sha256, ikm, salt, info, length),
  randomBytes: (length: number) => randomBytes(length),
});
