/**
 * The merged root file system: the bb-fixture must merge to exactly what `umoci unpack` made
 * (gzip and zstd layouts), and the whiteout, hard link and safety rules are attacked one by one
 * with small layers written by tarStream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, readdirSync, lstatSync, readlinkSync, mkdtempSync, mkdirSync, writeFileSync, rmSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import { RootFs, scanLayer, type LayerSource } from '../../lib/fs/merged.js';
import { formatTree } from '../../lib/fs/tree.js';
import { tarStream, type TarWriteItem } from '../../lib/fs/tar-write.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import type { EnclavifyError } from '../../lib/oci/errors.js';
import { fixtures, tool } from '../helpers/tools.js';

// ---------------------------------------------------------------- helpers

const images = path.join(fixtures, 'images');

/** LayerSources straight from an OCI layout's blobs (tag `latest`), counting opens. */
function fixtureLayers(layout: string): (LayerSource & { opens: number })[] {
  const dir = path.join(images, layout);
  const blob = (digest: string) => path.join(dir, 'blobs', ...digest.split(':'));
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  return manifest.layers.map((l: { digest: string; mediaType: string }, i: number) => {
    const src = {
      name: `layer ${i} (${l.digest.slice(0, 19)}) of ${layout}`,
      opens: 0,
      async open() {
        src.opens++;
        const raw = createReadStream(blob(l.digest));
        const unz = l.mediaType.endsWith('+zstd') ? (new DecompressStream() as unknown as NodeJS.ReadWriteStream) : createGunzip();
        raw.on('error', (e) => (unz as unknown as Readable).destroy(e));
        unz.on('close', () => raw.destroy()); // a reader that stops early releases the file
        return raw.pipe(unz) as unknown as Readable;
      },
    };
    return src;
  });
}

