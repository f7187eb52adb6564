/**
 * readTar against archives written by independent tools (GNU tar, Python's tarfile) in every
 * header dialect a layer may use, plus the failure modes: truncation, bad checksums, `..` paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, linkSync, chmodSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readTar } from '../../lib/fs/tar-read.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import { EnclavifyError } from '../../lib/oci/errors.js';

interface Got { entry: FsEntry; data?: Buffer }

async function collect(input: AsyncIterable<unknown>, source = 'test.tar'): Promise<Got[]> {
  const out: Got[] = [];
  for await (const { entry, content } of readTar(input, { source })) {
    if (!content) {
      out.push({ entry });
      continue;
    }
    const parts: Buffer[] = [];
    for await (const c of content) parts.push(c as Buffer);
    out.push({ entry, data: Buffer.concat(parts) });
  }
  return out;
}

/** Feeds a buffer in small odd-sized chunks, so headers and contents straddle chunk boundaries. */
function chunked(buf: Buffer, size = 333): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

function byPath(list: Got[]): Map<string, Got> {
  return new Map(list.map((g) => [g.entry.path, g]));
}

const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-tar-read-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const LONG_DIR = 'a-directory-name-long-enough-to-push-paths-past-one-hundred-bytes-'.repeat(2) + 'end';
const LONG_LINK = '../'.repeat(2) + 'x'.repeat(120);

/** A small tree with every kind of entry GNU tar can archive without privileges. */
function makeTree(): string {
  const root = path.join(tmp, 'tree');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(path.join(root, 'app', LONG_DIR), { recursive: true });
  writeFileSync(path.join(root, 'app', 'hello.txt'), 'hello world\n');
  writeFileSync(path.join(root, 'app', 'empty'), '');
  writeFileSync(path.join(root, 'app', LONG_DIR, 'deep.txt'), 'deep');
  writeFileSync(path.join(root, 'app', 'ünïcødé.txt'), 'unicode');
  writeFileSync(path.join(root, 'app', 'tool'), Buffer.alloc(70_000, 7));
  chmodSync(path.join(root, 'app', 'tool'), 0o4755);
  mkdirSync(path.join(root, 'tmp'));
  chmodSync(path.join(root, 'tmp'), 0o1777);
  writeFileSync(path.join(root, 'app', 'sgid'), 's');
  chmodSync(path.join(root, 'app', 'sgid'), 0o2711);
  symlinkSync('hello.txt', path.join(root, 'app', 'link'));
  symlinkSync(LONG_LINK, path.join(root, 'app', 'longlink'));
  linkSync(path.join(root, 'app', 'hello.txt'), path.join(root, 'app', 'hard.txt'));
  execFileSync('mkfifo', [path.join(root, 'app', 'fifo')]);
  for (const p of ['app', 'app/hello.txt', 'tmp']) utimesSync(path.join(root, p), 1_700_000_000, 1_700_000_000);
  return root;
}

