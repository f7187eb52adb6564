/**
 * `enclavify convert` and `enclavify verify` end to end, in process: outputs (digest on stdout,
 * report on stderr, --json), the keys file (mode 0600, schema), refusals and usage errors with
 * their exit codes, verify's exit codes on an intact and a tampered image, and umoci reading the
 * result.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openImage, writeImage } from '../../lib/index.js';
import { protectionSchemaProblems } from '../../lib/protect/schemas.js';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, scratch, umociUnpack } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { editInPlace, fileItem, addLayer, flip, hostLsSkip, ldd, modify, writeHostLsImage } from '../protect/encrypt-helpers.js';
import { realpathSync } from 'node:fs';

const s = scratch('enclavify-cli-convert-');
after(() => s.done());
const src = `oci:${bbOci}:latest`;

let first: Promise<{ digest: string; out: string; keys: string; stderr: string; dir: string }> | undefined;
/** One CLI conversion of bb-fixture shared by several tests. */
function converted() {
  return (first ??= (async () => {
    const dir = path.join(s.dir, 'a');
    const out = `oci:${dir}/layout:enc`;
    const keys = path.join(dir, 'secret', 'keys.json');
    const r = await runCli(['convert', '--from', src, '--to', out, '--dir', '/app/data', '--keys-out', keys, '--output-dir', path.join(dir, 'artifacts')]);
    assert.equal(r.code, 0, r.stderr);
    return { digest: r.stdout, out, keys, stderr: r.stderr, dir };
  })());
}

test('convert: digest on stdout, report on stderr, keys file 0600 matching its schema, report.json', async () => {
  const { digest, out, keys, stderr, dir } = await converted();
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal((await (await openImage(out)).digest()), digest);
  assert.equal(statSync(keys).mode & 0o777, 0o600);
  const doc = JSON.parse(readFileSync(keys, 'utf8'));
  assert.deepEqual(protectionSchemaProblems('keys', doc), []);
  assert.deepEqual(doc.keys.map((k: { name: string; region: string }) => [k.name, k.region]), [['app_data', '/app/data']]);
  assert.ok(!stderr.includes(doc.keys[0].key), 'the key is not printed');
  assert.match(stderr, /encrypted\s+3 files\s+300,020 bytes/);
  assert.match(stderr, /Startup files of \/app\/server\.sh/);
  assert.match(stderr, /layers \(0 = base\) rewritten: 0; unchanged \(byte-identical\): 1, 2/);
  assert.match(stderr, /dropped from layer 0: \/app\/data\/tiny/);
  assert.ok(stderr.includes(`Keys: ${keys} (mode 0600`));
  const report = JSON.parse(readFileSync(path.join(dir, 'artifacts', 'report.json'), 'utf8'));
  assert.deepEqual(protectionSchemaProblems('classificationReport', report.fileClassify), []);
  assert.equal(report.encryptFS.manifestSha256, doc.manifest.sha256);
});

test('verify: exit 0 on the converted image, 3 with findings on a tampered copy', async () => {
  const { out, keys } = await converted();
  const ok = await runCli(['verify', out, '--keys', keys]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^verified: 3 encrypted, 9 authenticated, 1 plain files/);
  const manifestSha = JSON.parse(readFileSync(keys, 'utf8')).manifest.sha256;
  assert.equal((await runCli(['verify', out, '--keys', keys, '--manifest-sha256', manifestSha])).code, 0);
  assert.equal((await runCli(['verify', out, '--keys', keys, '--manifest-sha256', '0'.repeat(64)])).code, 3);

  const tampered = await modify(await openImage(out), editInPlace({ '/app/data/model.bin': flip(3 * 4096 + 1) }), addLayer([fileItem('app/data/added.txt', 'plaintext')]));
  try {
    await writeImage(tampered.image, `oci:${s.dir}/tampered:t`);
  } finally {
    await tampered.dispose();
  }
  const bad = await runCli(['verify', `oci:${s.dir}/tampered:t`, '--keys', keys]);
  assert.equal(bad.code, 3);
  assert.deepEqual(bad.stdout.split('\n').slice(1).map((l) => l.trim().split(': ').slice(0, 2).join(': ')), ['/app/data/added.txt: PLAINTEXT_IN_REGION', '/app/data/model.bin: PF_BAD_MAC']);
  assert.match(bad.stdout, /data node 1 \(physical node 3\) MAC mismatch/);
  const json = await runCli(['verify', `oci:${s.dir}/tampered:t`, '--keys', keys, '--json']);
  assert.equal(json.code, 3);
  const doc = cliJson(json.stdout);
  assert.equal(doc.ok, false);
  assert.deepEqual(doc.findings.map((f: { code: string }) => f.code), ['PLAINTEXT_IN_REGION', 'PF_BAD_MAC']);
});