async function bytes(r: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

type Source = LayerSource & { opens: number; data: Buffer };

function bufferSource(name: string, data: Buffer): Source {
  const src: Source = {
    name,
    opens: 0,
    data,
    async open() {
      src.opens++;
      return Readable.from([src.data]);
    },
  };
  return src;
}

async function sources(...layers: TarWriteItem[][]): Promise<Source[]> {
  return Promise.all(layers.map(async (items, i) => bufferSource(`layer ${i} (test)`, await bytes(tarStream(items)))));
}

async function merge(...layers: TarWriteItem[][]): Promise<RootFs> {
  return RootFs.scan(await sources(...layers));
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 };
const file = (p: string, text: string, extra: Partial<FsEntry> = {}): TarWriteItem => ({
  entry: { ...base, path: p, type: 'file', size: Buffer.byteLength(text), ...extra },
  content: Buffer.from(text),
});
const dir = (p: string, extra: Partial<FsEntry> = {}): TarWriteItem => ({ entry: { ...base, path: p, type: 'dir', mode: 0o755, ...extra } });
const sym = (p: string, target: string): TarWriteItem => ({ entry: { ...base, path: p, type: 'symlink', mode: 0o777, linkname: target } });
const hard = (p: string, target: string, extra: Partial<FsEntry> = {}): TarWriteItem => ({ entry: { ...base, path: p, type: 'hardlink', linkname: target, ...extra } });
const wh = (p: string): TarWriteItem => file(p, '', { mode: 0, mtime: 0 });

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
/** The view as `path type` pairs, for compact assertions. */
const paths = (fs: RootFs) => fs.entries().map((e) => `${e.path} ${e.type}`);

/** A raw ustar header, for archives our writer refuses to produce. */
function rawHeader(name: string, type = '0', size = 0, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\x0000', 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function rejectsWith(code: string, ...parts: string[]) {
  return (e: EnclavifyError) => {
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} should mention ${p}`);
    return true;
  };
}

// ---------------------------------------------------------------- the real fixture

const expectedTree = readFileSync(path.join(images, 'bb-oci.expected-tree.txt'), 'utf8');

for (const layout of ['bb-oci', 'bb-zstd-oci']) {
  test(`${layout}: the merged tree equals what umoci unpack materialised`, async () => {
    const fs = await RootFs.scan(fixtureLayers(layout));
    assert.equal(formatTree(fs), expectedTree);
  });
}

test('bb-oci: every layer index is kept, with whiteouts marked and hidden entries present', async () => {
  const fs = await RootFs.scan(fixtureLayers('bb-oci'));
  assert.equal(fs.layers.length, 3);
  const l0 = fs.layerIndex(0).entries.map((e) => e.path);
  assert.ok(l0.includes('app/data/tiny') && l0.includes('etc/hostname')); // hidden in the view
  assert.equal(fs.get('app/data/tiny'), undefined);
  const l1 = fs.layerIndex(1).entries;
  assert.deepEqual(l1.find((e) => e.path === 'etc/.wh.hostname')?.whiteout, { kind: 'file', target: 'etc/hostname' });
  const opq = fs.layerIndex(2).entries.find((e) => e.path.endsWith('.wh..wh..opq'));
  assert.equal(opq?.whiteout?.kind, 'opaque');
  const secret = fs.layerIndex(0).entries.find((e) => e.path === 'app/data/secret.txt')!;
  assert.equal(secret.sha256, 'a81d87fcee567c9365a5354ae95ca03a661bb4e7a2d4acc9a10fda6af1886bb9');
  assert.equal(fs.get('/app/static/index.html')!.inode, fs.get('app/static/index-hardlink.html')!.inode);
  assert.equal(fs.root.type, 'dir');
});

test('bb-oci: readFiles reads each needed layer once and follows symlinks and hard links', async () => {
  const layers = fixtureLayers('bb-oci');
  const fs = await RootFs.scan(layers);
  assert.deepEqual(layers.map((l) => l.opens), [1, 1, 1]);
  const got = await fs.readFiles(['/etc/passwd', 'app/static/index.html', 'app/static/index-hardlink.html', 'app/static/secret-link', 'bin/sh']);
  assert.deepEqual(layers.map((l) => l.opens), [2, 1, 1]); // all in layer 0: one more pass, others untouched
  assert.equal(sha(got.get('app/static/secret-link')!.toString()), 'a81d87fcee567c9365a5354ae95ca03a661bb4e7a2d4acc9a10fda6af1886bb9');
  assert.equal(got.get('bin/sh')!.length, 1982256);
  assert.deepEqual(got.get('app/static/index.html'), got.get('app/static/index-hardlink.html'));
  assert.match(got.get('/etc/passwd')!.toString(), /^root:/);
  const more = await fs.readFiles(['var/cache/old/c', 'app/static/a-very-long-directory-name-that-pushes-the-path-well-beyond-one-hundred-characters/nested-deeper-still/after-opaque.txt']);
  assert.deepEqual(layers.map((l) => l.opens), [2, 2, 2]);
  assert.equal(more.get('var/cache/old/c')!.length, 6);
});

// ---------------------------------------------------------------- whiteouts

test('an opaque whiteout hides lower children and applies before its siblings, whatever their order', async () => {
  const lower = [dir('d'), file('d/a', 'a'), dir('d/sub'), file('d/sub/c', 'c'), file('keep', 'k')];
  for (const upper of [
    [dir('d', { mode: 0o700 }), wh('d/.wh..wh..opq'), file('d/new', 'n')],
    [dir('d', { mode: 0o700 }), file('d/new', 'n'), wh('d/.wh..wh..opq')],
    [file('d/new', 'n'), wh('d/.wh..wh..opq')],
  ]) {
    const fs = await merge(lower, upper);
    assert.deepEqual(paths(fs), ['d dir', 'd/new file', 'keep file']);
  }
  const fs = await merge(lower, [dir('d', { mode: 0o700 }), file('d/new', 'n'), wh('d/.wh..wh..opq')]);
  assert.equal(fs.get('d')!.mode, 0o700);
  // An opaque whiteout at the root hides the whole lower tree.
  assert.deepEqual(paths(await merge(lower, [file('z', 'z'), wh('.wh..wh..opq')])), ['z file']);
  // Opaque whiteouts only touch lower layers: the same layer's sub-directories survive.
  const same = await merge(lower, [dir('d/sub'), file('d/sub/x', 'x'), wh('d/.wh..wh..opq')]);
  assert.deepEqual(paths(same), ['d dir', 'd/sub dir', 'd/sub/x file', 'keep file']);
});

test('a whiteout deletes its target with the whole subtree, and hides itself', async () => {
  const lower = [dir('a'), dir('a/b'), dir('a/b/c'), file('a/b/c/d', 'd'), file('a/b/e', 'e'), file('a/f', 'f'), file('top', 't')];
  const fs = await merge(lower, [wh('a/.wh.b'), wh('.wh.top'), wh('.wh.never-existed')]);
  assert.deepEqual(paths(fs), ['a dir', 'a/f file']);
  assert.equal(fs.get('a/b/c/d'), undefined);
  assert.deepEqual(fs.children('a')!.map((e) => e.path), ['a/f']);
  assert.deepEqual(fs.children('/')!.map((e) => e.path), ['a']);
  assert.deepEqual(fs.readdir(''), ['a']);
  assert.deepEqual(fs.readdir('a'), ['f']);
  assert.equal(fs.readdir('a/f'), undefined);
});

test('re-adding after deletion; a whiteout before an entry of its own layer spares it, one after it is refused', async () => {
  const l1 = [file('x', 'one'), dir('y'), file('y/z', 'z')];
  const fs = await merge(l1, [wh('.wh.x'), wh('.wh.y')], [file('x', 'three'), dir('y')]);
  assert.deepEqual(paths(fs), ['x file', 'y dir']);
  assert.equal(fs.get('x')!.sha256, sha('three'));
  assert.equal(fs.get('x')!.layer, 2);
  const f2 = await merge(l1, [wh('.wh.x'), file('x', 'two')]);
  assert.equal(f2.get('x')!.sha256, sha('two'));
  // A whited-out directory re-created in the same layer keeps only that layer's children.
  const f3 = await merge(l1, [wh('.wh.y'), dir('y', { mode: 0o711 }), file('y/new', 'n')]);
  assert.deepEqual(paths(f3).filter((p) => p.startsWith('y')), ['y dir', 'y/new file']);
  assert.equal(f3.get('y')!.mode, 0o711);
  // After the entry, containerd and Docker would delete what the spec keeps: ambiguous, refused.
  await assert.rejects(merge(l1, [file('x', 'two'), wh('.wh.x')]), rejectsWith('LAYER_AMBIGUOUS_WHITEOUT', 'layer 1 (test)', '".wh.x"'));
  await assert.rejects(merge(l1, [dir('y', { mode: 0o711 }), file('y/new', 'n'), wh('.wh.y')]), rejectsWith('LAYER_AMBIGUOUS_WHITEOUT'));
});

test('replacing: a file over a directory drops the subtree; a directory over a directory keeps children', async () => {
  const lower = [dir('p'), file('p/q', 'q'), dir('p/r'), file('p/r/s', 's')];
  assert.deepEqual(paths(await merge(lower, [file('p', 'now a file')])), ['p file']);
  assert.deepEqual(paths(await merge(lower, [sym('p', '/elsewhere')])), ['p symlink']);
  const kept = await merge(lower, [dir('p', { mode: 0o700, uid: 5, gid: 6 })]);
  assert.deepEqual(paths(kept), ['p dir', 'p/q file', 'p/r dir', 'p/r/s file']);
  assert.deepEqual([kept.get('p')!.mode, kept.get('p')!.uid, kept.get('p')!.gid, kept.get('p')!.layer], [0o700, 5, 6, 1]);
  const back = await merge([file('p', 'f')], [dir('p'), file('p/n', 'n')]);
  assert.deepEqual(paths(back), ['p dir', 'p/n file']);
});

test('invalid whiteout names are refused, naming layer and entry', async () => {
  for (const name of ['d/.wh.', 'd/.wh..', 'd/.wh...']) {
    await assert.rejects(merge([dir('d')], [wh(name)]), rejectsWith('LAYER_BAD_WHITEOUT', 'layer 1 (test)', JSON.stringify(name)));
  }
  // aufs metadata (.wh..wh.plnk and friends) is ignored, not treated as a whiteout of ".wh.plnk"
  const fs = await merge([dir('d'), file('d/x', 'x'), file('.wh.plnk', 'p')], [wh('.wh..wh.aufs'), wh('d/.wh..wh.plnk')]);
  assert.deepEqual(paths(fs), ['d dir', 'd/x file']);
});

// ---------------------------------------------------------------- safety

test('an entry with a ".." component is refused, naming the layer and the entry', async () => {
  const evil = Buffer.concat([rawHeader('app/', '5'), rawHeader('app/../../etc/cron.d/x'), Buffer.alloc(1024)]);
  const good = await sources([file('a', 'a')]);
  await assert.rejects(
    RootFs.scan([good[0], bufferSource('layer 1 (sha256:evil) of evil:latest', evil)]),
    rejectsWith('TAR_UNSAFE_PATH', 'layer 1 (sha256:evil) of evil:latest', '"app/../../etc/cron.d/x"'),
  );
  const link = Buffer.concat([rawHeader('x', '1', 0, '../../etc/shadow'), Buffer.alloc(1024)]);
  await assert.rejects(RootFs.scan([bufferSource('layer 0 of l', link)]), rejectsWith('TAR_UNSAFE_PATH', 'layer 0 of l', '"x"'));
});

test('an entry written through a symlink is refused, naming the layer, the entry and the link', async () => {
  // a symlink from a lower layer
  await assert.rejects(
    merge([dir('etc'), sym('s', '/etc')], [file('s/passwd', 'root::0:0')]),
    rejectsWith('LAYER_WRITE_THROUGH_SYMLINK', 'layer 1 (test)', '"s/passwd"', '"s"'),
  );
  // a symlink earlier in the same layer, deeper in the path
  await assert.rejects(
    merge([dir('a'), sym('a/up', '../..'), file('a/up/x', 'x')]),
    rejectsWith('LAYER_WRITE_THROUGH_SYMLINK', 'layer 0 (test)', '"a/up/x"', '"a/up"'),
  );
  // a whiteout acting through a symlink
  await assert.rejects(
    merge([dir('etc'), file('etc/passwd', 'p'), sym('s', 'etc')], [wh('s/.wh.passwd')]),
    rejectsWith('LAYER_WRITE_THROUGH_SYMLINK', 'layer 1 (test)', '"s/.wh.passwd"'),
  );
  await assert.rejects(
    merge([dir('etc'), sym('s', 'etc')], [wh('s/.wh..wh..opq')]),
    rejectsWith('LAYER_WRITE_THROUGH_SYMLINK', 'layer 1 (test)'),
  );
  // replacing the symlink with a directory first is fine
  const ok = await merge([sym('s', '/etc')], [dir('s'), file('s/passwd', 'p')]);
  assert.deepEqual(paths(ok), ['s dir', 's/passwd file']);
  // a parent that is a plain file
  await assert.rejects(merge([file('f', 'f')], [file('f/x', 'x')]), rejectsWith('LAYER_NOT_A_DIRECTORY', 'layer 1 (test)', '"f/x"'));
});

test('a truncated layer fails the scan, naming the layer', async () => {
  const [src] = await sources([file('big', 'x'.repeat(5000)), file('after', 'a')]);
  src.data = src.data.subarray(0, 2048);
  await assert.rejects(RootFs.scan([src]), rejectsWith('TAR_TRUNCATED', 'layer 0 (test)', '"big"'));
});

// ---------------------------------------------------------------- hard links, parents, devices

test('hard links share the inode: nlink, metadata of the target, survival of deleted or replaced targets', async () => {
  const l1 = [file('a', 'content', { mode: 0o640, uid: 7 }), hard('b', 'a', { mode: 0o777 }), dir('d'), hard('d/c', 'a')];
  const fs = await merge(l1);
  for (const p of ['a', 'b', 'd/c']) {
    const e = fs.get(p)!;
    assert.deepEqual([e.type, e.mode, e.uid, e.size, e.sha256, e.nlink], ['file', 0o640, 7, 7, sha('content'), 3], p);
  }
  // the target deleted later: the other names keep the content
  const del = await merge(l1, [wh('.wh.a')]);
  assert.equal(del.get('a'), undefined);
  assert.equal(del.get('b')!.nlink, 2);
  assert.equal((await del.readFiles(['b'])).get('b')!.toString(), 'content');
  // the target replaced later: the links keep the old content, the new file is separate
  const rep = await merge(l1, [file('a', 'new')]);
  assert.deepEqual([rep.get('a')!.sha256, rep.get('a')!.nlink], [sha('new'), 1]);
  assert.deepEqual([rep.get('b')!.sha256, rep.get('b')!.nlink], [sha('content'), 2]);
  const both = await rep.readFiles(['a', 'b']);
  assert.deepEqual([both.get('a')!.toString(), both.get('b')!.toString()], ['new', 'content']);
  // a link to a lower layer's file
  const lower = await merge([file('x', 'x')], [hard('y', 'x')]);
  assert.deepEqual([lower.get('y')!.nlink, lower.get('y')!.content!.layer], [2, 0]);
  // missing target, directory target
  await assert.rejects(merge([hard('y', 'nope')]), rejectsWith('LAYER_BAD_HARDLINK', 'layer 0 (test)', '"y"', '"nope"'));
  await assert.rejects(merge([dir('d'), hard('y', 'd')]), rejectsWith('LAYER_BAD_HARDLINK', 'layer 0 (test)', 'directory'));
});

test('missing parent directories are implied as 0755 root:root; the root entry sets the root', async () => {
  const fs = await merge([dir('.', { mode: 0o700 }), file('x/y/z.txt', 'z', { uid: 9 })], [dir('x', { mode: 0o750, uid: 3 })]);
  assert.deepEqual(formatTree(fs).trim().split('\n'), [
    'x dir 750 3:0',
    'x/y dir 755 0:0',
    `x/y/z.txt file 644 9:0 1 ${sha('z')} nlink=1`,
  ]);
  assert.equal(fs.get('x/y')!.implied, true);
  assert.equal(fs.get('x')!.implied, undefined);
  assert.equal(fs.root.mode, 0o700);
  assert.equal(fs.get('.')!.path, '.');
});

test('devices and fifos appear in the tree with their numbers', async () => {
  const fs = await merge([
    dir('dev'),
    { entry: { ...base, path: 'dev/null', type: 'chardev', mode: 0o666, devmajor: 1, devminor: 3 } },
    { entry: { ...base, path: 'dev/sda', type: 'blockdev', mode: 0o660, gid: 6, devmajor: 8, devminor: 0 } },
    { entry: { ...base, path: 'run/initctl', type: 'fifo', mode: 0o600 } },
  ]);
  assert.deepEqual(formatTree(fs).trim().split('\n'), [
    'dev dir 755 0:0',
    'dev/null chardev 666 0:0 1,3',
    'dev/sda blockdev 660 0:6 8,0',
    'run dir 755 0:0',
    'run/initctl fifo 600 0:0',
  ]);
});

// ---------------------------------------------------------------- reading contents

test('readFiles: one pass per needed layer, only the needed layers, stopping early', async () => {
  const srcs = await sources(
    [file('l0/a', 'a0'), file('l0/b', 'b0'), file('l0/unused', 'u')],
    [file('l1/only', 'x')],
    [file('l2/a', 'a2'), sym('l2/to-l0', '../l0/b'), file('l2/last', 'z')],
  );
  const fs = await RootFs.scan(srcs);
  assert.deepEqual(srcs.map((s) => s.opens), [1, 1, 1]);
  const got = await fs.readFiles(['l0/a', 'l0/b', 'l2/a', 'l2/to-l0', '/l0/a']);
  assert.deepEqual(srcs.map((s) => s.opens), [2, 1, 2]);
  assert.deepEqual(Object.fromEntries([...got].map(([k, v]) => [k, Buffer.from(v).toString()])), {
    'l0/a': 'a0', 'l0/b': 'b0', 'l2/a': 'a2', 'l2/to-l0': 'b0', '/l0/a': 'a0',
  });
  await assert.rejects(fs.readFiles(['l0/a', 'nope']), rejectsWith('FS_NOT_FOUND', '"nope"'));
  await assert.rejects(fs.readFiles(['l0']), rejectsWith('FS_NOT_A_FILE', '"l0"'));
  assert.deepEqual(srcs.map((s) => s.opens), [2, 1, 2]); // errors found before reading anything
  assert.deepEqual(await fs.readFiles([]), new Map());
});

test('streamFiles groups names of one content and verifies the bytes against the scan', async () => {
  const srcs = await sources([file('a', 'aaa'), hard('h', 'a'), sym('s', 'a'), file('b', 'bbb')]);
  const fs = await RootFs.scan(srcs);
  const seen: [string[], string][] = [];
  await fs.streamFiles(['b', 'a', 'h', 's'], async ({ paths: ps }, content) => {
    seen.push([ps, (await bytes(content)).toString()]);
  });
  assert.deepEqual(seen, [[['a', 'h', 's'], 'aaa'], [['b'], 'bbb']]);

  // The layer changes between the scan and the read: refused.
  srcs[0].data = (await sources([file('a', 'AAA'), hard('h', 'a'), sym('s', 'a'), file('b', 'bbb')]))[0].data;
  await assert.rejects(
    fs.streamFiles(['a'], async (_f, content) => {
      await bytes(content);
    }),
    rejectsWith('LAYER_CHANGED', 'layer 0 (test)', '"a"'),
  );
  await assert.rejects(fs.readFiles(['a']), rejectsWith('LAYER_CHANGED'));
});

test('scanLayer hashes every regular file and keeps entries in archive order', async () => {
  const [src] = await sources([dir('d'), file('d/f', 'hello'), wh('d/.wh.g'), file('d/e', '')]);
  const ix = await scanLayer(src);
  assert.deepEqual(ix.entries.map((e) => [e.path, e.sha256 ?? null, e.whiteout?.kind ?? null]), [
    ['d', null, null],
    ['d/f', sha('hello'), null],
    ['d/.wh.g', sha(''), 'file'],
    ['d/e', sha(''), null],
  ]);
});

// ---------------------------------------------------------------- against the real umoci

/** The tree of a real directory in formatTree's format (nlink counted among the tree's own paths). */
function treeOfDir(root: string): string {
  const all: { rel: string; st: Stats }[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(root, r));
      all.push({ rel: r, st });
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  all.sort((a, b) => Buffer.compare(Buffer.from(a.rel), Buffer.from(b.rel)));
  const links = new Map<number, number>();
  for (const { st } of all) if (!st.isDirectory()) links.set(st.ino, (links.get(st.ino) ?? 0) + 1);
  return all.map(({ rel, st }) => {
    const mode = (st.mode & 0o7777).toString(8);
    const own = `${st.uid}:${st.gid}`;
    if (st.isFile()) return `${rel} file ${mode} ${own} ${st.size} ${createHash('sha256').update(readFileSync(path.join(root, rel))).digest('hex')} nlink=${links.get(st.ino)}`;
    if (st.isDirectory()) return `${rel} dir ${mode} ${own}`;
    if (st.isSymbolicLink()) return `${rel} symlink ${own} -> ${readlinkSync(path.join(root, rel))}`;
    if (st.isFIFO()) return `${rel} fifo ${mode} ${own}`;
    const major = (st.rdev >> 8) & 0xfff, minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    return `${rel} ${st.isCharacterDevice() ? 'chardev' : 'blockdev'} ${mode} ${own} ${major},${minor}`;
  }).join('\n') + '\n';
}

/** Writes an OCI layout with uncompressed layers, tag `t`. */
function writeLayout(dir: string, layers: Buffer[]): void {
  const put = (data: Buffer | string) => {
    const b = Buffer.from(data);
    const hex = createHash('sha256').update(b).digest('hex');
    writeFileSync(path.join(dir, 'blobs', 'sha256', hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const ls = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(l) }));
  const config = put(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: ls.map((l) => l.digest) } }));
  const manifest = put(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: ls }));
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 't' } }] }));
}

test('tricky layers merge exactly as umoci unpack materialises them', { skip: tool('umoci').skip }, async () => {
  const layers: TarWriteItem[][] = [
    [
      dir('.', { mode: 0o755 }),
      dir('d'), file('d/a', 'a'), dir('d/sub'), file('d/sub/c', 'c'),
      file('h1', 'shared', { mode: 0o640 }), hard('h2', 'h1'), hard('h3', 'h1'),
      file('r1', 'old'), hard('r2', 'r1'),
      dir('p'), file('p/q', 'q'), dir('p/r'), file('p/r/s', 's'),
      dir('y'), file('y/z', 'z'), file('x', 'one'),
      dir('tmp', { mode: 0o1777 }), file('suid', 's', { mode: 0o4755 }),
      { entry: { ...base, path: 'fifo', type: 'fifo', mode: 0o600 } },
      { entry: { ...base, path: 'null', type: 'chardev', mode: 0o666, devmajor: 1, devminor: 3 } },
      sym('s', 'd/a'),
      dir('w'), file('w/1', '1'), file('w/2', '2'),
    ],
    [
      file('d/new', 'n'), wh('d/.wh..wh..opq'), // opaque after a sibling
      wh('.wh.x'), file('x', 'two'), // whiteout before an entry of its own layer
      wh('.wh.h1'), // hard link target deleted: h2, h3 keep the content
      file('r1', 'new'), // hard link target replaced
      file('p', 'now a file'), // file over directory
      dir('y', { mode: 0o700, uid: 5 }), // directory over directory
      dir('w'), wh('w/.wh.1'), file('w/3', '3'),
    ],
    [
      wh('.wh.p'), dir('p'), file('p/again', 'again'), // re-added after deletion
      wh('.wh.s'), sym('s', 'y/z'),
      wh('w/.wh..wh..opq'), file('w/4', '4'),
      file('q/r/s.txt', 'implied parents'), hard('y/hz', 'y/z'), // link to a lower layer's file
    ],
  ];
  const bufs = await Promise.all(layers.map(async (l) => bytes(tarStream(l))));
  const work = mkdtempSync(path.join(tmpdir(), 'enclavify-umoci-'));
  try {
    writeLayout(path.join(work, 'img'), bufs);
    execFileSync('sh', ['-c', 'umask 022 && exec "$0" unpack --image "$1:t" "$2"', tool('umoci').path!, path.join(work, 'img'), path.join(work, 'bundle')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const fs = RootFs.fromIndexes(
      bufs.map((b, i) => bufferSource(`layer ${i}`, b)),
      await Promise.all(bufs.map((b, i) => scanLayer(bufferSource(`layer ${i}`, b)))),
    );
    assert.equal(formatTree(fs), treeOfDir(path.join(work, 'bundle', 'rootfs')));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('maxEntries counts the entries of all layers and fails with TOO_MANY_ENTRIES naming the image', async () => {
  const layers = fixtureLayers('bb-oci');
  const full = await RootFs.scan(layers);
  const total = full.layers.reduce((n, ix) => n + ix.entries.length, 0);
  const exact = await RootFs.scan(layers, { maxEntries: total, image: 'oci:bb' });
  assert.equal(formatTree(exact), formatTree(full));
  await assert.rejects(RootFs.scan(layers, { maxEntries: total - 1, image: 'oci:bb' }), (e: EnclavifyError) => {
    assert.equal(e.code, 'TOO_MANY_ENTRIES');
    assert.match(e.message, new RegExp(`^oci:bb: .*more than ${total - 1} entries`));
    return true;
  });
});

test('walk() makes the same entries as entries(), in the same order, hard links and small and empty files included', async () => {
  const big = Buffer.alloc(70 * 1024, 7);
  const fs = await merge(
    [
      { entry: plainFile('a/empty', 0), content: Buffer.alloc(0) },
      { entry: plainFile('a/small', 3), content: Buffer.from('abc') },
      { entry: plainFile('a/big', big.length), content: big },
      { entry: { path: 'a/link', type: 'hardlink', linkname: 'a/small', mode: 0, uid: 0, gid: 0, mtime: 0, size: 0 } },
    ],
  );
  assert.deepEqual([...fs.walk()], fs.entries());
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.deepEqual(fs.entries().map((e) => [e.path, e.sha256 ?? null, e.nlink]), [
    ['a', null, 1], ['a/big', sha(big), 1], ['a/empty', sha(Buffer.alloc(0)), 1], ['a/link', sha(Buffer.from('abc')), 2], ['a/small', sha(Buffer.from('abc')), 2],
  ]);
});

function plainFile(p: string, size: number): FsEntry {
  return { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size };
}
