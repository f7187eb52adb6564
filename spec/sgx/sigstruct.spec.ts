/**
 * SIGSTRUCT reading, building and verification, against a SIGSTRUCT written by Gramine's
 * `gramine-sgx-sign` (fixtures/sgx-sigstruct) and the values Gramine's viewer prints for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fixtures } from '../helpers/tools.js';
import {
  buildSigstruct, parseSigstruct, setSigstructSignature, sigstructSigningData, verifySigstructSignature,
} from '../../lib/sgx/sigstruct.js';
import { SIGSTRUCT } from '../../lib/sgx/constants.js';

const echoSig = readFileSync(path.join(fixtures, 'sgx-sigstruct', 'gramine-echo.sig'));
const echoExpected = JSON.parse(readFileSync(path.join(fixtures, 'sgx-sigstruct', 'gramine-echo.expected.json'), 'utf8'));
const keyPem = readFileSync(path.join(fixtures, 'gramine-sign', 'test-enclave-key.pem'), 'utf8');

test('the echo SIGSTRUCT parses to the values Gramine prints', () => {
  const s = parseSigstruct(echoSig);
  assert.equal(s.mrenclave, echoExpected.mr_enclave);
  assert.equal(s.mrsigner, echoExpected.mr_signer);
  assert.equal(s.isvProdId, echoExpected.isv_prod_id);
  assert.equal(s.isvSvn, echoExpected.isv_svn);
  assert.equal(s.debug, echoExpected.debug_enclave);
  assert.deepEqual(s.attributes, { flags: 0x6n, xfrm: 0x3n }); // MODE64BIT | DEBUG; x87 + SSE
  assert.deepEqual(s.attributeMask, { flags: 0xffffffffffffffffn, xfrm: 0xfffffffffff9ff1bn });
  assert.equal(s.miscSelect, 0);
  assert.equal(s.miscMask, 0xffffffff);
  assert.equal(s.date, '2026-11-26');
  assert.equal(s.vendor, 0);
  assert.equal(s.exponent, 3);
  assert.equal(s.modulus.length, 384);
  assert.equal(s.signature.length, 384);
  assert.equal(createHash('sha256').update(s.modulus).digest('hex'), s.mrsigner);
});

test('the echo SIGSTRUCT signature verifies', () => {
  assert.equal(verifySigstructSignature(echoSig), true);
});

test('changing any single byte of a SIGSTRUCT makes verification fail', () => {
  for (let i = 0; i < SIGSTRUCT.SIZE; i++) {
    const t = Uint8Array.from(echoSig);
    t[i] ^= 0x01;
    assert.equal(verifySigstructSignature(t), false, `flipping a bit at offset ${i} went unnoticed`);
  }
});

test('a signature moved to another SIGSTRUCT does not verify (wrong MRENCLAVE)', () => {
  const t = Uint8Array.from(echoSig);
  t.set(createHash('sha256').update('another enclave').digest(), SIGSTRUCT.ENCLAVE_HASH);
  assert.equal(verifySigstructSignature(t), false);
});

test('parseSigstruct refuses wrong sizes and headers', () => {
  assert.throws(() => parseSigstruct(echoSig.subarray(0, 1807)), /1808 bytes/);
  assert.throws(() => verifySigstructSignature(new Uint8Array(100)), /1808 bytes/);
  const t = Uint8Array.from(echoSig);
  t[SIGSTRUCT.HEADER2] = 9;
  assert.throws(() => parseSigstruct(t), /HEADER2/);
});

test('buildSigstruct + setSigstructSignature round-trip through parseSigstruct and verify', () => {
  const body = {
    mrenclave: 'ab'.repeat(32),
    isvProdId: 513,
    isvSvn: 65535,
    attributes: { flags: 0x4n, xfrm: 0x3n },
    attributeMask: { flags: 0xffffffffffffffffn, xfrm: 0xfffffffffff9ff1bn },
    miscSelect: 1,
    miscMask: 0xffffffff,
    date: '2031-12-09',
  };
  const unsigned = buildSigstruct(body);
  assert.equal(unsigned.length, 1808);
  // BCD date: 09 12 31 20
  assert.deepEqual([...unsigned.subarray(20, 24)], [0x09, 0x12, 0x31, 0x20]);
  assert.equal(verifySigstructSignature(unsigned), false);

  const data = sigstructSigningData(unsigned);
  assert.equal(data.length, 256);
  const key = createPrivateKey(keyPem);
  const n = Buffer.from(key.export({ format: 'jwk' }).n as string, 'base64url');
  const signed = setSigstructSignature(unsigned, { modulus: n, signature: sign('sha256', data, key) });
  assert.equal(verifySigstructSignature(signed), true);
  const p = parseSigstruct(signed);
  assert.equal(p.mrenclave, body.mrenclave);
  assert.equal(p.isvProdId, 513);
  assert.equal(p.isvSvn, 65535);
  assert.equal(p.debug, false);
  assert.equal(p.miscSelect, 1);
  assert.equal(p.date, '2031-12-09');
  assert.deepEqual(p.attributes, body.attributes);
  assert.equal(p.mrsigner, 'fc4dcb46be6a1294ed335e1ffdf56a136a78a7d20dac3ee9c2d2ea62a803c8f5');
});

test('buildSigstruct refuses malformed fields', () => {
  const body = {
    mrenclave: 'ab'.repeat(32), isvProdId: 0, isvSvn: 0,
    attributes: { flags: 0x4n, xfrm: 0x3n }, attributeMask: { flags: 0n, xfrm: 0n },
    miscSelect: 0, miscMask: 0, date: '2026-01-01',
  };
  assert.throws(() => buildSigstruct({ ...body, mrenclave: 'abc' }), /mrenclave/);
  assert.throws(() => buildSigstruct({ ...body, isvSvn: 65536 }), /isvSvn/);
  assert.throws(() => buildSigstruct({ ...body, date: '1/1/2026' }), /YYYY-MM-DD/);
  assert.deepEqual([...buildSigstruct({ ...body, date: new Date(Date.UTC(2026, 0, 2)) }).subarray(20, 24)], [0x02, 0x01, 0x26, 0x20]);
});
