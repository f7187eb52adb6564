/**
 * Signing against Gramine 1.9's own output (fixtures/gramine-sign): the same .manifest.sgx,
 * stand-in PAL, key and date must give the same .sig byte for byte, and the same MRENCLAVE and
 * measured-area list. Plus key refusal and the HSM/KMS callback path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateEncrypt, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fixtures } from '../helpers/tools.js';
import { signGramineEnclave } from '../../lib/sgx/sign.js';
import { formatEnclaveAreas } from '../../lib/sgx/layout.js';
import { parseSigstruct, verifySigstructSignature } from '../../lib/sgx/sigstruct.js';

const dir = path.join(fixtures, 'gramine-sign');
const read = (f: string): Buffer => readFileSync(path.join(dir, f));
const pal = read('stand-in-pal.so');
const keyPem = read('test-enclave-key.pem').toString('utf8');
const DATE = '2026-01-01';
const CASES = ['case1-debug', 'case2-release', 'case3-edmm', 'case4-dcap'];

/** The "Memory:" lines of gramine-sgx-sign's verbose output. */
function memoryLines(c: string): string[] {
  const out = read(`${c}.sign-output.txt`).toString('utf8');
  return out.split('Memory:\n')[1].split('Measurement:')[0].trimEnd().split('\n');
}

for (const c of CASES) {
  test(`${c}: same .sig as gramine-sgx-sign from the same .manifest.sgx`, async () => {
    const expected = JSON.parse(read(`${c}.expected.json`).toString('utf8'));
    const r = await signGramineEnclave({ manifestSgx: read(`${c}.manifest.sgx`), pal, signer: { privateKey: keyPem }, date: DATE });
    assert.equal(r.mrenclave, expected.mr_enclave);
    assert.equal(r.mrsigner, expected.mr_signer);
    assert.equal(r.isvProdId, expected.isv_prod_id);
    assert.equal(r.isvSvn, expected.isv_svn);
    assert.equal(r.debug, expected.debug_enclave);
    assert.equal(r.sigstruct.length, 1808);
    assert.ok(Buffer.from(r.sigstruct).equals(read(`${c}.sig`)), 'SIGSTRUCT differs from Gramine\'s');
    assert.ok(Buffer.from(r.manifestSgx).equals(read(`${c}.manifest.sgx`)));
    assert.deepEqual(formatEnclaveAreas(r.areas), memoryLines(c));
    const measurement = read(`${c}.sign-output.txt`).toString('utf8').split('Measurement:\n')[1].trim();
    assert.equal(r.mrenclave, measurement);
  });

  test(`${c}: signing the input manifest gives the same .sig (expansion is byte-identical)`, async () => {
    const r = await signGramineEnclave({ manifest: read(`${c}.manifest`).toString('utf8'), pal, signer: { privateKey: keyPem }, date: DATE });
    assert.ok(Buffer.from(r.sigstruct).equals(read(`${c}.sig`)));
  });
}

test('case2: release attributes (no DEBUG flag), isvprodid 7, isvsvn 3 in the SIGSTRUCT', async () => {
  const r = await signGramineEnclave({ manifestSgx: read('case2-release.manifest.sgx'), pal, signer: { privateKey: keyPem }, date: DATE });
  assert.deepEqual(r.attributes, { flags: 0x4n, xfrm: 0x3n });
  const s = parseSigstruct(r.sigstruct);
  assert.equal(s.debug, false);
  assert.equal(s.isvProdId, 7);
  assert.equal(s.isvSvn, 3);
  assert.equal(s.date, DATE);
});

test('a callback signer (HSM/KMS) gives the same bytes as the PEM signer', async () => {
  const key = createPrivateKey(keyPem);
  const seen: Uint8Array[] = [];
  const kms = async (data: Uint8Array): Promise<Uint8Array> => {
    seen.push(data);
    // a KMS given the SHA-256 digest, wrapping it in DigestInfo and signing (PKCS#1 v1.5)
    const digest = createHash('sha256').update(data).digest();
    const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), digest]);
    return new Uint8Array(privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digestInfo));
  };
  for (const publicKey of [
    createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string,
    createPublicKey(key).export({ type: 'spki', format: 'der' }),
    createPublicKey(key).export({ format: 'jwk' }),
    createPublicKey(key),
  ]) {
    const r = await signGramineEnclave({ manifestSgx: read('case1-debug.manifest.sgx'), pal, signer: { publicKey, sign: kms }, date: DATE });
    assert.ok(Buffer.from(r.sigstruct).equals(read('case1-debug.sig')));
  }
  assert.equal(seen[0].length, 256);
  // the data signed: SIGSTRUCT bytes 0..127 and 900..1027
  const sig = read('case1-debug.sig');
  assert.ok(Buffer.from(seen[0]).equals(Buffer.concat([sig.subarray(0, 128), sig.subarray(900, 1028)])));
});

