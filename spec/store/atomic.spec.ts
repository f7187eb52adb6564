/**
 * writeFileAtomic(): all-or-nothing writes, mode 0600 by default whatever the umask, no temporary
 * files left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../lib/store/atomic.js';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enclavify-write-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const modeOf = async (f: string) => (await stat(f)).mode & 0o7777;

test('writes the data with mode 0600 and leaves no temporary file', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'session.yaml');
  await writeFileAtomic(file, 'fspf_key: "00"\n');
  assert.equal(await readFile(file, 'utf8'), 'fspf_key: "00"\n');
  assert.equal(await modeOf(file), 0o600);
  assert.deepEqual(await readdir(dir), ['session.yaml']);
});

test('replaces an existing world-readable file with a 0600 one', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'session.yaml');
  await writeFile(file, 'old');
  await chmod(file, 0o644);
  await writeFileAtomic(file, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...(await readFile(file))], [1, 2, 3]);
  assert.equal(await modeOf(file), 0o600);
  assert.deepEqual(await readdir(dir), ['session.yaml']);
});

test('the mode is exact: not widened by a permissive umask, not narrowed by a strict one', async (t) => {
  const dir = await tempDir(t);
  const old = process.umask(0o000);
  try {
    await writeFileAtomic(path.join(dir, 'a'), 'x');
  } finally {
    process.umask(old);
  }
  assert.equal(await modeOf(path.join(dir, 'a')), 0o600);
  const old2 = process.umask(0o077);
  try {
    await writeFileAtomic(path.join(dir, 'b'), 'x', { mode: 0o644 });
  } finally {
    process.umask(old2);
  }
  assert.equal(await modeOf(path.join(dir, 'b')), 0o644);
});

test('a failed write leaves the target untouched and no temporary file', async (t) => {
  const dir = await tempDir(t);
  // The target is a non-empty directory, so the final rename fails.
  const target = path.join(dir, 'policy.json');
  await mkdir(target);
  await writeFile(path.join(target, 'keep'), 'k');
  await assert.rejects(writeFileAtomic(target, '{}'), /writing .*policy\.json/);
  assert.deepEqual(await readdir(dir), ['policy.json']);
  assert.deepEqual(await readdir(target), ['keep']);
  await assert.rejects(writeFileAtomic(path.join(dir, 'missing', 'x.json'), '{}'), /writing .*x\.json: ENOENT/);
  assert.deepEqual(await readdir(dir), ['policy.json']);
});
