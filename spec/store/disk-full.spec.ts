/**
 * A full disk, on small tmpfs mounts: the error is NO_SPACE and says which file system filled up
 * (the temporary directory's or the destination's), at which mount and path, and what was being
 * written; nothing is left behind (no temporaries, no empty layout or output directories).
 * Needs `mount -t tmpfs` (root); skipped with a message where mounting is not allowed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bbOci, scratch } from '../helpers/images.js';
import { runCli } from '../helpers/cli.js';
import { ensureFreeSpace } from '../../lib/store/space.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { encryptProtectedFile } from '../../lib/protect/pf/writer.js';

const s = scratch('enclavify-disk-full-');
const mounts: string[] = [];
after(() => {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
  s.done();
});

/** Mounts a tmpfs of `size` at a new directory; undefined when mounting is not allowed here. */
function tmpfs(name: string, size: string): string | undefined {
  const dir = path.join(s.dir, name);
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

const probe = tmpfs('probe', '64k');
const skip = probe ? false : 'cannot mount a tmpfs here (needs root and mount permission): the full-disk tests are skipped';
if (skip) console.log(`# ${skip}`);

test('destination full: NO_SPACE names the destination\'s file system and the blob; no layout left behind', { skip }, async () => {
  const fs = tmpfs('dest', '1m')!;
  const layout = path.join(fs, 'layout');
  const r = await runCli(['copy', '-q', `oci:${bbOci}:latest`, `oci:${layout}:x`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no space left on the file system at /);
  assert.ok(r.stderr.includes(`at ${fs} (tmpfs)`), r.stderr);
  assert.match(r.stderr, /into the destination layout/);
  assert.match(r.stderr, /blobs\/sha256\/[0-9a-f]{64}/, 'names the blob being written');
  assert.ok(!existsSync(layout), 'the layout this call created is removed');
  assert.deepEqual(readdirSync(fs), []);
});

test('temporary directory full: NO_SPACE names the temporary directory\'s file system; nothing left in it or in --output-dir', { skip }, async () => {
  const fs = tmpfs('tmp', '64k')!;
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = fs;
  try {
    assert.equal(tmpdir(), fs);
    const d = path.join(s.dir, 'conv');
    const r = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${d}/layout:enc`, '--dir', '/app/data', '--output-dir', path.join(d, 'out')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /in the temporary directory: no space left on the file system at /);
    assert.ok(r.stderr.includes(`at ${fs} (tmpfs)`), r.stderr);
    assert.deepEqual(readdirSync(fs), [], 'no temporaries survive');
    assert.ok(!existsSync(d), 'no output or layout directory was created');
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
});

test('free-space check before staging: fails early with the numbers', { skip }, async () => {
  const fs = tmpfs('small', '64k')!;
  await assert.rejects(ensureFreeSpace(fs, 20 * 2 ** 30, 'staging the encrypted file /big', 'temporary directory'), (e: unknown) => {
    assert.ok(e instanceof EnclavifyError && e.code === 'NO_SPACE');
    assert.match(e.message, /staging the encrypted file \/big: needs 20\.0 GiB in the temporary directory .* but the file system at .* \(tmpfs\), 64\.0 KiB free of 64\.0 KiB/);
    return true;
  });
});

test('a 20 GiB file to encrypt fails before anything is staged or read, naming the file and the numbers', { skip }, async () => {
  const fs = tmpfs('stage', '1m')!;
  let read = 0;
  async function* plaintext() {
    read++;
    yield new Uint8Array(4096);
  }
  await assert.rejects(encryptProtectedFile({ wrapKey: new Uint8Array(16), path: '/data/huge.bin', size: 20 * 2 ** 30, plaintext: plaintext(), tmpDir: fs }), (e: unknown) => {
    assert.ok(e instanceof EnclavifyError && e.code === 'NO_SPACE', String(e));
    assert.match(e.message, /staging the encrypted file \/data\/huge\.bin: needs 20\.\d GiB in the temporary directory/);
    assert.ok(e.message.includes(`the file system at ${fs} (tmpfs)`), e.message);
    return true;
  });
  assert.equal(read, 0, 'no plaintext was read');
  assert.deepEqual(readdirSync(fs), [], 'nothing staged');
});

test('a destination in new directories: the directories a failed write created are removed too', { skip }, async () => {
  const fs = tmpfs('nested', '1m')!;
  const r = await runCli(['copy', '-q', `oci:${bbOci}:latest`, `oci:${fs}/a/b/layout:x`]);
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(readdirSync(fs), []);
});
