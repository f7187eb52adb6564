/**
 * tarStream: what it writes must be read back identically by readTar and by the host's real
 * GNU tar (listing and extraction), byte-for-byte deterministic, with backpressure and size checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { tarStream, encodeHeader, type TarWriteItem } from '../../lib/fs/tar-write.js';
import { readTar } from '../../lib/fs/tar-read.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import type { EnclavifyError } from '../../lib/oci/errors.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-tar-write-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function bytes(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function readBack(buf: Buffer): Promise<{ entry: FsEntry; data?: Buffer }[]> {
  const out: { entry: FsEntry; data?: Buffer }[] = [];
  for await (const { entry, content } of readTar(Readable.from([buf]), { source: 'written' })) {
    out.push(content ? { entry, data: await bytes(content) } : { entry });
  }
  return out;
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 };
const LONG = 'long-component-'.repeat(8); // 120 bytes
const UNI = 'ünïcødé-文件-🙂.txt';
const XATTR = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x0a, 0x3d, 0x00]);

function items(): TarWriteItem[] {
  const big = Buffer.alloc(100_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) % 251;
  return [
    { entry: { ...base, path: '.', type: 'dir', mode: 0o755 } },
    { entry: { ...base, path: 'app', type: 'dir', mode: 0o755, uname: 'root', gname: 'root' } },
    { entry: { ...base, path: 'app/hello.txt', type: 'file', size: 6 }, content: Buffer.from('hello\n') },
    { entry: { ...base, path: 'app/empty', type: 'file' }, content: new Uint8Array(0) },
    { entry: { ...base, path: 'app/chunks.bin', type: 'file', size: big.length, mode: 0o4755 }, content: Readable.from([big.subarray(0, 1000), big.subarray(1000)]) },
    { entry: { ...base, path: 'app/sticky', type: 'dir', mode: 0o1777 } },
    { entry: { ...base, path: 'app/sgid', type: 'file', mode: 0o2750, size: 1 }, content: Buffer.from('s') },
    { entry: { ...base, path: `app/${LONG}`, type: 'dir', mode: 0o755 } },
    { entry: { ...base, path: `app/${LONG}/${LONG}/x.txt`, type: 'file', size: 1 }, content: Buffer.from('x') },
    { entry: { ...base, path: `app/${UNI}`, type: 'file', size: 3 }, content: Buffer.from('uni') },
    { entry: { ...base, path: 'app/link', type: 'symlink', mode: 0o777, linkname: 'hello.txt' } },
    { entry: { ...base, path: 'app/longlink', type: 'symlink', mode: 0o777, linkname: `../${LONG}/${LONG}/${UNI}` } },
    { entry: { ...base, path: 'app/hard.txt', type: 'hardlink', linkname: 'app/hello.txt' } },
    { entry: { ...base, path: `app/${LONG}/hard-long`, type: 'hardlink', linkname: `app/${LONG}/${LONG}/x.txt` } },
    { entry: { ...base, path: 'dev/null', type: 'chardev', mode: 0o666, devmajor: 1, devminor: 3 } },
    { entry: { ...base, path: 'dev/sda', type: 'blockdev', mode: 0o660, devmajor: 8, devminor: 0 } },
    { entry: { ...base, path: 'dev/huge', type: 'chardev', mode: 0o600, devmajor: 4095, devminor: 3_000_000 } },
    { entry: { ...base, path: 'run/fifo', type: 'fifo', mode: 0o600 } },
    { entry: { ...base, path: 'ids', type: 'file', uid: 3_000_000_000, gid: 2_097_152, uname: 'u'.repeat(40), gname: 'grüppe' } },
    { entry: { ...base, path: 'times', type: 'file', mtime: 1_700_000_000.5 } },
    { entry: { ...base, path: 'old', type: 'file', mtime: -86_400 } },
    { entry: { ...base, path: 'cap', type: 'file', pax: { 'SCHILY.xattr.security.capability': XATTR, 'SCHILY.xattr.user.note': Buffer.from('a\nb=c') } } },
  ];
}

test('readTar(tarStream(x)) gives back every entry, field and byte', async () => {
  const buf = await bytes(tarStream(items()));
  const got = await readBack(buf);
  const want = items();
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i].entry;
    const expected: FsEntry = { ...w };
    assert.deepEqual(got[i].entry, expected, w.path);
    if (w.type === 'file') {
      const c = want[i].content;
      const data = c === undefined ? Buffer.alloc(0) : c instanceof Uint8Array ? Buffer.from(c) : await bytes(c as Readable);
      assert.deepEqual(got[i].data, data, w.path);
    }
  }
});

test('the archive is deterministic, block-aligned and ends with two zero blocks', async () => {
  const a = await bytes(tarStream(items()));
  const b = await bytes(tarStream(items()));
  assert.ok(a.equals(b));
  assert.equal(a.length % 512, 0);
  assert.ok(a.subarray(a.length - 1024).equals(Buffer.alloc(1024)));
  const empty = await bytes(tarStream([]));
  assert.deepEqual(empty, Buffer.alloc(1024));
});

test("GNU tar lists and extracts what we write (PAX long and non-ASCII names, links, modes)", async () => {
  const file = path.join(tmp, 'ours.tar');
  writeFileSync(file, await bytes(tarStream(items())));
  const listing = execFileSync('tar', ['-tvf', file, '--numeric-owner'], { encoding: 'utf8' });
  const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
  assert.ok(names.includes(`app/${LONG}/${LONG}/x.txt`));
  assert.ok(names.includes(`app/${UNI}`));
  assert.ok(names.includes('./'));
  assert.match(listing, /^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/m);
  assert.match(listing, /^brw-rw---- 0\/0 +8,0 .* dev\/sda$/m);
  assert.match(listing, /^crw------- 0\/0 +4095,3000000 .* dev\/huge$/m);
  assert.match(listing, /^prw------- 0\/0 .* run\/fifo$/m);
  assert.match(listing, /^-rwsr-xr-x 0\/0 +100000 .* app\/chunks\.bin$/m);
  assert.match(listing, /^hrw-r--r-- 0\/0 .* app\/hard\.txt link to app\/hello\.txt$/m);
  assert.match(listing, / 3000000000\/2097152 /);
  assert.ok(listing.includes(`app/longlink -> ../${LONG}/${LONG}/${UNI}`));

  const out = path.join(tmp, 'x');
  mkdirSync(out);
  // No devices: mknod may be refused here; everything else is extracted.
  execFileSync('tar', ['-xf', file, '-C', out, '--numeric-owner', '--exclude=dev']);
  assert.equal(readFileSync(path.join(out, 'app/hello.txt'), 'utf8'), 'hello\n');
  assert.equal(readFileSync(path.join(out, `app/${UNI}`), 'utf8'), 'uni');
  assert.equal(readFileSync(path.join(out, `app/${LONG}/${LONG}/x.txt`), 'utf8'), 'x');
  assert.equal(readlinkSync(path.join(out, 'app/longlink')), `../${LONG}/${LONG}/${UNI}`);
  assert.equal(statSync(path.join(out, 'app/hard.txt')).ino, statSync(path.join(out, 'app/hello.txt')).ino);
  assert.equal(statSync(path.join(out, `app/${LONG}/hard-long`)).ino, statSync(path.join(out, `app/${LONG}/${LONG}/x.txt`)).ino);
  assert.equal(statSync(path.join(out, 'app/chunks.bin')).mode & 0o7777, 0o4755);
  assert.equal(statSync(path.join(out, 'app/sticky')).mode & 0o7777, 0o1777);
  assert.ok(lstatSync(path.join(out, 'run/fifo')).isFIFO());
  assert.equal(statSync(path.join(out, 'times')).mtimeMs, 1_700_000_000_500);
  assert.equal(statSync(path.join(out, 'ids')).uid, 3_000_000_000);
});

test('GNU tar extracts our xattr PAX records', async (t) => {
  const file = path.join(tmp, 'xattr.tar');
  writeFileSync(file, await bytes(tarStream([{ entry: { ...base, path: 'f', type: 'file', size: 1, pax: { 'SCHILY.xattr.user.bin': XATTR } }, content: Buffer.from('f') }])));
  const out = path.join(tmp, 'xx');
  mkdirSync(out);
  execFileSync('tar', ['--xattrs', "--xattrs-include=*", '-xf', file, '-C', out]);
  let hex: string;
  try {
    hex = execFileSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "user.bin").hex())', path.join(out, 'f')], { encoding: 'utf8' }).trim();
  } catch {
    t.skip('this file system does not keep user xattrs');
    return;
  }
  assert.equal(hex, XATTR.toString('hex'));
});

test('content that is not exactly entry.size bytes is an error naming the entry', async () => {
  const cases: [string, TarWriteItem][] = [
    ['short buffer', { entry: { ...base, path: 'a/short', type: 'file', size: 10 }, content: Buffer.from('abc') }],
    ['long stream', { entry: { ...base, path: 'a/long', type: 'file', size: 2 }, content: Readable.from([Buffer.from('abc')]) }],
    ['short stream', { entry: { ...base, path: 'a/shortstream', type: 'file', size: 5 }, content: Readable.from([Buffer.from('ab')]) }],
    ['missing', { entry: { ...base, path: 'a/missing', type: 'file', size: 5 } }],
  ];
  for (const [what, item] of cases) {
    await assert.rejects(bytes(tarStream([item])), (e: EnclavifyError) => {
      assert.equal(e.code, 'TAR_SIZE_MISMATCH', what);
      assert.ok(e.message.includes(JSON.stringify(item.entry.path)), e.message);
      return true;
    });
  }
  await assert.rejects(bytes(tarStream([{ entry: { ...base, path: 'd', type: 'dir' }, content: Buffer.from('x') }])), { code: 'TAR_BAD_ENTRY' });
  await assert.rejects(bytes(tarStream([{ entry: { ...base, path: '../x', type: 'file' } }])), { code: 'TAR_BAD_ENTRY' });
  await assert.rejects(bytes(tarStream([{ entry: { ...base, path: '/abs', type: 'file' } }])), { code: 'TAR_BAD_ENTRY' });
  await assert.rejects(bytes(tarStream([{ entry: { ...base, path: 'h', type: 'hardlink' } }])), { code: 'TAR_BAD_ENTRY' });
});

test('sizes of 8 GiB and more go into a PAX size record', async () => {
  const size = 9 * 1024 ** 3;
  const header = encodeHeader({ ...base, path: 'huge.img', type: 'file', size });
  assert.ok(header.includes(`size=${size}\n`));
  // readTar yields the entry before it needs any content.
  const it = readTar(Readable.from([header]), { source: 'h' });
  const { value } = await it.next();
  assert.equal(value!.entry.size, size);
  await it.return(undefined);
  // and GNU tar agrees (it only needs the header to list the entry; the missing data is an error later)
  const file = path.join(tmp, 'huge.tar');
  writeFileSync(file, header);
  let listing = '';
  try {
    listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    listing = String((e as { stdout?: string }).stdout);
  }
  assert.match(listing, new RegExp(` ${size} .* huge\\.img`));
});

test('tarStream pulls items and chunks only as fast as the consumer reads', async () => {
  let pulled = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  async function* many(): AsyncGenerator<TarWriteItem> {
    for (let i = 0; i < 1000; i++) {
      pulled++;
      yield { entry: { ...base, path: `f${i}`, type: 'file', size: chunk.length }, content: chunk };
    }
  }
  const s = tarStream(many());
  await new Promise<void>((resolve) => s.once('readable', () => resolve()));
  s.read(100_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(pulled < 20, `pulled ${pulled} of 1000 items for ~100 KB read`);
  s.destroy();
});

test('empty files read from a tar pass through a rewrite unread and byte-identical; their content still reads as empty; a size that lies is refused', async () => {
  const collect = async (r: Readable) => { const out: Buffer[] = []; for await (const c of r) out.push(c as Buffer); return Buffer.concat(out); };
  const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1700000000 };
  const items: TarWriteItem[] = [
    { entry: { ...base, path: 'd', type: 'dir', size: 0, mode: 0o755 } },
    ...Array.from({ length: 50 }, (_, i): TarWriteItem => ({ entry: { ...base, path: `d/e${i}`, type: 'file', size: 0 }, content: new Uint8Array(0) })),
    { entry: { ...base, path: 'd/full', type: 'file', size: 5 }, content: Buffer.from('hello') },
    { entry: { ...base, path: 'd/z', type: 'file', size: 0 }, content: new Uint8Array(0) },
  ];
  const original = await collect(tarStream(items));
  // Pass-through: each entry with the reader's own content stream (what encryptFS does with files it keeps).
  const again = await collect(tarStream((async function* (): AsyncGenerator<TarWriteItem> { for await (const { entry, content } of readTar(Readable.from([original]), { source: 'test layer' })) yield content ? { entry, content } : { entry }; })()));
  assert.ok(again.equals(original));
  // Read, an empty file's content ends at once.
  for await (const { entry, content } of readTar(Readable.from([original]), { source: 'test layer' })) {
    if (entry.type === 'file') assert.equal((await collect(content!)).length, entry.size, entry.path);
  }
  // The reader's empty content given for an entry that claims bytes: refused, not written short.
  const lying = (async function* (): AsyncGenerator<TarWriteItem> {
    for await (const { entry, content } of readTar(Readable.from([original]), { source: 'test layer' })) yield { entry: entry.path === 'd/z' ? { ...entry, size: 3 } : entry, ...(content ? { content } : {}) };
  })();
  await assert.rejects(collect(tarStream(lying)), (e: Error & { code?: string }) => e.code === 'TAR_SIZE_MISMATCH' && /tar entry "d\/z": content is 0 bytes but the entry's size is 3/.test(e.message));
  // A file with bytes given as the content of an entry that claims none: refused too.
  const short = (async function* (): AsyncGenerator<TarWriteItem> {
    for await (const { entry, content } of readTar(Readable.from([original]), { source: 'test layer' })) yield { entry: entry.path === 'd/full' ? { ...entry, size: 0 } : entry, ...(content ? { content } : {}) };
  })();
  await assert.rejects(collect(tarStream(short)), (e: Error & { code?: string }) => e.code === 'TAR_SIZE_MISMATCH' && /"d\/full": content is longer than the entry's size 0/.test(e.message));
});