function gnuTar(format: string, root: string): Buffer {
  const out = path.join(tmp, `${format}.tar`);
  execFileSync('tar', [`--format=${format}`, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-cf', out, '.']);
  return readFileSync(out);
}

for (const format of ['posix', 'gnu']) {
  test(`reads a GNU tar --format=${format} archive: names, modes, links, fifo, content`, async () => {
    const list = await collect(chunked(gnuTar(format, makeTree())));
    const m = byPath(list);
    assert.equal(list[0].entry.path, '.'); // the root entry `./`
    assert.equal(list[0].entry.type, 'dir');
    // GNU tar archives whichever name of the hard-linked pair comes first (sorted: hard.txt).
    const hello = m.get('app/hard.txt')!;
    assert.equal(hello.entry.type, 'file');
    assert.equal(hello.entry.size, 12);
    assert.equal(hello.data!.toString(), 'hello world\n');
    assert.equal(hello.entry.mode, 0o644);
    assert.equal(Math.floor(hello.entry.mtime), 1_700_000_000);
    assert.equal(hello.entry.uid, 0);
    assert.equal(m.get('app/empty')!.data!.length, 0);
    assert.equal(m.get('app/tool')!.entry.mode, 0o4755);
    assert.deepEqual(m.get('app/tool')!.data, Buffer.alloc(70_000, 7));
    assert.equal(m.get('app/sgid')!.entry.mode, 0o2711);
    assert.equal(m.get('tmp')!.entry.mode, 0o1777);
    assert.equal(m.get('tmp')!.entry.type, 'dir');
    assert.equal(m.get('app/ünïcødé.txt')!.data!.toString(), 'unicode');
    assert.equal(m.get(`app/${LONG_DIR}/deep.txt`)!.data!.toString(), 'deep');
    assert.equal(m.get(`app/${LONG_DIR}`)!.entry.type, 'dir');
    assert.deepEqual([m.get('app/link')!.entry.type, m.get('app/link')!.entry.linkname], ['symlink', 'hello.txt']);
    assert.equal(m.get('app/longlink')!.entry.linkname, LONG_LINK);
    const hard = m.get('app/hello.txt')!;
    assert.equal(hard.entry.type, 'hardlink');
    assert.equal(hard.entry.size, 0);
    assert.equal(hard.data, undefined);
    assert.equal(hard.entry.linkname, 'app/hard.txt');
    assert.equal(m.get('app/fifo')!.entry.type, 'fifo');
  });
}

test('reads a ustar archive whose long path uses the prefix field', async () => {
  const root = path.join(tmp, 'ustar');
  const dir = path.join(root, 'p'.repeat(90), 'q'.repeat(40));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'file.txt'), 'prefixed');
  const buf = gnuTar('ustar', root);
  assert.equal(buf.subarray(257, 263).toString('latin1'), 'ustar\0');
  const m = byPath(await collect(chunked(buf)));
  assert.equal(m.get(`${'p'.repeat(90)}/${'q'.repeat(40)}/file.txt`)!.data!.toString(), 'prefixed');
});

test('reads binary xattrs from PAX SCHILY.xattr records written by GNU tar', async (t) => {
  const root = path.join(tmp, 'xattr');
  mkdirSync(root, { recursive: true });
  const f = path.join(root, 'cap');
  writeFileSync(f, 'x');
  const value = Buffer.from([0x01, 0x00, 0xff, 0x0a, 0x3d, 0x00, 0x80]);
  try {
    execFileSync('python3', ['-c', `import os,sys; os.setxattr(sys.argv[1], 'user.bin', bytes.fromhex(sys.argv[2]))`, f, value.toString('hex')]);
  } catch {
    t.skip('this file system does not take user xattrs');
    return;
  }
  const out = path.join(tmp, 'xattr.tar');
  execFileSync('tar', ['--format=posix', '--xattrs', "--xattrs-include=*", '-C', root, '-cf', out, 'cap']);
  const [cap] = await collect(chunked(readFileSync(out)));
  assert.deepEqual(cap.entry.pax?.['SCHILY.xattr.user.bin'], value);
});

/** Runs a Python tarfile script that writes an archive to argv[1] and returns its bytes. */
function pyTar(name: string, script: string): Buffer {
  const out = path.join(tmp, `${name}.tar`);
  execFileSync('python3', ['-c', `import tarfile, io, sys\n${script}`, out]);
  return readFileSync(out);
}

