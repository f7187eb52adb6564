/**
 * ocicrypt's layer cipher `AES_256_CTR_HMAC_SHA256` (containers/ocicrypt blockcipher_aes_ctr.go):
 * AES-256 in CTR mode with the 16-byte nonce as the initial counter block, and encrypt-then-MAC
 * with HMAC-SHA256 keyed by the same 32-byte key over the ciphertext. No padding: ciphertext and
 * plaintext have the same size. Both directions stream.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual, type Cipher, type Hmac } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { EnclavifyError } from '../oci/errors.js';

/** The one cipher ocicrypt defines. */
export const LAYER_CIPHER = 'AES_256_CTR_HMAC_SHA256';

/** A layer's symmetric key material (ocicrypt's private options, less the digest). */
export interface LayerKey {
  /** 32 bytes: the AES key and the HMAC key. */
  readonly symkey: Uint8Array;
  /** 16 bytes: the initial counter block. */
  readonly nonce: Uint8Array;
}

/** A fresh random key and nonce, as ocicrypt draws for every layer. */
export function newLayerKey(): LayerKey {
  return { symkey: randomBytes(32), nonce: randomBytes(16) };
}

function checkKey(k: LayerKey, what: string): void {
  if (k.symkey.length !== 32 || k.nonce.length !== 16) {
    throw new EnclavifyError('OCICRYPT_BAD_KEY', `${what}: the layer key must be 32 bytes and its nonce 16 bytes`);
  }
}

/** Encrypts as bytes pass; {@link hmac} is set once the stream has ended. */
export class LayerEncryptStream extends Transform {
  private readonly cipher: Cipher;
  private readonly mac: Hmac;
  hmac?: Buffer;
  bytes = 0;
  constructor(key: LayerKey, what = 'layer') {
    super({ highWaterMark: 1 << 20 });
    checkKey(key, what);
    this.cipher = createCipheriv('aes-256-ctr', key.symkey, key.nonce);
    this.mac = createHmac('sha256', key.symkey);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const out = this.cipher.update(chunk);
    this.mac.update(out);
    this.bytes += out.length;
    cb(null, out);
  }
  override _flush(cb: TransformCallback): void {
    const tail = this.cipher.final();
    if (tail.length) {
      this.mac.update(tail);
      this.push(tail);
    }
    this.hmac = this.mac.digest();
    cb();
  }
}

/**
 * Decrypts as bytes pass and fails at the end, instead of ending, when the ciphertext's HMAC is
 * not `expectedHmac`. Plaintext flows before the check (as in ocicrypt): consumers must treat
 * the stream as unverified until it ends, which every consumer here does (digests are checked at
 * the end too).
 */
export class LayerDecryptStream extends Transform {
  private readonly decipher;
  private readonly mac: Hmac;
  constructor(key: LayerKey, private readonly expectedHmac: Uint8Array, private readonly what: string) {
    super({ highWaterMark: 1 << 20 });
    checkKey(key, what);
    this.decipher = createDecipheriv('aes-256-ctr', key.symkey, key.nonce);
    this.mac = createHmac('sha256', key.symkey);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.mac.update(chunk);
    cb(null, this.decipher.update(chunk));
  }
  override _flush(cb: TransformCallback): void {
    const tail = this.decipher.final();
    if (tail.length) this.push(tail);
    const got = this.mac.digest();
    if (got.length !== this.expectedHmac.length || !timingSafeEqual(got, this.expectedHmac)) {
      cb(new EnclavifyError('OCICRYPT_HMAC_MISMATCH', `${this.what}: the encrypted layer fails its HMAC check (the ciphertext or its annotations were changed, or this is not the key it was encrypted with)`));
      return;
    }
    cb();
  }
}
