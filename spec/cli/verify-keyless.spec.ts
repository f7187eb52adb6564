/**
 * `enclavify verify` without a keys file: conversions without --dir write none, and their
 * authenticated files must still be checked. Attacks: a changed authenticated file, a changed
 * ciphertext (no key needed to see it), and an unpinned manifest under --require-pin.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openImage, writeImage } from '../../lib/index.js';
import { runCli } from '../helpers/cli.js';
import { bbOci, scratch } from '../helpers/images.js';
import { editInPlace, flip, modify } from '../protect/encrypt-helpers.js';

const s = scratch();
after(() => s.done());
const src = `oci:${bbOci}:latest`;

async function tamper(from: string, to: string, file: string, at: number): Promise<void> {
  const t = await modify(await openImage(from), editInPlace({ [file]: flip(at) }));
  try {
    await writeImage(t.image, to);
  } finally {
    await t.dispose();
  }
}

test('verify without --keys checks an authenticate-only conversion: 0 intact (unpinned: a warning), 3 naming a changed file', async () => {
  const dir = path.join(s.dir, 'auth');
  const out = `oci:${dir}/layout:auth`;
  const conv = await runCli(['convert', '-q', '--from', src, '--to', out, '--output-dir', path.join(dir, 'art')]);
  assert.equal(conv.code, 0, conv.stderr);
  assert.ok(!existsSync(path.join(dir, 'art', 'keys.json')), 'no keys file without --dir');
  const manifestSha = JSON.parse(readFileSync(path.join(dir, 'art', 'report.json'), 'utf8')).encryptFS.manifestSha256 as string;

  const ok = await runCli(['verify', out]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^verified: 0 encrypted, 12 authenticated, 1 plain files/);
  assert.match(ok.stderr, /warning: the protection manifest \(sha256:[0-9a-f]{64}\) is not pinned.*--manifest-sha256/);

  const pinned = await runCli(['verify', out, '--manifest-sha256', manifestSha, '--require-pin']);
  assert.equal(pinned.code, 0, pinned.stdout + pinned.stderr);
  assert.doesNotMatch(pinned.stderr, /not pinned/);
  assert.match(pinned.stdout, /the expected digest/);
  assert.equal((await runCli(['verify', out, '--manifest-sha256', '0'.repeat(64)])).code, 3);
  // --require-pin without anything to pin with: a usage error before any work
  const noPin = await runCli(['verify', out, '--require-pin']);
  assert.equal(noPin.code, 2);
  assert.match(noPin.stderr, /--require-pin needs .*--manifest-sha256/);

  // One flipped byte in the entrypoint script (authenticated: loaded before keys exist).
  const bad = `oci:${dir}/tampered:t`;
  await tamper(out, bad, '/app/server.sh', 20);
  const r = await runCli(['verify', bad]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(1).filter((l) => l.startsWith('  ')).map((l) => l.trim().split(': ').slice(0, 2).join(': ')), ['/app/server.sh: HASH_MISMATCH']);
  const json = JSON.parse((await runCli(['verify', bad, '--json', '--manifest-sha256', manifestSha])).stdout);
  assert.equal(json.ok, false);
  assert.equal(json.pinned, true);
  assert.deepEqual(json.findings.map((f: { path: string; code: string }) => [f.path, f.code]), [['/app/server.sh', 'HASH_MISMATCH']]);
});

test('verify without --keys on an encrypted conversion: encrypted files "not checked", but a changed ciphertext is still found', async () => {
  const dir = path.join(s.dir, 'enc');
  const out = `oci:${dir}/layout:enc`;
  const keys = path.join(dir, 'keys.json');
  const conv = await runCli(['convert', '-q', '--from', src, '--to', out, '--dir', '/app/data', '--keys-out', keys, '--output-dir', path.join(dir, 'art')]);
  assert.equal(conv.code, 0, conv.stderr);
  const ok = await runCli(['verify', out]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^verified: 3 encrypted \(3 not checked: no keys; ciphertext digests compared\), 9 authenticated/);
  const json = JSON.parse((await runCli(['verify', out, '--json'])).stdout);
  assert.deepEqual(json.notChecked.paths, ['/app/data/empty', '/app/data/model.bin', '/app/data/secret.txt']);
  assert.equal(json.pinned, false);
  // --keys adds the encrypted ones (and pins the manifest through the keys file)
  const withKeys = await runCli(['verify', out, '--keys', keys, '--require-pin']);
  assert.equal(withKeys.code, 0, withKeys.stdout + withKeys.stderr);
  assert.doesNotMatch(withKeys.stdout, /not checked/);

  const bad = `oci:${dir}/tampered:t`;
  await tamper(out, bad, '/app/data/model.bin', 5 * 4096 + 7);
  const r = await runCli(['verify', bad]);
  assert.equal(r.code, 3, r.stdout);
  assert.match(r.stdout, /\/app\/data\/model\.bin: CIPHERTEXT_CHANGED: encrypted file changed.*not decrypted \(no keys given\)/);
  assert.match(r.stdout, /not checked: 3 encrypted file\(s\)/);
  // with the keys, the same change is located in its node
  assert.match((await runCli(['verify', bad, '--keys', keys])).stdout, /model\.bin: PF_BAD_MAC/);
});
