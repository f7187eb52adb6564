/**
 * ocicrypt's primitives against independent implementations: the layer cipher and the
 * attestation-agent packet against @noble (pure JS, not OpenSSL), the Concat KDF against RFC 7518's
 * worked example, JWE round trips for every key kind, and attacks on each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, createPrivateKey, generateKeyPairSync, randomBytes, diffieHellman } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { ctr, gcm } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { LayerDecryptStream, LayerEncryptStream, newLayerKey } from '../../lib/ocicrypt/cipher.js';
import { concatKdf, jweDecrypt, jweEncrypt } from '../../lib/ocicrypt/jwe.js';
import { aaParse, aaUnwrap, aaWrap, parseKbsId } from '../../lib/ocicrypt/keyprovider-aa.js';
import { decodePublicOptions, encodePrivateOptions, encodePublicOptions } from '../../lib/ocicrypt/annotations.js';
import { parsePrivateKey, parsePublicKey, parseRecipient } from '../../lib/ocicrypt/keys.js';

function chunked(data: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length;) { const n = 1 + Math.floor(Math.random() * 70000); parts.push(data.subarray(i, i + n)); i += n; }
  return Readable.from(parts);
}

test('layer cipher: AES-256-CTR with the nonce as counter block and HMAC-SHA256 over the ciphertext, as @noble computes them', async () => {
  for (const size of [0, 1, 15, 16, 17, 65536, 3_000_001]) {
    const plain = randomBytes(size);
    const key = newLayerKey();
    const enc = new LayerEncryptStream(key);
    const ct = await buffer(chunked(plain).pipe(enc));
    const expected = Buffer.from(ctr(key.symkey, key.nonce).encrypt(plain));
    assert.ok(ct.equals(expected), `ciphertext of ${size} bytes`);
    assert.ok(enc.hmac!.equals(Buffer.from(hmac(sha256, key.symkey, expected))), `hmac of ${size} bytes`);
    const back = await buffer(chunked(ct).pipe(new LayerDecryptStream(key, enc.hmac!, 'layer')));
    assert.ok(back.equals(plain));
  }
});

test('layer cipher: a flipped ciphertext byte, a truncated ciphertext or the wrong key fails the HMAC check', async () => {
  const plain = randomBytes(100_000);
  const key = newLayerKey();
  const enc = new LayerEncryptStream(key);
  const ct = await buffer(Readable.from([plain]).pipe(enc));
  const flipped = Buffer.from(ct); flipped[5000] ^= 1;
  for (const [what, bytes, k] of [['flipped', flipped, key], ['truncated', ct.subarray(0, ct.length - 1), key], ['wrong key', ct, newLayerKey()]] as const) {
    await assert.rejects(buffer(Readable.from([bytes]).pipe(new LayerDecryptStream(k, enc.hmac!, 'layer 0'))), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'OCICRYPT_HMAC_MISMATCH', what);
      assert.match(e.message, /layer 0/);
      return true;
    });
  }
});

test('Concat KDF: RFC 7518 appendix C (ECDH-ES, P-256, apu Alice, apv Bob) gives the RFC\'s key', () => {
  const alice = createPrivateKey({ format: 'jwk', key: { kty: 'EC', crv: 'P-256', x: 'gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0', y: 'SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps', d: '0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo' } });
  const bob = createPublicKey({ format: 'jwk', key: { kty: 'EC', crv: 'P-256', x: 'weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ', y: 'e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck' } });
  const z = diffieHellman({ privateKey: alice, publicKey: bob });
  assert.equal(concatKdf(z, 128, 'A128GCM', Buffer.from('Alice'), Buffer.from('Bob')).toString('base64url'), 'VqqN6vgjbSBcIijNcacQGg');
});

test('JWE: RSA and EC (P-256, P-384, P-521) recipients, alone and together; each private key opens it, others do not', () => {
  const pairs = [
    generateKeyPairSync('rsa', { modulusLength: 2048 }),
    generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  ];
  const msg = encodePrivateOptions({ ...newLayerKey(), digest: 'sha256:' + 'a'.repeat(64) });
  for (const p of pairs) {
    const one = jweEncrypt(msg, [p.publicKey]);
    const j = JSON.parse(one) as Record<string, unknown>;
    assert.ok(j.encrypted_key && !j.recipients, 'one recipient: flattened JSON');
    const hdr = JSON.parse(Buffer.from(j.protected as string, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(hdr.enc, 'A256GCM');
    assert.equal(hdr.alg, p.publicKey.asymmetricKeyType === 'rsa' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW');
    assert.ok(jweDecrypt(one, [p.privateKey], 'x').equals(msg));
  }
  const all = jweEncrypt(msg, pairs.map((p) => p.publicKey));
  assert.equal((JSON.parse(all) as { recipients: unknown[] }).recipients.length, 4, 'several: general JSON');
  for (const p of pairs) assert.ok(jweDecrypt(all, [p.privateKey], 'x').equals(msg));
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  assert.throws(() => jweDecrypt(all, [stranger], 'layer 1'), { code: 'OCICRYPT_NO_KEY' });
  const j = JSON.parse(all) as { ciphertext: string };
  const ct = Buffer.from(j.ciphertext, 'base64url'); ct[0] ^= 1;
  assert.throws(() => jweDecrypt(JSON.stringify({ ...j, ciphertext: ct.toString('base64url') }), [pairs[0].privateKey], 'layer 1'), { code: 'OCICRYPT_BAD_JWE' });
});

test('keys: PEM SPKI, PKCS#8, PKCS#1, SEC1 (which skopeo ignores), DER and JWK forms parse; other key kinds are refused by name', async () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  for (const k of [rsa, ec]) {
    parsePublicKey(Buffer.from(k.publicKey.export({ type: 'spki', format: 'pem' })), 'pub');
    parsePublicKey(k.publicKey.export({ type: 'spki', format: 'der' }), 'pub');
    parsePublicKey(Buffer.from(JSON.stringify(k.publicKey.export({ format: 'jwk' }))), 'pub');
    parsePrivateKey(Buffer.from(k.privateKey.export({ type: 'pkcs8', format: 'pem' })), 'priv');
    parsePrivateKey(Buffer.from(JSON.stringify(k.privateKey.export({ format: 'jwk' }))), 'priv');
  }
  parsePrivateKey(Buffer.from(rsa.privateKey.export({ type: 'pkcs1', format: 'pem' })), 'priv');
  parsePrivateKey(Buffer.from(ec.privateKey.export({ type: 'sec1', format: 'pem' })), 'priv');
  const ed = generateKeyPairSync('ed25519');
  assert.throws(() => parsePublicKey(Buffer.from(ed.publicKey.export({ type: 'spki', format: 'pem' })), 'ed.pem'), (e: Error & { code?: string }) => e.code === 'OCICRYPT_BAD_KEY' && /ed\.pem/.test(e.message));
  assert.throws(() => parsePublicKey(Buffer.from(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' })), 'k.pem'), /private key/);
  await assert.rejects(parseRecipient('pgp:me@example.org'), { code: 'OCICRYPT_BAD_RECIPIENT' });
  await assert.rejects(parseRecipient('provider:attestation-agent:keyid=/default/image-kek/x'), { code: 'OCICRYPT_BAD_RECIPIENT' });
  await assert.rejects(parseRecipient('provider:attestation-agent:keyid=kbs:///a/b/c::algorithm=A128GCM'), { code: 'OCICRYPT_BAD_RECIPIENT' });
  const r = await parseRecipient('provider:attestation-agent:keyid=kbs:///default/image-kek/app');
  assert.equal(r.kind, 'attestation-agent');
});

/** The confidential-data hub's unwrap, written here from the packet format (coco.md §2) with @noble. */
function independentAaUnwrap(annotation: string, kek: Uint8Array): Uint8Array {
  const p = JSON.parse(Buffer.from(annotation, 'base64').toString()) as { kid: string; wrapped_data: string; iv: string; wrap_type: string };
  assert.match(p.kid, /^kbs:\/\/\/[^/]+\/[^/]+\/[^/]+$/);
  const iv = Buffer.from(p.iv, 'base64');
  const data = Buffer.from(p.wrapped_data, 'base64');
  return p.wrap_type === 'A256GCM' ? gcm(kek, iv).decrypt(data) : ctr(kek, iv).decrypt(data);
}