test('reads devices, fifos, base-256 ids, PAX global records and old-style directories (Python tarfile)', async () => {
  const buf = pyTar('devices', `
t = tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT)
def add(name, type, **kw):
    i = tarfile.TarInfo(name); i.type = type
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i)
add('dev/null', tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
add('dev/sda', tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6)
add('run/fifo', tarfile.FIFOTYPE, mode=0o600)
add('big-ids', tarfile.REGTYPE, uid=5000000000, gid=3000000, mtime=2**40)
add('neg-mtime', tarfile.REGTYPE, mtime=-100)
t.close()`);
  const m = byPath(await collect(chunked(buf, 97)));
  assert.deepEqual(
    [m.get('dev/null')!.entry.type, m.get('dev/null')!.entry.devmajor, m.get('dev/null')!.entry.devminor, m.get('dev/null')!.entry.mode],
    ['chardev', 1, 3, 0o666],
  );
  assert.deepEqual([m.get('dev/sda')!.entry.type, m.get('dev/sda')!.entry.devmajor, m.get('dev/sda')!.entry.gid], ['blockdev', 8, 6]);
  assert.equal(m.get('run/fifo')!.entry.type, 'fifo');
  assert.deepEqual([m.get('big-ids')!.entry.uid, m.get('big-ids')!.entry.gid, m.get('big-ids')!.entry.mtime], [5000000000, 3000000, 2 ** 40]);
  assert.equal(m.get('neg-mtime')!.entry.mtime, -100);

  // Global records are not applied to later entries (as Go's archive/tar, which container
  // runtimes use, does not); ones that would change an entry are refused as ambiguous.
  const pax = pyTar('global', `
t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'comment': 'global'})
i = tarfile.TarInfo('a'); i.uname = 'local'; i.pax_headers = {'mtime': '1.25', 'LIBARCHIVE.xattr.user.k': 'djE='}; t.addfile(i)
i = tarfile.TarInfo('b'); t.addfile(i)
t.close()`);
  const g = byPath(await collect(chunked(pax)));
  assert.equal(g.get('a')!.entry.mtime, 1.25);
  assert.equal(g.get('a')!.entry.uname, 'local');
  assert.equal(g.get('a')!.entry.pax?.comment, undefined);
  assert.equal(g.get('a')!.entry.pax?.['LIBARCHIVE.xattr.user.k'].toString(), 'djE=');
  assert.equal(g.get('b')!.entry.pax, undefined);
  const globalUname = pyTar('global-uname', `
t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'uname': 'gu'})
t.addfile(tarfile.TarInfo('a')); t.close()`);
  await assert.rejects(collect(chunked(globalUname)), /global extended header sets "uname".*ambiguous/);

  const v7 = pyTar('v7', `
t = tarfile.open(sys.argv[1], 'w', format=tarfile.USTAR_FORMAT)
i = tarfile.TarInfo('olddir/'); i.type = tarfile.AREGTYPE; t.addfile(i)
t.close()`);
  const [old] = await collect(chunked(v7));
  assert.deepEqual([old.entry.path, old.entry.type], ['olddir', 'dir']);
});

test('normalises leading "/" and "./"; rejects ".." in paths and hard link targets, naming source and entry', async () => {
  const ok = pyTar('abs', `
t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)
for n in ['/etc/passwd', './usr//bin/./x', 'a/b/']:
    i = tarfile.TarInfo(n); t.addfile(i, io.BytesIO(b''))
t.close()`);
  assert.deepEqual((await collect(chunked(ok))).map((g) => g.entry.path), ['etc/passwd', 'usr/bin/x', 'a/b']);

  for (const [name, script] of [
    ['dotdot', `i = tarfile.TarInfo('app/../../etc/shadow'); t.addfile(i, io.BytesIO(b''))`],
    ['dotdot-link', `i = tarfile.TarInfo('app/x'); i.type = tarfile.LNKTYPE; i.linkname = '../etc/shadow'; t.addfile(i)`],
  ] as const) {
    const buf = pyTar(name, `t = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT)\n${script}\nt.close()`);
    await assert.rejects(collect(chunked(buf), 'layer 3 of evil:latest'), (e: EnclavifyError) => {
      assert.equal(e.code, 'TAR_UNSAFE_PATH');
      assert.match(e.message, /layer 3 of evil:latest/);
      assert.match(e.message, /"app\/(\.\.\/\.\.\/etc\/shadow|x)"/);
      return true;
    });
  }
});

