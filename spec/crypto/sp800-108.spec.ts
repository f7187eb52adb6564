/**
 * The SP 800-108 counter-mode KDF used for Gramine metadata keys: input layout (checked against a
 * CMAC computed over a hand-built 104-byte input) and agreement between backends. That the result
 * is Gramine's own key is proven by the fixture files decrypting (spec/protect/pf-vectors.spec.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveMetadataKey, nobleBackend, nodeBackend } from '../../lib/crypto/index.js';

test('deriveMetadataKey = CMAC(wrapKey, 1 || label[64] || nonce || 128) over 104 bytes', () => {
  const wrapKey = new Uint8Array(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'));
  const nonce = new Uint8Array(32).map((_, i) => 0xa0 + i);
  const input = Buffer.alloc(104);
  input.writeUInt32LE(1, 0);
  input.write('SGX-PROTECTED-FS-METADATA-KEY', 4, 'ascii');
  Buffer.from(nonce).copy(input, 68);
  input.writeUInt32LE(128, 100);
  const want = Buffer.from(nodeBackend.aesCmac(wrapKey, input)).toString('hex');
  for (const b of [nodeBackend, nobleBackend]) {
    assert.equal(Buffer.from(deriveMetadataKey(b, wrapKey, nonce)).toString('hex'), want, b.name);
  }
  assert.throws(() => deriveMetadataKey(nodeBackend, new Uint8Array(32), nonce), /wrap key must be 16 bytes/);
  assert.throws(() => deriveMetadataKey(nodeBackend, wrapKey, new Uint8Array(16)), /nonce must be 32 bytes/);
});