test('convert --json prints one JSON object with the digest and the report', async () => {
  const dir = path.join(s.dir, 'json');
  const r = await runCli(['convert', '--from', src, '--to', `oci:${dir}/l:x`, '--dir', '/app/data', '--output-dir', dir, '--json', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', '--quiet: nothing on stderr');
  const doc = cliJson(r.stdout);
  assert.match(doc.digest, /^sha256:/);
  assert.equal(doc.keysFile, path.join(dir, 'keys.json'));
  assert.equal(statSync(doc.keysFile).mode & 0o777, 0o600);
  assert.equal(doc.report.fileClassify.totals.encrypted.files, 3);
  assert.equal(doc.report.encryptFS.keyNames[0], 'app_data');
  assert.ok(!r.stdout.includes(JSON.parse(readFileSync(doc.keysFile, 'utf8')).keys[0].key));
  // An existing default keys file is never overwritten.
  const again = await runCli(['convert', '--from', src, '--to', `oci:${dir}/l:y`, '--dir', '/app/data', '--output-dir', dir]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /keys\.json already exists/);
});

test('convert refuses a --dir over the entrypoint\'s interpreter: exit 1, explanation, nothing written', async () => {
  const dir = path.join(s.dir, 'refused');
  const r = await runCli(['convert', '--from', src, '--to', `oci:${dir}/l:x`, '--dir', '/bin', '--output-dir', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to encrypt files the entrypoint needs before any key exists/);
  assert.match(r.stderr, /\/bin\/busybox: the interpreter of \/app\/server\.sh/);
  assert.ok(!existsSync(path.join(dir, 'l')), 'no image');
  assert.ok(!existsSync(path.join(dir, 'keys.json')), 'no keys');
});

test('convert refuses --dir over the library directory of a dynamically linked entrypoint', { skip: hostLsSkip() }, async () => {
  const dir = path.join(s.dir, 'ls');
  const ref = await writeHostLsImage(dir);
  const libDir = realpathSync(ldd('/bin/ls')!.libs.find((l) => l.name.startsWith('libc.so'))!.path).replace(/\/[^/]+$/, '');
  const r = await runCli(['convert', '--from', ref, '--to', `oci:${dir}/out:x`, '--dir', libDir, '--output-dir', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`--dir ${libDir} would encrypt \\d+ startup files of /bin/ls`));
  assert.match(r.stderr, /library libc\.so\.6 needed by \/usr\/bin\/ls/);
});

test('usage errors exit 2; help lists convert and verify', async () => {
  assert.equal((await runCli(['convert', '--from', src, '--dir', '/app/data'])).code, 2);
  assert.equal((await runCli(['convert', '--from', src, '--to', `oci:${s.dir}/u:x`, '--bogus'])).code, 2);
  assert.equal((await runCli(['verify'])).code, 2);
  // without --keys an unconverted image is checked too: it has no protection manifest (a finding)
  const plain = await runCli(['verify', src]);
  assert.equal(plain.code, 3);
  assert.match(plain.stdout, /MANIFEST_MISSING/);
  const help = await runCli(['--help']);
  assert.match(help.stdout, /convert\s+convert a native image/);
  assert.match(help.stdout, /verify\s+check a converted image/);
  const ch = await runCli(['convert', '--help']);
  for (const o of ['--dir', '--plain', '--plain-file', '--host-path', '--keys-out', '--json', '--output-dir']) assert.ok(ch.stdout.includes(o), o);
});

test('convert --reuse-keys and --master-key-file: the same keys, reproducible output', async () => {
  const { keys } = await converted();
  const dir = path.join(s.dir, 'reuse');
  const mk = path.join(s.dir, 'master.hex');
  writeFileSync(mk, 'ab'.repeat(32) + '\n', { mode: 0o600 });
  const env = process.env.SOURCE_DATE_EPOCH;
  process.env.SOURCE_DATE_EPOCH = '1767225600';
  try {
    const args = (tag: string, k: string) => ['convert', '--from', src, '--to', `oci:${dir}/l:${tag}`, '--dir', '/app/data', '--reuse-keys', keys, '--master-key-file', mk, '--keys-out', k, '-q'];
    const a = await runCli(args('a', path.join(dir, 'ka.json')));
    const b = await runCli(args('b', path.join(dir, 'kb.json')));
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout, 'same digest');
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'ka.json'), 'utf8')).keys[0].key, JSON.parse(readFileSync(keys, 'utf8')).keys[0].key);
    // The keys file of this conversion pins its manifest; the reused one pins the first conversion's.
    assert.equal((await runCli(['verify', `oci:${dir}/l:a`, '--keys', path.join(dir, 'ka.json')])).code, 0);
    const other = await runCli(['verify', `oci:${dir}/l:a`, '--keys', keys]);
    assert.equal(other.code, 3);
    assert.match(other.stdout, /MANIFEST_DIGEST: .*the keys file records/);
    assert.equal((await runCli(['verify', `oci:${dir}/l:a`, '--keys', keys, '--manifest-sha256', JSON.parse(readFileSync(path.join(dir, 'ka.json'), 'utf8')).manifest.sha256])).code, 0, 'an explicit digest wins');
  } finally {
    if (env === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = env;
  }
});

test('umoci unpacks the CLI output', { skip: tool('umoci').skip }, async () => {
  const { out, dir } = await converted();
  const rootfs = umociUnpack(out.slice(4), path.join(dir, 'bundle'));
  assert.ok(readFileSync(path.join(rootfs, 'app/data/secret.txt')).subarray(0, 8).equals(Buffer.from('GRAFS_PF')));
  assert.ok(existsSync(path.join(rootfs, '.enclavify/protection.json')));
  assert.ok(!existsSync(path.join(rootfs, 'app/data/tiny')));
});