test('a callback signature that does not verify is refused', async () => {
  const key = createPrivateKey(keyPem);
  const other = generateKeyPairSync('rsa', { modulusLength: 3072, publicExponent: 3 });
  const base = { manifestSgx: read('case1-debug.manifest.sgx'), pal, date: DATE };
  // signed by a different key than the one announced
  await assert.rejects(
    signGramineEnclave({ ...base, signer: { publicKey: other.publicKey, sign: (d) => new Uint8Array(sign('sha256', d, key)) } }),
    (e: Error & { code?: string }) => e.code === 'SGX_BAD_SIGNATURE');
  // garbage and wrong lengths
  await assert.rejects(
    signGramineEnclave({ ...base, signer: { publicKey: createPublicKey(key), sign: () => new Uint8Array(384).fill(0x11) } }),
    (e: Error & { code?: string }) => e.code === 'SGX_BAD_SIGNATURE');
  await assert.rejects(
    signGramineEnclave({ ...base, signer: { publicKey: createPublicKey(key), sign: () => new Uint8Array(512) } }),
    /expected a 384-byte RSA signature/);
});

test('keys that are not RSA-3072 with exponent 3 are refused, without showing key material', async () => {
  const base = { manifestSgx: read('case1-debug.manifest.sgx'), pal, date: DATE };
  const pem = (k: { privateKey: import('node:crypto').KeyObject }): string => k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const keys: [string, string, RegExp][] = [
    ['RSA-2048 e=3', pem(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })), /3072 bits, got 2048/],
    ['RSA-3072 e=65537', pem(generateKeyPairSync('rsa', { modulusLength: 3072 })), /exponent 3, got 65537/],
    ['EC P-256', pem(generateKeyPairSync('ec', { namedCurve: 'P-256' })), /expected an RSA key.*got ec/],
    ['Ed25519', pem(generateKeyPairSync('ed25519')), /expected an RSA key.*got ed25519/],
    ['not a key', '-----BEGIN PRIVATE KEY-----\nTk9UQUtFWQ==\n-----END PRIVATE KEY-----\n', /cannot read the PEM private key/],
  ];
  for (const [label, privateKey, message] of keys) {
    await assert.rejects(signGramineEnclave({ ...base, signer: { privateKey } }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SGX_BAD_KEY', label);
      assert.match(e.message, message, label);
      const body = privateKey.split('\n').slice(1, -2).join('');
      for (let i = 0; i + 16 <= body.length; i += 16) assert.ok(!e.message.includes(body.slice(i, i + 16)), `${label}: key material in message`);
      return true;
    });
  }
  // the same checks for the public key of a callback signer
  const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
  await assert.rejects(
    signGramineEnclave({ ...base, signer: { publicKey: rsa2048.publicKey, sign: () => new Uint8Array(384) } }),
    /3072 bits, got 2048/);
  // a public key where a private one is expected
  await assert.rejects(
    signGramineEnclave({ ...base, signer: { privateKey: createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string } }),
    (e: Error & { code?: string }) => e.code === 'SGX_BAD_KEY');
});

test('an encrypted PEM key needs its passphrase', async () => {
  const encrypted = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' }) as string;
  const base = { manifestSgx: read('case4-dcap.manifest.sgx'), pal, date: DATE };
  await assert.rejects(signGramineEnclave({ ...base, signer: { privateKey: encrypted, passphrase: 'wrong' } }), /cannot read the PEM private key/);
  const r = await signGramineEnclave({ ...base, signer: { privateKey: encrypted, passphrase: 'correct horse' } });
  assert.ok(Buffer.from(r.sigstruct).equals(read('case4-dcap.sig')));
});

test('a freshly generated key signs a verifiable SIGSTRUCT with its own MRSIGNER', async () => {
  const k = generateKeyPairSync('rsa', { modulusLength: 3072, publicExponent: 3 });
  const r = await signGramineEnclave({ manifestSgx: read('case3-edmm.manifest.sgx'), pal, signer: { privateKey: k.privateKey }, date: new Date(Date.UTC(2030, 5, 15)) });
  assert.equal(verifySigstructSignature(r.sigstruct), true);
  const modulusLe = Buffer.from(k.publicKey.export({ format: 'jwk' }).n as string, 'base64url').reverse();
  assert.equal(r.mrsigner, createHash('sha256').update(modulusLe).digest('hex'));
  assert.equal(r.mrenclave, JSON.parse(read('case3-edmm.expected.json').toString('utf8')).mr_enclave);
  assert.equal(parseSigstruct(r.sigstruct).date, '2030-06-15');
});

test('exactly one of manifest and manifestSgx', async () => {
  await assert.rejects(signGramineEnclave({ pal, signer: { privateKey: keyPem }, date: DATE }), /exactly one of manifest and manifestSgx/);
  await assert.rejects(
    signGramineEnclave({ manifest: 'x = 1', manifestSgx: 'x = 1', pal, signer: { privateKey: keyPem }, date: DATE }),
    /exactly one of manifest and manifestSgx/);
});
