/**
 * Hardening of what convert and copy write (issue 10): no write through a symlink inside a
 * destination layout, --output-dir or --keys-out; convert refuses its own source tag; the keys
 * commit protocol recognises completed and interrupted conversions; failures leave no empty
 * directories; keys files readable by others warn, and symlinked ones are refused unless the
 * directories on the way are safe (a Kubernetes Secret volume passes).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, scratch, writableCopy } from '../helpers/images.js';

const s = scratch('enclavify-harden-write-');
after(() => s.done());
const src = `oci:${bbOci}:latest`;
let n = 0;
const fresh = () => path.join(s.dir, `case-${n++}`);

test('a destination layout whose blobs/sha256 (or blobs, or index.json) is a symlink is refused, nothing is written there', async () => {
  for (const link of ['blobs/sha256', 'blobs', 'index.json']) {
    const d = fresh();
    const layout = path.join(d, 'layout');
    const elsewhere = path.join(d, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    mkdirSync(path.dirname(path.join(layout, link)), { recursive: true });
    writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    if (link === 'index.json') writeFileSync(path.join(elsewhere, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    symlinkSync(link === 'index.json' ? path.join(elsewhere, 'index.json') : elsewhere, path.join(layout, link));
    const before = readdirSync(elsewhere);
    const r = await runCli(['copy', '-q', src, `oci:${layout}:x`]);
    assert.equal(r.code, 1, `${link}: ${r.stderr}`);
    assert.ok(r.stderr.includes(path.join(layout, link)), `${link}: the message names the link: ${r.stderr}`);
    assert.match(r.stderr, /does not write through symlinks/);
    assert.deepEqual(readdirSync(elsewhere), before, `${link}: nothing was written where the link points`);
    if (link === 'index.json') assert.equal(readFileSync(path.join(elsewhere, 'index.json'), 'utf8'), '{"schemaVersion":2,"manifests":[]}');
  }
});

test('a blob in the destination that is a symlink is refused, not skipped as present', async () => {
  const d = fresh();
  const layout = writableCopy(bbOci, path.join(d, 'layout'));
  const blobs = path.join(layout, 'blobs', 'sha256');
  const victim = readdirSync(blobs).sort()[0];
  const target = path.join(d, 'target');
  copyFileSync(path.join(blobs, victim), target);
  unlinkSync(path.join(blobs, victim));
  symlinkSync(target, path.join(blobs, victim));
  const r = await runCli(['copy', '-q', src, `oci:${layout}:again`]);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(path.join(blobs, victim)), r.stderr);
});

test('--keys-out and artifacts under --output-dir are never written through symlinks; a failed convert leaves no empty directories', async () => {
  const d = fresh();
  const elsewhere = path.join(d, 'elsewhere');
  mkdirSync(elsewhere, { recursive: true });
  writeFileSync(path.join(elsewhere, 'victim'), 'precious');
  // --keys-out a symlink
  const link = path.join(d, 'keys.json');
  symlinkSync(path.join(elsewhere, 'victim'), link);
  let r = await runCli(['convert', '--from', src, '--to', `oci:${d}/out:enc`, '--dir', '/app/data', '--keys-out', link]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /symlink/);
  assert.equal(readFileSync(path.join(elsewhere, 'victim'), 'utf8'), 'precious');
  // report.json under --output-dir a symlink
  const outDir = path.join(d, 'artifacts');
  mkdirSync(outDir);
  symlinkSync(path.join(elsewhere, 'victim'), path.join(outDir, 'report.json'));
  r = await runCli(['convert', '--from', src, '--to', `oci:${d}/out2:enc`, '--dir', '/app/data', '--output-dir', outDir]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(readFileSync(path.join(elsewhere, 'victim'), 'utf8'), 'precious');
  assert.deepEqual(readdirSync(outDir), ['report.json'], 'the keys written before the failure were removed');
  assert.ok(!existsSync(path.join(d, 'out2')), 'no image');
  // A destination that fails (an existing docker archive) after the artifacts: the nested
  // output directory this run created is removed again.
  writeFileSync(path.join(d, 'exists.tar'), 'x');
  const nested = path.join(d, 'new', 'deeper');
  r = await runCli(['convert', '--from', src, '--to', `docker-archive:${d}/exists.tar`, '--dir', '/app/data', '--output-dir', nested]);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(!existsSync(path.join(d, 'new')), 'no empty output directories left behind');
});

test('convert refuses to move its own source tag (usage error, exit 2)', async () => {
  const d = fresh();
  const layout = writableCopy(bbOci, path.join(d, 'layout'));
  const index = readFileSync(path.join(layout, 'index.json'), 'utf8');
  const r = await runCli(['convert', '--from', `oci:${layout}:latest`, '--to', `oci:${layout}:latest`, '--dir', '/app/data', '--output-dir', path.join(d, 'k')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /source image's own tag/);
  assert.equal(readFileSync(path.join(layout, 'index.json'), 'utf8'), index);
  const other = await runCli(['convert', '-q', '--from', `oci:${layout}:latest`, '--to', `oci:${layout}:latest-enc`, '--dir', '/app/data', '--output-dir', path.join(d, 'k')]);
  assert.equal(other.code, 0, other.stderr);
});

test('reruns: an identical rerun after success is a no-op; an interrupted conversion is completed or replaced by content', async () => {
  const d = fresh();
  const out = `oci:${d}/layout:enc`;
  const keys = path.join(d, 'out', 'keys.json');
  const args = ['convert', '--from', src, '--to', out, '--dir', '/app/data', '--output-dir', path.join(d, 'out')];
  const first = await runCli(args);
  assert.equal(first.code, 0, first.stderr);
  const doc = JSON.parse(readFileSync(keys, 'utf8'));
  assert.equal(doc.conversion.image, first.stdout, 'the keys record the image they belong to');
  assert.equal(doc.conversion.reference, out);

  // Identical rerun: nothing replaced.
  const again = await runCli(args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);
  assert.match(again.stderr, /already the result of this conversion/);
  assert.equal(readFileSync(keys, 'utf8'), JSON.stringify(doc, null, 2) + '\n');

  // Killed after the tag moved, before the keys' rename: the rerun completes the commit.
  renameSync(keys, `${keys}.pending`);
  const completed = await runCli(args);
  assert.equal(completed.code, 0, completed.stderr);
  assert.match(completed.stderr, /completed an interrupted conversion/);
  assert.equal(completed.stdout, first.stdout, 'the image was not converted again');
  assert.deepEqual(JSON.parse(readFileSync(keys, 'utf8')), doc);
  assert.ok(!existsSync(`${keys}.pending`));

  // Killed before the tag moved: the pending keys name an image that was never tagged; replaced.
  const pending = { ...doc, conversion: { ...doc.conversion, image: `sha256:${'0'.repeat(64)}` } };
  unlinkSync(keys);
  writeFileSync(`${keys}.pending`, JSON.stringify(pending), { mode: 0o600 });
  const replaced = await runCli(args);
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.match(replaced.stderr, /removed .*keys\.json\.pending, left by an interrupted conversion/);
  const now = JSON.parse(readFileSync(keys, 'utf8'));
  assert.equal(now.conversion.image, replaced.stdout);
  assert.ok(!existsSync(`${keys}.pending`));
  assert.equal((await runCli(['verify', out, '--keys', keys])).code, 0);

  // A different command: the keys of the existing image are never replaced by default.
  const other = await runCli([...args, '--single-key', 'k']);
  assert.equal(other.code, 2, other.stderr);
  assert.match(other.stderr, /already exists/);
  assert.deepEqual(JSON.parse(readFileSync(keys, 'utf8')), now);
});

test('keys files: readable by others warns (stderr and --json); symlinks only through safe directories; a Secret volume passes', async () => {
  const d = fresh();
  const out = `oci:${d}/layout:enc`;
  const keys = path.join(d, 'k', 'keys.json');
  assert.equal((await runCli(['convert', '-q', '--from', src, '--to', out, '--dir', '/app/data', '--keys-out', keys])).code, 0);
  let r = await runCli(['verify', out, '--keys', keys]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /WARNING/);
  chmodSync(keys, 0o644);
  r = await runCli(['verify', '--json', out, '--keys', keys]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /WARNING: keys file .* is readable by all users \(mode 0644\)/);
  assert.match(cliJson(r.stdout).warnings[0], /readable by all users/);
  chmodSync(keys, 0o600);

  // A link in a directory anyone can write: refused, naming the directory; the override works.
  const open = path.join(d, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  symlinkSync(keys, path.join(open, 'keys.json'));
  r = await runCli(['verify', out, '--keys', path.join(open, 'keys.json')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /reached through a symlink/);
  assert.ok(r.stderr.includes(open), r.stderr);
  assert.match(r.stderr, /--allow-keys-symlink/);
  r = await runCli(['verify', out, '--keys', path.join(open, 'keys.json'), '--allow-keys-symlink']);
  assert.equal(r.code, 0, r.stderr);

  // A Kubernetes Secret volume: a sticky, world-writable root-owned mount with ..data links.
  const vol = path.join(d, 'secret-volume');
  const ts = path.join(vol, '..2026_12_02_06_00_00.123456789');
  mkdirSync(ts, { recursive: true });
  copyFileSync(keys, path.join(ts, 'keys.json'));
  chmodSync(path.join(ts, 'keys.json'), 0o600);
  symlinkSync(path.basename(ts), path.join(vol, '..data'));
  symlinkSync('..data/keys.json', path.join(vol, 'keys.json'));
  chmodSync(vol, 0o1777);
  r = await runCli(['verify', out, '--keys', path.join(vol, 'keys.json')]);
  assert.equal(r.code, 0, r.stderr);
  // The same layout without the sticky bit is not safe.
  chmodSync(vol, 0o777);
  r = await runCli(['verify', out, '--keys', path.join(vol, 'keys.json')]);
  assert.equal(r.code, 1, r.stderr);
});