test('truncated streams fail clearly, naming the source', async () => {
  const buf = gnuTar('posix', makeTree());
  const list = await collect(Readable.from([buf]));
  assert.ok(list.length > 5);
  const cases: [string, Buffer][] = [
    ['inside a header', buf.subarray(0, 512 * 3 + 100)],
    ['inside content', buf.subarray(0, buf.indexOf('hello world') + 5)],
    ['at a block boundary, no end marker', buf.subarray(0, buf.indexOf('hello world') + 512 - (buf.indexOf('hello world') % 512))],
  ];
  for (const [what, cut] of cases) {
    await assert.rejects(collect(chunked(cut), 'layer 0 (sha256:abc) of img'), (e: EnclavifyError) => {
      assert.equal(e.code, 'TAR_TRUNCATED', what);
      assert.match(e.message, /layer 0 \(sha256:abc\) of img/);
      assert.match(e.message, /truncated/);
      return true;
    }, what);
  }
  // The truncation is reported to whoever reads the content, too.
  const it = readTar(Readable.from([cases[1][1]]), { source: 's' });
  let err: unknown;
  for await (const { entry, content } of it) {
    if (entry.path !== 'app/hard.txt' || !content) continue;
    try {
      for await (const _ of content);
    } catch (e) {
      err = e;
    }
    break;
  }
  assert.equal((err as EnclavifyError)?.code, 'TAR_TRUNCATED');
});

test('a bad header checksum fails naming the source; garbage is not a tar', async () => {
  const buf = Buffer.from(gnuTar('gnu', makeTree()));
  const at = buf.indexOf('./app/hello.txt');
  assert.equal(at % 512, 0);
  buf[at + 8] ^= 0x20; // a header past the first entries
  await assert.rejects(collect(Readable.from([buf]), 'layer 1 of x'), (e: EnclavifyError) => {
    assert.equal(e.code, 'TAR_BAD_CHECKSUM');
    assert.match(e.message, /layer 1 of x/);
    return true;
  });
  await assert.rejects(collect(Readable.from([Buffer.alloc(2048, 'not a tar archive ')]), 'blob'), { code: 'TAR_BAD_CHECKSUM' });
});

test('an empty stream is an empty archive; bytes after the end marker are drained', async () => {
  assert.deepEqual(await collect(Readable.from([])), []);
  const buf = gnuTar('posix', makeTree());
  let pulled = 0;
  const tail = Buffer.concat([buf, Buffer.alloc(10_000, 0xaa)]);
  const src = Readable.from((function* () {
    for (let i = 0; i < tail.length; i += 4096) {
      pulled += Math.min(4096, tail.length - i);
      yield tail.subarray(i, i + 4096);
    }
  })());
  await collect(src);
  assert.equal(pulled, tail.length);
});

test('unread content is skipped when the consumer moves on; reading part of it is fine too', async () => {
  const buf = gnuTar('posix', makeTree());
  const names: string[] = [];
  for await (const { entry, content } of readTar(chunked(buf, 1000), { source: 's' })) {
    names.push(entry.path);
    if (entry.path === 'app/tool') {
      for await (const _ of content!) break; // one chunk, then abandon
    }
  }
  assert.deepEqual(names, (await collect(Readable.from([buf]))).map((g) => g.entry.path));
});

test('content streams pull from the input on demand: a large file is never buffered', async () => {
  const size = 64 * 1024 * 1024;
  const header = execFileSync('python3', ['-c', `import tarfile, sys
i = tarfile.TarInfo('big'); i.size = ${size}
sys.stdout.buffer.write(i.tobuf(tarfile.PAX_FORMAT))`]);
  let pulled = 0;
  const chunk = Buffer.alloc(64 * 1024);
  const src = Readable.from((function* () {
    pulled += header.length;
    yield header;
    for (let i = 0; i < size; i += chunk.length) {
      pulled += chunk.length;
      yield chunk;
    }
    yield Buffer.alloc(1024);
  })(), { objectMode: false, highWaterMark: 64 * 1024 });
  const it = readTar(src, { source: 'big' });
  const first = await it.next();
  assert.equal(first.value!.entry.size, size);
  const content = first.value!.content!;
  await new Promise<void>((resolve) => content.once('readable', () => resolve()));
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(pulled < 2 * 1024 * 1024, `pulled ${pulled} bytes for an unread 64 MiB file`);
  await it.return(undefined); // abandoning the archive releases the input
  assert.ok(src.destroyed);
});

test('errors of the input stream pass through', async () => {
  const src = new Readable({ read() { this.destroy(new Error('incorrect header check in layer 7')); } });
  await assert.rejects(collect(src), /incorrect header check in layer 7/);
});