test('attestation-agent packet: what we wrap, an independent unwrapper opens with the KEK; a wrong KEK or a changed packet fails', () => {
  const kek = randomBytes(32);
  const opts = encodePrivateOptions({ ...newLayerKey(), digest: 'sha256:' + 'b'.repeat(64) });
  for (const alg of ['A256GCM', 'A256CTR'] as const) {
    const a = aaWrap(opts, kek, 'kbs:///default/image-kek/app', alg);
    const packet = JSON.parse(Buffer.from(a, 'base64').toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(packet).sort(), ['iv', 'kid', 'wrap_type', 'wrapped_data']);
    assert.equal(packet.wrap_type, alg);
    assert.ok(Buffer.from(independentAaUnwrap(a, kek)).equals(opts));
    assert.ok(aaUnwrap(aaParse(a, 'l'), kek, 'l').equals(opts));
  }
  const a = aaWrap(opts, kek, 'kbs:///default/image-kek/app');
  assert.throws(() => aaUnwrap(aaParse(a, 'layer 0'), randomBytes(32), 'layer 0'), { code: 'OCICRYPT_NO_KEY' });
  const p = JSON.parse(Buffer.from(a, 'base64').toString()) as { wrapped_data: string };
  const w = Buffer.from(p.wrapped_data, 'base64'); w[3] ^= 1;
  const changed = Buffer.from(JSON.stringify({ ...p, wrapped_data: w.toString('base64') })).toString('base64');
  assert.throws(() => aaUnwrap(aaParse(changed, 'layer 0'), kek, 'layer 0'), { code: 'OCICRYPT_NO_KEY' });
  for (const kid of ['/default/image-kek/x', 'kbs:///a/b', 'kbs:///a/../c', 'https://kbs/a/b/c']) assert.throws(() => parseKbsId(kid, 'kid'), { code: 'OCICRYPT_BAD_RECIPIENT' });
  assert.equal(parseKbsId('kbs://kbs.example:8080/repo/type/tag', 'kid'), 'repo/type/tag');
});

test('public options: a nonce (or any cipher option) in pubopts is refused, since ocicrypt would let it override the wrapped one', () => {
  const ok = encodePublicOptions({ hmac: randomBytes(32) });
  assert.equal(decodePublicOptions(ok, 'l').hmac.length, 32);
  const j = JSON.parse(Buffer.from(ok, 'base64').toString()) as Record<string, unknown>;
  const bad = Buffer.from(JSON.stringify({ ...j, cipheroptions: { nonce: randomBytes(16).toString('base64') } })).toString('base64');
  assert.throws(() => decodePublicOptions(bad, 'layer 2'), (e: Error & { code?: string }) => e.code === 'OCICRYPT_BAD_ANNOTATION' && /layer 2/.test(e.message));
  const other = Buffer.from(JSON.stringify({ ...j, cipher: 'AES_128_GCM' })).toString('base64');
  assert.throws(() => decodePublicOptions(other, 'l'), { code: 'OCICRYPT_UNSUPPORTED' });
});
