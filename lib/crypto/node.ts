/**
 * The node:crypto (OpenSSL) backend: the fast path. node:crypto has no CMAC, so AES-CMAC is built
 * here from AES-ECB (subkeys) and AES-CBC (the MAC chain), following RFC 4493.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, randomFillSync } from 'node:crypto';
import type { CryptoBackend, GcmSealed, Sha256Hash } from './backend.js';
import { GcmAuthError, checkGcmParams, checkLength } from './backend.js';

function gcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): GcmSealed {
  checkGcmParams(key, iv);
  const c = createCipheriv('aes-128-gcm', key, iv, { authTagLength: 16 });
  if (aad && aad.length > 0) c.setAAD(aad);
  const head = c.update(plaintext);
  const tail = c.final();
  // GCM is a stream mode: `final` never returns bytes in practice, but be correct if it does.
  const ciphertext = tail.length === 0 ? head : Buffer.concat([head, tail]);
  return { ciphertext, tag: c.getAuthTag() };
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
  const d = createDecipheriv('aes-128-gcm', key, iv, { authTagLength: 16 });
  d.setAuthTag(tag);
  if (aad && aad.length > 0) d.setAAD(aad);
  const head = d.update(ciphertext);
  let tail: Buffer;
  try {
    tail = d.final();
  } catch {
    head.fill(0); // do not leave unauthenticated plaintext around
    throw new GcmAuthError();
  }
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}

/** Doubling in GF(2^128) as RFC 4493 defines it (shift left one bit, reduce with 0x87). */
function dbl(block: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 15; i++) out[i] = ((block[i] << 1) | (block[i + 1] >>> 7)) & 0xff;
  out[15] = (block[15] << 1) & 0xff;
  if (block[0] & 0x80) out[15] ^= 0x87;
  return out;
}

function cmac(key: Uint8Array, message: Uint8Array): Uint8Array {
  checkLength('AES-128-CMAC key', key, 16);
  const ecb = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  const l = ecb.update(new Uint8Array(16));
  const k1 = dbl(l);
  const k2 = dbl(k1);
  l.fill(0);
  const n = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  // All blocks but the last go through CBC unchanged; the last is padded and masked with K1/K2.
  const buf = Buffer.alloc(n * 16);
  buf.set(message);
  const last = (n - 1) * 16;
  if (!complete) buf[message.length] = 0x80;
  const mask = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) buf[last + i] ^= mask[i];
  const cbc = createCipheriv('aes-128-cbc', key, Buffer.alloc(16)).setAutoPadding(false);
  const out = cbc.update(buf);
  const tag = new Uint8Array(out.subarray(out.length - 16));
  buf.fill(0);
  k1.fill(0);
  k2.fill(0);
  return tag;
}

function createSha256(): Sha256Hash {
  const h = createHash('sha256');
  const api: Sha256Hash = {
    update(data) {
      h.update(data);
      return api;
    },
    digest: () => h.digest(),
  };
  return api;
}

/**
 * Small random values (node keys: one per 4 KiB node) come from a pool refilled in 8 KiB blocks:
 * each crypto.randomBytes call costs microseconds, which showed up as the writer's top cost.
 * Served bytes are zeroed in the pool so each is handed out once.
 */
const POOL_SIZE = 8192;
const pool = Buffer.alloc(POOL_SIZE);
let poolPos = POOL_SIZE;

function random(length: number): Uint8Array {
  if (length > 256) return randomBytes(length);
  if (poolPos + length > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const out = new Uint8Array(pool.subarray(poolPos, poolPos + length));
  pool.fill(0, poolPos, poolPos + length);
  poolPos += length;
  return out;
}

/** node:crypto (OpenSSL) implementation of {@link CryptoBackend}. */
export const nodeBackend: CryptoBackend = Object.freeze({
  name: 'node',
  aesGcmEncrypt: gcmEncrypt,
  aesGcmDecrypt: gcmDecrypt,
  aesCmac: cmac,
  sha256: (data: Uint8Array) => createHash('sha256').update(data).digest(),
  createSha256,
  hkdfSha256: (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number) =>
    new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),
  randomBytes: random,
});
