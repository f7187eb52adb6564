/**
 * Manifest expansion against Gramine's own `.manifest.sgx` outputs, Gramine's defaults, the SGX
 * settings and attributes read from a manifest, and the TOML layout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { fixtures } from '../helpers/tools.js';
import { expandGramineManifest, parseSize, readGramineSgxSettings } from '../../lib/sgx/manifest.js';
import { stringifyManifestToml } from '../../lib/sgx/toml-writer.js';

const dir = path.join(fixtures, 'gramine-sign');
const read = (f: string): string => readFileSync(path.join(dir, f), 'utf8');
const CASES = ['case1-debug', 'case2-release', 'case3-edmm', 'case4-dcap'];
const EP = 'file:/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so';
const H = (c: string): string => c.repeat(64);

for (const c of CASES) {
  test(`${c}: expanded manifest equals Gramine's .manifest.sgx as parsed TOML`, () => {
    const ours = expandGramineManifest(read(`${c}.manifest`));
    assert.deepStrictEqual(parse(ours), parse(read(`${c}.manifest.sgx`)));
    // and, with the same layout as Gramine's writer, byte for byte
    assert.equal(ours, read(`${c}.manifest.sgx`));
  });
}

test('expansion adds Gramine\'s defaults to a minimal manifest', () => {
  const out = parse(expandGramineManifest('libos.entrypoint = "/app"\n', { resolveSha256: (u) => (u === EP ? H('e') : undefined) }));
  assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), {
    libos: { entrypoint: '/app' },
    sgx: {
      trusted_files: [], max_threads: 4, isvprodid: 0, isvsvn: 0, remote_attestation: 'none', debug: false,
      enable_stats: false, edmm_enable: false, enclave_size: '256M', use_exinfo: false,
      cpu_features: { avx: 'unspecified', avx512: 'unspecified', amx: 'unspecified', mpx: 'disabled', pkru: 'disabled' },
    },
    loader: { entrypoint: { uri: EP, sha256: H('e') } },
  });
  const edmm = parse(expandGramineManifest('sgx.edmm_enable = true\nloader.entrypoint.sha256 = "' + H('e') + '"\n')) as { sgx: { enclave_size: string } };
  assert.equal(edmm.sgx.enclave_size, '1024G');
});

test('trusted files: strings resolved, duplicates merged, conflicts and missing hashes refused', () => {
  const head = `loader.entrypoint.sha256 = "${H('e')}"\n`;
  const hashes = new Map([['file:/a', H('a')], ['file:/b', H('b')]]);
  const out = parse(expandGramineManifest(
    head + `sgx.trusted_files = [ "file:/a", { uri = "file:/b" }, { sha256 = "${H('a')}", uri = "file:/a" }, "file:/b" ]\n`,
    { resolveSha256: (u) => hashes.get(u) },
  )) as { sgx: { trusted_files: unknown[] } };
  assert.deepStrictEqual(JSON.parse(JSON.stringify(out.sgx.trusted_files)), [
    { uri: 'file:/a', sha256: H('a') }, { uri: 'file:/b', sha256: H('b') },
  ]);

  assert.throws(() => expandGramineManifest(head + 'sgx.trusted_files = [ "file:/missing" ]\n', { name: 'app.manifest' }),
    /app\.manifest: trusted file "file:\/missing" has no sha256/);
  assert.throws(() => expandGramineManifest(head + `sgx.trusted_files = [ { uri = "file:/a", sha256 = "${H('a')}" }, { uri = "file:/a", sha256 = "${H('b')}" } ]\n`),
    /"file:\/a" twice with different sha256/);
  assert.throws(() => expandGramineManifest(head + 'sgx.trusted_files = [ "file:/lib/" ]\n'), /is a directory/);
  assert.throws(() => expandGramineManifest(head + 'sgx.trusted_files = [ "http://x/a" ]\n'), /only file: URIs/);
  assert.throws(() => expandGramineManifest(head + `sgx.trusted_files = [ { uri = "file:/a", sha256 = "${H('a')}", size = 3 } ]\n`), /unknown keys: size/);
  assert.throws(() => expandGramineManifest(head + 'sgx.trusted_files = [ { uri = "file:/a", sha256 = "xyz" } ]\n'), /64 hex digits/);
  assert.throws(() => expandGramineManifest(head + 'sgx.trusted_files = { a = 1 }\n'), /sgx.trusted_files must be an array/);
  assert.throws(() => expandGramineManifest('libos.entrypoint = "/app"\n'), /loader.entrypoint "file:\/usr\/lib\/x86_64-linux-gnu\/gramine\/libsysdb.so" has no sha256/);
  assert.throws(() => expandGramineManifest('x = [1,'), /manifest: invalid TOML at line 1/);
});

test('settings and SIGSTRUCT attributes follow sgx.debug, sgx.use_exinfo and sgx.cpu_features', () => {
  const s = readGramineSgxSettings(read('case2-release.manifest.sgx'));
  assert.equal(s.enclaveSize, 1 << 30);
  assert.equal(s.maxThreads, 8);
  assert.equal(s.debug, false);
  assert.equal(s.isvProdId, 7);
  assert.equal(s.isvSvn, 3);
  assert.deepEqual(s.attributes, { flags: 0x4n, xfrm: 0x3n });
  assert.deepEqual(s.attributeMask, { flags: 0xffffffffffffffffn, xfrm: 0xfffffffffff9ff1bn });
  assert.equal(s.miscSelect, 0);

  const t = readGramineSgxSettings(`
sgx.debug = true
sgx.use_exinfo = true
sgx.cpu_features = { avx = "required", avx512 = "disabled", amx = "required", mpx = "required", pkru = "disabled" }
`);
  assert.equal(t.attributes.flags, 0x6n);
  // Gramine's AVX-512 bits (0xe4) include AVX's (0x4): disabling avx512 clears AVX too, as in Gramine
  assert.equal(t.attributes.xfrm, 0x3n | 0x60000n | 0x18n);
  assert.equal(t.attributeMask.xfrm, 0xfffffffffff9ff1bn | 0x4n | 0xe4n | 0x60000n | 0x18n | 0x200n);
  assert.equal(t.miscSelect, 1);
  assert.equal(readGramineSgxSettings('sgx.remote_attestation = "dcap"').remoteAttestation, 'dcap');

  assert.throws(() => readGramineSgxSettings('sgx.cpu_features.mpx = "unspecified"'), /sgx.cpu_features.mpx must be "required" or "disabled"/);
  assert.throws(() => readGramineSgxSettings('sgx.cpu_features.avx = "maybe"'), /sgx.cpu_features.avx must be/);
  assert.throws(() => readGramineSgxSettings('sgx.debug = "yes"'), /sgx.debug must be true or false/);
  assert.throws(() => readGramineSgxSettings('sgx.isvsvn = 70000'), /sgx.isvsvn must be an integer from 0 to 65535/);
  assert.throws(() => readGramineSgxSettings('sgx.max_threads = 0'), /sgx.max_threads/);
  assert.throws(() => readGramineSgxSettings('sgx.enclave_size = 1024'), /sgx.enclave_size must be a string/);
  assert.throws(() => readGramineSgxSettings(Uint8Array.of(0xff, 0xfe)), /not valid UTF-8/);
});

test('parseSize reads sizes as Gramine does and insists on a power of two', () => {
  assert.equal(parseSize('256M'), 256 * 2 ** 20);
  assert.equal(parseSize('1G'), 2 ** 30);
  assert.equal(parseSize('1024G'), 2 ** 40);
  assert.equal(parseSize('64K'), 65536);
  assert.equal(parseSize('0x1000_0000'), 2 ** 28);
  assert.equal(parseSize('4096'), 4096);
  for (const bad of ['3G', '256m', '', 'G', '0', '1.5G', '1T', '0256M', '-1G']) {
    assert.throws(() => parseSize(bad), /power of two/, bad);
  }
});

test('TOML writer: Gramine\'s layout for arrays, inline tables, keys, strings and floats', () => {
  const doc = parse([
    'a = 1.0', 'b = 1e20', 'c = 0.0001', 'd = 1.5e-7', 'e = 123456.789', 'f = -inf', 'g = 3',
    's = "tab\\tquote\\"back\\\\slash\\u0001del\\u007fnl\\n"',
    '"key with space" = true',
    'empty = []',
    'nested = [[1, 2], []]',
    'short = [ { x = 1 } ]',
    `long = [ { uri = "file:/${'x'.repeat(80)}", sha256 = "${H('0')}" } ]`,
    '[t]', '[t.u]', 'v = 1',
  ].join('\n'), { integersAsBigInt: true });
  const out = stringifyManifestToml(doc);
  assert.equal(out, [
    'a = 1.0', 'b = 1e+20', 'c = 0.0001', 'd = 1.5e-07', 'e = 123456.789', 'f = -inf', 'g = 3',
    's = "tab\tquote\\"back\\\\slash\\u0001del\\u007fnl\\n"',
    '"key with space" = true',
    'empty = []',
    'nested = [\n    [\n        1,\n        2,\n    ],\n    [],\n]',
    'short = [\n    { x = 1 },\n]',
    '',
    '[[long]]', `uri = "file:/${'x'.repeat(80)}"`, `sha256 = "${H('0')}"`,
    '',
    '[t.u]', 'v = 1', '',
  ].join('\n'));
  assert.deepStrictEqual(parse(out, { integersAsBigInt: true }), doc);
});
