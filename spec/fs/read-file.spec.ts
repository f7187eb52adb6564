/**
 * readFile reads one file of an image from the top layer down: it must give what the merged view
 * gives (which in turn matches `umoci unpack` for the bb fixture) for every path, and open no
 * layer below the one that decides the path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { openImage } from '../../lib/store/index.js';
import { readFile, readFileEntry, rootfs, entries } from '../../lib/fs/read-file.js';
import { tarStream, type TarWriteItem } from '../../lib/fs/tar-write.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import { withLayerObjects, type Image, type Layer } from '../../lib/oci/image.js';
import { sha256Digest } from '../../lib/oci/digest.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { bbArchive, bbOci, expectedTree } from '../helpers/images.js';

// ---------------------------------------------------------------- helpers

async function bytes(r: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The same image, counting how often each layer's uncompressed stream is opened. */
function counting(image: Image): Image & { opens: number[] } {
  const opens: number[] = [];
  const layers = async () =>
    (await image.layers()).map((l, i): Layer => {
      opens[i] ??= 0;
      return {
        mediaType: l.mediaType,
        compression: l.compression,
        name: l.name,
        digest: () => l.digest(),
        size: () => l.size(),
        diffId: () => l.diffId(),
        compressed: () => l.compressed(),
        uncompressed: async () => {
          opens[i]++;
          return l.uncompressed();
        },
      };
    });
  return Object.assign(withLayerObjects(image, layers), { opens });
}

/** An image whose layers are uncompressed tars held in memory (base first). */
async function tarImage(...layers: TarWriteItem[][]): Promise<Image & { opens: number[] }> {
  const tars = await Promise.all(layers.map((items) => bytes(tarStream(items))));
  const ls: Layer[] = tars.map((t, i) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    compression: 'none',
    name: `layer ${i} (test)`,
    digest: async () => sha256Digest(t),
    size: async () => t.length,
    diffId: async () => sha256Digest(t),
    compressed: async () => Readable.from([t]),
    uncompressed: async () => Readable.from([t]),
  }));
  const image: Image = {
    name: 'test image',
    mediaType: async () => 'application/vnd.oci.image.manifest.v1+json',
    manifest: async () => ({ schemaVersion: 2, config: { mediaType: 'x', digest: 'sha256:0', size: 0 }, layers: [] }),
    rawManifest: async () => new Uint8Array(),
    digest: async () => 'sha256:0',
    config: async () => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    rawConfig: async () => new Uint8Array(),
    layers: async () => ls,
  };
  return counting(image);
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: 0 };
const file = (p: string, text: string, extra: Partial<FsEntry> = {}): TarWriteItem => ({
  entry: { ...base, path: p, type: 'file', size: Buffer.byteLength(text), ...extra },
  content: Buffer.from(text),
});
const dir = (p: string): TarWriteItem => ({ entry: { ...base, path: p, type: 'dir', mode: 0o755 } });
const sym = (p: string, target: string): TarWriteItem => ({ entry: { ...base, path: p, type: 'symlink', mode: 0o777, linkname: target } });
const hard = (p: string, target: string): TarWriteItem => ({ entry: { ...base, path: p, type: 'hardlink', linkname: target } });
const wh = (p: string): TarWriteItem => file(p, '', { mode: 0, mtime: 0 });

/** What a read gives: the content as text, or the error code. */
async function outcome(fn: () => Promise<Uint8Array>): Promise<string> {
  try {
    return `data:${Buffer.from(await fn()).toString('utf8')}`;
  } catch (e) {
    if (!(e instanceof EnclavifyError)) throw e;
    return `error:${e.code}`;
  }
}

/** readFile and the merged view agree on every path given. */
async function agree(image: Image, paths: string[]): Promise<Record<string, string>> {
  const view = await rootfs(image);
  const out: Record<string, string> = {};
  for (const p of paths) {
    const merged = await outcome(async () => (await view.readFiles([p])).get(p)!);
    const ours = await outcome(() => readFile(image, p));
    assert.equal(ours, merged, `readFile(${JSON.stringify(p)})`);
    out[p] = ours;
  }
  return out;
}

// ---------------------------------------------------------------- the fixture (merged tree from umoci)

const tree = readFileSync(expectedTree, 'utf8').trim().split('\n').map((l) => l.split(' '));

for (const [label, ref] of [['bb-oci', `oci:${bbOci}:latest`], ['bb docker archive', `docker-archive:${bbArchive}`]] as const) {
  test(`${label}: readFile gives every regular file of umoci's merged tree (SHA-256 and size as umoci saw them)`, async () => {
    const image = await openImage(ref);
    const files = tree.filter((f) => f[1] === 'file');
    assert.ok(files.length > 10);
    for (const [p, , , , size, sha] of files) {
      const r = await readFileEntry(image, `/${p}`);
      assert.equal(r.data.length, Number(size), p);
      assert.equal(createHash('sha256').update(r.data).digest('hex'), sha, p);
    }
  });
}

