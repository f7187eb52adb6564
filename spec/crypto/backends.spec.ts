/**
 * Known-answer tests for both crypto backends (NIST GCM spec, RFC 4493 CMAC, FIPS 180 SHA-256,
 * RFC 5869 HKDF) and a cross-check that the two backends agree on random inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GcmAuthError, nobleBackend, nodeBackend } from '../../lib/crypto/index.js';
import type { CryptoBackend } from '../../lib/crypto/index.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const backends: CryptoBackend[] = [nodeBackend, nobleBackend];

// "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test cases 1-4 (AES-128).
const gcmK = hex('feffe9928665731c6d6a8f9467308308');
const gcmIv = hex('cafebabefacedbaddecaf888');
const gcmP = hex(`d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
  1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255`);
const gcmC = hex(`42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
  21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985`);
const gcmCases = [
  { name: 'TC1', k: new Uint8Array(16), iv: new Uint8Array(12), p: new Uint8Array(0), a: undefined,
    c: new Uint8Array(0), t: '58e2fccefa7e3061367f1d57a4e7455a' },
  { name: 'TC2', k: new Uint8Array(16), iv: new Uint8Array(12), p: new Uint8Array(16), a: undefined,
    c: hex('0388dace60b6a392f328c2b971b2fe78'), t: 'ab6e47d42cec13bdf53a67b21257bddf' },
  { name: 'TC3', k: gcmK, iv: gcmIv, p: gcmP, a: undefined, c: gcmC, t: '4d5c2af327cd64a62cf35abd2ba6fab4' },
  { name: 'TC4', k: gcmK, iv: gcmIv, p: gcmP.subarray(0, 60), a: hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
    c: gcmC.subarray(0, 60), t: '5bc94fbc3221a5db94fae95ae7121a47' },
];

// RFC 4493 section 4.
const cmacKey = hex('2b7e151628aed2a6abf7158809cf4f3c');
const cmacMsg = hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
  30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`);
const cmacCases: [number, string][] = [
  [0, 'bb1d6929e95937287fa37d129b756746'],
  [16, '070a16b46b4d4144f79bdd9dd04a287c'],
  [40, 'dfa66747de9ae63030ca32611497c827'],
  [64, '51f0bebf7e3b9d92fc49741779363cfe'],
];

for (const b of backends) {
  test(`${b.name}: AES-128-GCM test cases from the GCM specification`, () => {
    for (const tc of gcmCases) {
      const { ciphertext, tag } = b.aesGcmEncrypt(tc.k, tc.iv, tc.p, tc.a);
      assert.equal(toHex(ciphertext), toHex(tc.c), `${tc.name} ciphertext`);
      assert.equal(toHex(tag), tc.t, `${tc.name} tag`);
      assert.equal(toHex(b.aesGcmDecrypt(tc.k, tc.iv, tc.c, hex(tc.t), tc.a)), toHex(tc.p), `${tc.name} decrypt`);
    }
  });

  test(`${b.name}: AES-GCM rejects a modified ciphertext, tag, AAD or key`, () => {
    const tc = gcmCases[3];
    const tag = hex(tc.t);
    const flip = (x: Uint8Array, i: number) => { const y = new Uint8Array(x); y[i] ^= 1; return y; };
    assert.throws(() => b.aesGcmDecrypt(tc.k, tc.iv, flip(tc.c, 5), tag, tc.a), GcmAuthError);
    assert.throws(() => b.aesGcmDecrypt(tc.k, tc.iv, tc.c, flip(tag, 15), tc.a), GcmAuthError);
    assert.throws(() => b.aesGcmDecrypt(tc.k, tc.iv, tc.c, tag, flip(tc.a!, 0)), GcmAuthError);
    assert.throws(() => b.aesGcmDecrypt(flip(tc.k, 0), tc.iv, tc.c, tag, tc.a), GcmAuthError);
    assert.throws(() => b.aesGcmDecrypt(tc.k, tc.iv, tc.c, tag), GcmAuthError); // AAD missing
    assert.throws(() => b.aesGcmEncrypt(new Uint8Array(32), tc.iv, tc.p), RangeError);
    assert.throws(() => b.aesGcmEncrypt(tc.k, new Uint8Array(16), tc.p), RangeError);
  });

  test(`${b.name}: AES-128-CMAC RFC 4493 examples`, () => {
    for (const [len, mac] of cmacCases) {
      assert.equal(toHex(b.aesCmac(cmacKey, cmacMsg.subarray(0, len))), mac, `${len}-byte message`);
    }
  });

  test(`${b.name}: SHA-256 FIPS 180 examples, one-shot and incremental`, () => {
    const enc = new TextEncoder();
    assert.equal(toHex(b.sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(toHex(b.sha256(enc.encode('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const long = enc.encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
    const want = '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1';
    assert.equal(toHex(b.sha256(long)), want);
    const h = b.createSha256();
    for (let i = 0; i < long.length; i += 7) h.update(long.subarray(i, i + 7));
    assert.equal(toHex(h.digest()), want);
  });

  test(`${b.name}: HKDF-SHA256 RFC 5869 test case 1`, () => {
    const okm = b.hkdfSha256(new Uint8Array(22).fill(0x0b), hex('000102030405060708090a0b0c'),
      hex('f0f1f2f3f4f5f6f7f8f9'), 42);
    assert.equal(toHex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  test(`${b.name}: randomBytes returns fresh bytes of the requested length`, () => {
    const a = b.randomBytes(32);
    assert.equal(a.length, 32);
    assert.notEqual(toHex(a), toHex(b.randomBytes(32)));
  });
}

test('node and noble backends agree on random inputs', () => {
  const r = nodeBackend.randomBytes;
  for (let i = 0; i < 40; i++) {
    const key = r(16);
    const iv = r(12);
    const len = [0, 1, 15, 16, 17, 31, 32, 33, 100, 4096][i % 10] + (i > 20 ? i : 0);
    const msg = r(len);
    const aad = i % 3 === 0 ? r(i) : undefined;
    const a = nodeBackend.aesGcmEncrypt(key, iv, msg, aad);
    const b = nobleBackend.aesGcmEncrypt(key, iv, msg, aad);
    assert.equal(toHex(a.ciphertext), toHex(b.ciphertext));
    assert.equal(toHex(a.tag), toHex(b.tag));
    assert.equal(toHex(nobleBackend.aesGcmDecrypt(key, iv, a.ciphertext, a.tag, aad)), toHex(msg));
    assert.equal(toHex(nodeBackend.aesCmac(key, msg)), toHex(nobleBackend.aesCmac(key, msg)));
    assert.equal(toHex(nodeBackend.sha256(msg)), toHex(nobleBackend.sha256(msg)));
    const salt = r(i % 33);
    assert.equal(toHex(nodeBackend.hkdfSha256(key, salt, msg.subarray(0, 64), 16 + i)),
      toHex(nobleBackend.hkdfSha256(key, salt, msg.subarray(0, 64), 16 + i)));
  }
});
