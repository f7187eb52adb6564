/**
 * resolvePath (chroot semantics, merged-/usr, loops, aliases) and memoryLookup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FsEntry } from '../../lib/fs/entry.js';
import { lexicalPath, memoryLookup, resolvePath, SymlinkLoopError, MAX_SYMLINKS, type MemoryEntry } from '../../lib/fs/lookup.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const file = (path: string, content = '', mode = 0o644): MemoryEntry => ({ path, type: 'file', mode, uid: 0, gid: 0, mtime: 0, size: content.length, content: enc(content) });
const dir = (path: string): FsEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
const link = (path: string, linkname: string): FsEntry => ({ path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkname });

/** A Debian-like merged-/usr tree. */
function debian() {
  return memoryLookup([
    link('bin', 'usr/bin'),
    link('lib', 'usr/lib'),
    link('lib64', 'usr/lib64'),
    link('sbin', 'usr/sbin'),
    file('usr/bin/ls', 'ls', 0o755),
    file('usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'ld'),
    link('usr/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    file('usr/lib/x86_64-linux-gnu/libc.so.6', 'libc'),
    link('usr/lib/x86_64-linux-gnu/libz.so.1', 'libz.so.1.3'),
    file('usr/lib/x86_64-linux-gnu/libz.so.1.3', 'z'),
    dir('etc'),
    file('etc/passwd', 'image passwd'),
  ]);
}

test('lexicalPath collapses . and .. and stays at the root', () => {
  assert.equal(lexicalPath('/a/./b//c/../d'), 'a/b/d');
  assert.equal(lexicalPath('../../../etc/passwd'), 'etc/passwd');
  assert.equal(lexicalPath('x/y', 'app/src'), 'app/src/x/y');
  assert.equal(lexicalPath('/x', 'app'), 'x');
  assert.equal(lexicalPath('/'), '');
});

test('follows merged-/usr directory symlinks and records every path on the way', () => {
  const fs = debian();
  const r = resolvePath(fs, '/lib64/ld-linux-x86-64.so.2');
  assert.equal(r.path, 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  assert.equal(r.entry?.type, 'file');
  assert.deepEqual(r.links, ['lib64', 'usr/lib64/ld-linux-x86-64.so.2', 'lib']);
  assert.deepEqual(r.aliases, ['lib64/ld-linux-x86-64.so.2', 'usr/lib64/ld-linux-x86-64.so.2', 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2']);

  const z = resolvePath(fs, 'lib/x86_64-linux-gnu/libz.so.1');
  assert.equal(z.path, 'usr/lib/x86_64-linux-gnu/libz.so.1.3');
  assert.deepEqual(z.aliases, ['lib/x86_64-linux-gnu/libz.so.1', 'usr/lib/x86_64-linux-gnu/libz.so.1']);

  const plain = resolvePath(fs, 'usr/bin/ls');
  assert.deepEqual([plain.path, plain.links, plain.aliases], ['usr/bin/ls', [], []]);
});

test('followFinal: false stops at a final symlink but still follows directories', () => {
  const r = resolvePath(debian(), '/lib/x86_64-linux-gnu/libz.so.1', { followFinal: false });
  assert.equal(r.path, 'usr/lib/x86_64-linux-gnu/libz.so.1');
  assert.equal(r.entry?.type, 'symlink');
  assert.deepEqual(r.links, ['lib']);
  // A trailing slash forces the final symlink to be followed, and asks for a directory.
  const d = resolvePath(debian(), '/lib/', { followFinal: false });
  assert.equal(d.path, 'usr/lib');
  assert.equal(d.entry?.type, 'dir');
  assert.equal(resolvePath(debian(), '/usr/bin/ls/').entry, undefined);
});

test('absolute targets and .. stay inside the image (chroot semantics)', () => {
  const fs = memoryLookup([
    file('etc/passwd', 'image passwd'),
    link('app/escape', '../../../../../etc/passwd'),
    link('app/abs', '/etc/passwd'),
    link('app/up', '..'),
  ]);
  for (const p of ['app/escape', 'app/abs', '/../../etc/passwd', 'app/up/up/../etc/passwd']) {
    const r = resolvePath(fs, p);
    assert.equal(r.path, 'etc/passwd', p);
    assert.equal(r.entry?.type, 'file', p);
  }
  assert.equal(resolvePath(fs, '/..').path, '');
  assert.equal(resolvePath(fs, '/').entry?.type, 'dir');
});

test('.. after a symlinked directory is physical, not lexical', () => {
  const fs = memoryLookup([link('a', 'x/y'), file('x/target', 't'), file('target', 'wrong')]);
  const r = resolvePath(fs, 'a/../target');
  assert.equal(r.path, 'x/target');
  assert.equal(r.entry?.size, 1);
});

test('relative paths start at cwd', () => {
  const fs = memoryLookup([file('app/bin/run', '', 0o755), link('app/current', 'bin')]);
  assert.equal(resolvePath(fs, 'current/run', { cwd: 'app' }).path, 'app/bin/run');
  assert.equal(resolvePath(fs, './bin/../bin/run', { cwd: 'app' }).path, 'app/bin/run');
  assert.equal(resolvePath(fs, '/app/bin/run', { cwd: 'elsewhere' }).path, 'app/bin/run');
});

test('symlink loops raise SymlinkLoopError (ELOOP)', () => {
  const fs = memoryLookup([link('a', 'b'), link('b', 'a'), link('self', 'self'), link('d', 'd/x'), link('up', '../up/x')]);
  for (const p of ['a', 'self', 'd/file', 'up']) {
    assert.throws(() => resolvePath(fs, p), (err: unknown) => err instanceof SymlinkLoopError && err.code === 'ELOOP' && err.message.includes(p.split('/')[0]));
  }
  // Not followed, the final symlink is simply returned.
  assert.equal(resolvePath(fs, 'a', { followFinal: false }).entry?.type, 'symlink');
});

test('exactly 40 symlinks resolve, 41 do not', () => {
  const chain = (n: number): MemoryEntry[] => [
    ...Array.from({ length: n }, (_, i) => link(`l${i}`, i + 1 < n ? `l${i + 1}` : 'target')),
    file('target', 'ok'),
  ];
  assert.equal(MAX_SYMLINKS, 40);
  const ok = resolvePath(memoryLookup(chain(40)), 'l0');
  assert.equal(ok.path, 'target');
  assert.equal(ok.links.length, 40);
  assert.throws(() => resolvePath(memoryLookup(chain(41)), 'l0'), SymlinkLoopError);
});

test('absent files, files used as directories and empty targets are absent, not errors', () => {
  const fs = memoryLookup([file('usr/bin/ls', 'x'), link('empty', ''), link('dangling', '/nowhere/at/all')]);
  const a = resolvePath(fs, '/usr/bin/nope');
  assert.deepEqual([a.path, a.entry], ['usr/bin/nope', undefined]);
  assert.equal(resolvePath(fs, 'usr/bin/ls/child').entry, undefined);
  assert.equal(resolvePath(fs, 'empty').entry, undefined);
  const d = resolvePath(fs, 'dangling');
  assert.equal(d.path, 'nowhere/at/all');
  assert.equal(d.entry, undefined);
  assert.deepEqual(d.links, ['dangling']);
});

test('a view without explicit parent directories still resolves', () => {
  const entries = [file('opt/app/bin/tool', 't', 0o755)];
  const bare = { lstat: (p: string) => (p === 'opt/app/bin/tool' ? entries[0] : undefined), readFiles: async () => new Map() };
  assert.equal(resolvePath(bare, '/opt/app/bin/tool').entry?.path, 'opt/app/bin/tool');
  assert.equal(resolvePath(bare, '/opt/app/bin/none').entry, undefined);
});

test('memoryLookup: lstat, implicit parents, readdir, readFiles through hard links', async () => {
  const fs = memoryLookup([
    file('/usr/bin/a', 'AAA', 0o755),
    { path: 'usr/bin/b', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, linkname: '/usr/bin/a' },
    link('usr/bin/c', 'a'),
    file('empty', ''),
    { path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 10 },
  ]);
  assert.equal(fs.lstat('usr')?.type, 'dir');
  assert.equal(fs.lstat('/usr/bin/a')?.size, 3);
  assert.equal('content' in fs.lstat('usr/bin/a')!, false, 'lstat returns metadata only');
  assert.equal(fs.lstat('usr/bin/b')?.linkname, 'usr/bin/a');
  assert.equal(fs.lstat('nope'), undefined);
  assert.deepEqual(fs.readdir(''), ['big', 'empty', 'usr']);
  assert.deepEqual(fs.readdir('usr/bin'), ['a', 'b', 'c']);
  assert.equal(fs.readdir('usr/bin/a'), undefined);
  const got = await fs.readFiles(['usr/bin/a', 'usr/bin/b', 'empty']);
  assert.equal(new TextDecoder().decode(got.get('usr/bin/b')), 'AAA');
  assert.equal(got.get('empty')?.length, 0);
  await assert.rejects(fs.readFiles(['usr/bin/c']), /"usr\/bin\/c" is a symlink, not a regular file/);
  await assert.rejects(fs.readFiles(['missing']), /"missing" does not exist/);
  await assert.rejects(fs.readFiles(['big']), /no content was given for "big"/);
  assert.throws(() => memoryLookup([file('../etc/passwd')]), /\.\./);
});