test('bb-oci: readFile agrees with the merged view on every path of the tree (files, symlinks, directories, devices) and on hidden ones', async () => {
  const image = await openImage(`oci:${bbOci}:latest`);
  const paths = tree.map((f) => f[0]);
  const r = await agree(image, [...paths, 'etc/hostname', 'app/data/tiny', 'var/cache/old/a', 'nope', 'app/static/secret-link/x', '../app/./static/../server.sh']);
  assert.match(r['app/static/secret-link']!, /^data:/); // symlink into the secret, followed
  assert.equal(r['etc/hostname'], 'error:FS_NOT_FOUND'); // whited out
  assert.equal(r['app/data/tiny'], 'error:FS_NOT_FOUND');
  assert.equal(r.app, 'error:FS_NOT_A_FILE');
  assert.match(r['../app/./static/../server.sh']!, /^data:#!/); // `..` stops at the root, as in the merged view
});

// ---------------------------------------------------------------- generated layer stacks

test('whiteouts, opaque directories, replacement by a directory and back, last entry of a layer wins', async () => {
  const image = await tarImage(
    [dir('a'), file('a/x', 'x0'), file('a/y', 'y0'), dir('d'), file('d/x', 'dx0'), file('d/keep', 'k0'), file('p', 'p0'), dir('q'), file('q/r', 'r0'), file('twice', 'one')],
    [wh('a/.wh.x'), wh('d/.wh..wh..opq'), file('d/new', 'dn1'), dir('p'), file('p/inner', 'pi1'), file('q', 'q1'), file('twice', 'two')],
    [file('twice', 'three'), file('twice', 'four'), file('a/x', 'x2')],
  );
  const r = await agree(image, ['a/x', 'a/y', 'd/x', 'd/keep', 'd/new', 'p', 'p/inner', 'q', 'q/r', 'twice', 'a', '/', '']);
  assert.deepEqual(r, {
    'a/x': 'data:x2', 'a/y': 'data:y0', 'd/x': 'error:FS_NOT_FOUND', 'd/keep': 'error:FS_NOT_FOUND', 'd/new': 'data:dn1',
    p: 'error:FS_NOT_A_FILE', 'p/inner': 'data:pi1', q: 'data:q1', 'q/r': 'error:FS_NOT_FOUND', twice: 'data:four',
    a: 'error:FS_NOT_A_FILE', '/': 'error:FS_NOT_A_FILE', '': 'error:FS_NOT_A_FILE',
  });
});

test('symlinks: a symlinked parent, absolute and relative targets, chains, dangling links and loops', async () => {
  const image = await tarImage(
    [dir('usr'), dir('usr/lib'), file('usr/lib/os-release', 'ID=test'), dir('etc'), sym('etc/os-release', '../usr/lib/os-release'), sym('lib', 'usr/lib'), sym('abs', '/usr/lib/os-release')],
    [sym('chain', 'abs'), sym('dangling', 'nothing'), sym('loop1', 'loop2'), sym('loop2', 'loop1'), sym('updir', '../../../usr')],
    [file('usr/lib/os-release', 'ID=upper')],
  );
  const r = await agree(image, ['etc/os-release', '/lib/os-release', 'abs', 'chain', 'dangling', 'loop1', 'updir/lib/os-release', 'lib', 'lib/']);
  assert.equal(r['etc/os-release'], 'data:ID=upper');
  assert.equal(r['/lib/os-release'], 'data:ID=upper');
  assert.equal(r.chain, 'data:ID=upper');
  assert.equal(r.dangling, 'error:FS_NOT_FOUND');
  assert.equal(r.loop1, 'error:ELOOP');
  assert.equal(r['updir/lib/os-release'], 'data:ID=upper');
  const e = await readFileEntry(image, '/etc/os-release');
  assert.equal(e.entry.path, 'usr/lib/os-release');
  assert.equal(e.layer, 2);
});

test('hard links keep the content of their target as it was when the link was made', async () => {
  const image = await tarImage(
    [file('a', 'a0'), hard('b', 'a'), file('c', 'c0')],
    [hard('d', 'c'), wh('.wh.a'), file('c', 'c1'), file('e', 'e1'), hard('f', 'e'), file('e', 'e1bis')],
    [hard('g', 'f')],
  );
  const r = await agree(image, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  assert.deepEqual(r, { a: 'error:FS_NOT_FOUND', b: 'data:a0', c: 'data:c1', d: 'data:c0', e: 'data:e1bis', f: 'data:e1', g: 'data:e1' });
});

test('a hard link to a missing target or to a directory is refused as the merged view refuses it', async () => {
  const image = await tarImage([dir('d')], [hard('x', 'missing'), hard('y', 'd')]);
  await assert.rejects(readFile(image, 'x'), { code: 'LAYER_BAD_HARDLINK' });
  await assert.rejects(readFile(image, 'y'), { code: 'LAYER_BAD_HARDLINK' });
  await assert.rejects(rootfs(image), { code: 'LAYER_BAD_HARDLINK' });
});

test('a whiteout after an entry it names in the same layer is refused (LAYER_AMBIGUOUS_WHITEOUT)', async () => {
  const image = await tarImage([file('a/x', 'x0')], [file('a/x', 'x1'), wh('a/.wh.x')]);
  await assert.rejects(readFile(image, 'a/x'), { code: 'LAYER_AMBIGUOUS_WHITEOUT' });
  await assert.rejects(rootfs(image), { code: 'LAYER_AMBIGUOUS_WHITEOUT' });
});

// ---------------------------------------------------------------- reading only what decides

test('stops at the first layer that decides the path: lower layers are never opened', async () => {
  const image = await tarImage([file('f', 'f0'), file('g', 'g0'), file('h', 'h0')], [file('g', 'g1'), wh('.wh.h')], [file('f', 'f2'), dir('other')]);
  assert.equal(await readFile(image, '/f').then(String), 'f2');
  assert.deepEqual(image.opens, [0, 0, 1]);
  assert.equal(await readFile(image, '/g').then(String), 'g1');
  assert.deepEqual(image.opens, [0, 1, 2]);
  await assert.rejects(readFile(image, '/h'), { code: 'FS_NOT_FOUND' });
  assert.deepEqual(image.opens, [0, 2, 3]);
  // A file only the base layer has: every layer is read, each once.
  const before = [...image.opens];
  await readFile(image, '/other/../f'); // `..` is lexical: this is /f, decided by the top layer
  assert.deepEqual(image.opens, [before[0], before[1], before[2] + 1]);
});

test('each layer is read once, even when symlinks and hard links send the lookup back into layers already read', async () => {
  // As in real layers (sorted), the link comes before its target: the target's bytes are kept on the way.
  const image = await tarImage([dir('etc'), sym('etc/os-release', '../usr/lib/os-release'), file('t', 't0'), hard('u', 't'), dir('usr'), dir('usr/lib'), file('usr/lib/os-release', 'ID=test')], [file('unrelated', '')]);
  const r = await readFileEntry(image, '/etc/os-release');
  assert.equal(r.data.toString(), 'ID=test');
  assert.deepEqual(image.opens, [1, 1]); // the target's bytes were kept while the base layer was read
  const h = await readFileEntry(image, 'u');
  assert.equal(h.data.toString(), 't0');
  assert.equal(h.opened, 3); // base layer read again for the link target's bytes (seen before the link)
});

test('bb-oci: a file of the top layer opens only the top layer', async () => {
  const image = counting(await openImage(`oci:${bbOci}:latest`));
  const top = (await rootfs(image)).entries().find((e) => e.type === 'file' && e.layer === 2 && !e.path.includes('.wh.'))!;
  const opensAfterScan = [...image.opens];
  await readFile(image, top.path);
  assert.deepEqual(image.opens, [opensAfterScan[0], opensAfterScan[1], opensAfterScan[2] + 1]);
});

// ---------------------------------------------------------------- options and errors

test('maxBytes refuses a larger file (FS_TOO_LARGE); an aborted signal rejects with ABORTED; bad arguments are BAD_ARGUMENT', async () => {
  const image = await tarImage([file('big', 'x'.repeat(1000)), file('small', 'y')]);
  await assert.rejects(readFile(image, 'big', { maxBytes: 999 }), (e: EnclavifyError) => e.code === 'FS_TOO_LARGE' && e.message.includes('/big') && e.message.includes('1000'));
  assert.equal((await readFile(image, 'big', { maxBytes: 1000 })).length, 1000);
  assert.equal(String(await readFile(image, 'small', { maxBytes: 1 })), 'y');
  await assert.rejects(readFile(image, 'small', { signal: AbortSignal.abort() }), { code: 'ABORTED' });
  await assert.rejects(readFile(image, 42 as unknown as string), { code: 'BAD_ARGUMENT' });
});

test('entries: a layer yields its tar entries with whiteouts marked, an image its merged view', async () => {
  const image = await tarImage([file('a/x', 'x0'), file('a/y', 'y0')], [wh('a/.wh.x'), file('a/z', 'z1')]);
  const [, top] = await image.layers();
  const items: string[] = [];
  for await (const { entry, content } of entries(top!)) items.push(`${entry.path}${entry.whiteout ? ` whiteout:${entry.whiteout.kind}` : ''}${content ? ` ${await bytes(content)}` : ''}`);
  assert.deepEqual(items, ['a/.wh.x whiteout:file ', 'a/z z1']);
  const merged: string[] = [];
  for await (const e of entries(image)) merged.push(`${e.path} ${e.type}`);
  assert.deepEqual(merged, ['a dir', 'a/y file', 'a/z file']);
});
