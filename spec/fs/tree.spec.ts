/** formatTree: the fixtures' line format, every entry type, bytewise (UTF-8) order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { RootFs, type MergedEntry } from '../../lib/fs/merged.js';
import { formatTree, formatTreeLine } from '../../lib/fs/tree.js';
import { tarStream, type TarWriteItem } from '../../lib/fs/tar-write.js';
import { compareBytewise } from '../../lib/fs/entry.js';

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function rootfs(items: TarWriteItem[]): Promise<RootFs> {
  const parts: Buffer[] = [];
  for await (const c of tarStream(items)) parts.push(c as Buffer);
  const data = Buffer.concat(parts);
  return RootFs.scan([{ name: 'layer 0', open: async () => Readable.from([data]) }]);
}

test('one line per entry in the fixture format, hard links printed as the file they share', async () => {
  const fs = await rootfs([
    { entry: { ...base, path: 'app', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 } },
    { entry: { ...base, path: 'app/run.sh', type: 'file', mode: 0o4755, size: 3 }, content: Buffer.from('#!/') },
    { entry: { ...base, path: 'app/same', type: 'hardlink', linkname: 'app/run.sh' } },
    { entry: { ...base, path: 'app/ln', type: 'symlink', mode: 0o777, linkname: '../etc/x y' } },
    { entry: { ...base, path: 'dev/zero', type: 'chardev', mode: 0o666, devmajor: 1, devminor: 5 } },
    { entry: { ...base, path: 'dev/loop0', type: 'blockdev', mode: 0o660, gid: 6, devmajor: 7, devminor: 0 } },
    { entry: { ...base, path: 'p', type: 'fifo', mode: 0 } },
    { entry: { ...base, path: 'tmp', type: 'dir', mode: 0o1777 } },
  ]);
  assert.equal(
    formatTree(fs),
    [
      'app dir 755 1000:1000',
      'app/ln symlink 0:0 -> ../etc/x y',
      `app/run.sh file 4755 0:0 3 ${sha('#!/')} nlink=2`,
      `app/same file 4755 0:0 3 ${sha('#!/')} nlink=2`,
      'dev dir 755 0:0',
      'dev/loop0 blockdev 660 0:6 7,0',
      'dev/zero chardev 666 0:0 1,5',
      'p fifo 0 0:0',
      'tmp dir 1777 0:0',
      '',
    ].join('\n'),
  );
});

test('paths sort bytewise by their UTF-8 encoding, as LC_ALL=C sort does', async () => {
  const names = ['b', 'B', 'a-b', 'a.b', 'a/b', 'é', 'z', '\u{FF5E}', '\u{1F600}', 'a'];
  const fs = await rootfs(names.filter((n) => !n.includes('/')).map((n) => ({ entry: { ...base, path: n, type: 'dir' as const, mode: 0o755 } })));
  const got = fs.entries().map((e) => e.path);
  const want = [...got].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual(got, want);
  assert.ok(got.indexOf('\u{FF5E}') < got.indexOf('\u{1F600}')); // UTF-16 order would say the opposite
  for (const x of names) for (const y of names) {
    assert.equal(Math.sign(compareBytewise(x, y)), Math.sign(Buffer.compare(Buffer.from(x), Buffer.from(y))), `${x} vs ${y}`);
  }
});

test('formatTree takes any entries() provider', () => {
  const e: MergedEntry = { ...base, path: 'f', type: 'file', size: 0, sha256: sha(''), nlink: 1, layer: 0, inode: 1 };
  assert.equal(formatTree({ entries: () => [e] }), `f file 644 0:0 0 ${sha('')} nlink=1\n`);
  assert.equal(formatTreeLine({ ...e, type: 'dir', path: 'd', mode: 0o700 }), 'd dir 700 0:0');
});
