/**
 * Staged layers (issue 11, lib/oci/stage.ts): a pipeline decompresses each layer once; the scan
 * stages its verified tar and later reads (file reads by byte range, encryptFS's rewrite and hard
 * link staging) read that file. Same output as without staging, fallback on write errors and
 * without room, nothing left behind, and a staged file changed on disk fails with LAYER_CHANGED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { openImage, pipeline, type Draft, type Image, type Layer, type PipelineOptions, type Transform } from '../../lib/index.js';
import { withLayerObjects } from '../../lib/oci/image.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import { LayerStage } from '../../lib/oci/stage.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { bbRef, collect } from '../protect/encrypt-helpers.js';
import { scratch } from '../helpers/images.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';

const created = new Date('2026-01-01T00:00:00Z');
const masterKey = new Uint8Array(32).fill(7);
/** /app/static holds a hard link and a symlink into the region: the staged links are read too. */
const DIRS = ['/app/data', '/app/static'];

/** The same image, counting how often each layer's uncompressed stream is opened. */
function counting(image: Image): Image & { opens: number[] } {
  const opens: number[] = [];
  let cache: Layer[] | undefined;
  const layers = async () =>
    (cache ??= (await image.layers()).map((l, i): Layer => {
      opens[i] = 0;
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
    }));
  return Object.assign(withLayerObjects(image, layers), { opens });
}

/** A transform that runs `fn` on the draft. */
const step = (name: string, fn: (d: Draft) => Promise<void> | void): Transform => ({ name, apply: fn });

const stagedFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('staged-')) : []);

async function layerDigests(image: Image): Promise<string[]> {
  return Promise.all((await image.layers()).map((l) => l.digest()));
}

async function convertDigest(ref: string, dirs: string[], options: PipelineOptions): Promise<{ digest: string; layers: string[] }> {
  const r = await pipeline(await openImage(ref), [fileClassify({ dirs }), encryptFS({ deterministic: { masterKey } })], { created, ...options });
  try {
    return { digest: await r.image.digest(), layers: await layerDigests(r.image) };
  } finally {
    await r.dispose();
  }
}

test('stageLayers true and false give the same image, byte for byte (deterministic mode)', async () => {
  const on = await convertDigest(bbRef, DIRS, {});
  const off = await convertDigest(bbRef, DIRS, { stageLayers: false });
  assert.deepEqual(on, off);
});

test('each layer is decompressed once per conversion when staged (more often without)', async () => {
  const run = async (stageLayers: boolean) => {
    const img = counting(await openImage(bbRef));
    const r = await pipeline(img, [fileClassify({ dirs: DIRS }), encryptFS({ deterministic: { masterKey } })], { created, stageLayers });
    const opens = [...img.opens];
    await r.dispose();
    return { opens };
  };
  const on = await run(true);
  assert.ok(on.opens.length >= 2);
  assert.deepEqual(on.opens, on.opens.map(() => 1), `opens per layer: ${on.opens.join(', ')}`);
  const off = await run(false);
  assert.ok(off.opens.some((n) => n > 1), `without staging a rewritten layer is read again: ${off.opens.join(', ')}`);
});

test('staged reads give the same bytes as the blob: whole tar, readFiles and streamFiles by range', async () => {
  const s = scratch();
  try {
    const layers = await (await openImage(bbRef)).layers();
    const stage = new LayerStage(s.dir);
    const fs = await layersRootFs(layers, { stage });
    const plain = await layersRootFs(layers);
    for (const l of layers) assert.ok(stage.stagedFile(l), `${l.name} staged`);
    for (let i = 0; i < layers.length; i++) {
      assert.ok(fs.sources[i].openRange, 'staged source seeks');
      assert.deepEqual(await collect(await fs.sources[i].open()), await collect(await layers[i].uncompressed()));
    }
    const files = fs.entries().filter((e) => e.type === 'file').map((e) => e.path);
    assert.ok(files.length > 5);
    assert.deepEqual(await fs.readFiles(files), await plain.readFiles(files));
    const streamed = new Map<string, Buffer>();
    await fs.streamFiles(files, async (f, content) => {
      const b = await collect(content);
      for (const p of f.paths) streamed.set(p, b);
    });
    assert.deepEqual(new Map([...streamed].map(([p, b]) => [p, new Uint8Array(b)])), new Map([...(await plain.readFiles(files))].map(([p, b]) => [p, new Uint8Array(b)])));
    await stage.clear();
    assert.deepEqual(stagedFiles(s.dir), [], 'clear() removes the staged files');
    // After clear(), reads go to the blobs again.
    assert.deepEqual(await fs.readFiles(files.slice(0, 3)), await plain.readFiles(files.slice(0, 3)));
  } finally {
    s.done();
  }
});

/** A writer that fails with `code` after `after` bytes. */
function failingWriter(code: string, after: number): () => Writable {
  return () => {
    let n = 0;
    return new Writable({
      write(chunk: Buffer, _e, cb) {
        n += chunk.length;
        if (n > after) cb(Object.assign(new Error(`${code}: simulated`), { code }));
        else cb();
      },
    });
  };
}

test('staging falls back to the blob on ENOSPC, an unwritable directory, or no room; the results are the same', async () => {
  const s = scratch();
  try {
    const layers = await (await openImage(bbRef)).layers();
    const plain = await layersRootFs(layers);
    const files = plain.entries().filter((e) => e.type === 'file').map((e) => e.path);
    const want = await plain.readFiles(files);
    const stages = [
      new LayerStage(s.dir, { openFile: failingWriter('ENOSPC', 4096) }),
      new LayerStage(s.dir, { openFile: failingWriter('EIO', 0) }),
      new LayerStage(s.dir, { openFile: () => { throw Object.assign(new Error('EACCES: simulated'), { code: 'EACCES' }); } }),
      new LayerStage(path.join(s.dir, 'missing', 'dir')), // the directory cannot be written: ENOENT
      new LayerStage(s.dir, { reserve: Number.MAX_SAFE_INTEGER / 4 }), // never enough room
    ];
    for (const [n, stage] of stages.entries()) {
      const fs = await layersRootFs(layers, { stage });
      for (const l of layers) assert.equal(stage.stagedFile(l), undefined, `stage ${n}: ${l.name} not staged`);
      assert.deepEqual(await fs.readFiles(files), want, `stage ${n}`);
      assert.deepEqual(await collect(await fs.sources[0].open()), await collect(await layers[0].uncompressed()), `stage ${n}`);
      assert.deepEqual(stagedFiles(s.dir), [], `stage ${n}: the partial file was removed`);
    }
    // A pipeline whose staging fails converts the same image.
    let staged: string[] = [];
    const r = await pipeline(await openImage(bbRef), [
      step('block', (d) => {
        // Directories where the staged files would go: each open fails (EISDIR), the conversion does not.
        for (let i = 0; i < 8; i++) mkdirSync(path.join(d.tmpDir, `staged-${i}.tar`));
      }),
      fileClassify({ dirs: DIRS }),
      step('look', (d) => {
        staged = stagedFiles(d.tmpDir).filter((n) => !statSync(path.join(d.tmpDir, n)).isDirectory());
      }),
      encryptFS({ deterministic: { masterKey } }),
    ], { created });
    try {
      assert.deepEqual(staged, [], "nothing staged");
      const off = await convertDigest(bbRef, DIRS, { stageLayers: false });
      assert.equal(await r.image.digest(), off.digest);
    } finally {
      await r.dispose();
    }
  } finally {
    s.done();
  }
});

test('no staged file survives the pipeline: removed when it returns, the directory by dispose() or an error', async () => {
  let seen: string[] = [];
  let dir = '';
  const look = step('look', async (d) => {
    dir = d.tmpDir;
    await d.rootfs();
    seen = stagedFiles(dir);
  });
  const r = await pipeline(await openImage(bbRef), [fileClassify({ dirs: DIRS }), look, encryptFS()], {});
  assert.ok(seen.length >= 2, `staged while the transforms ran: ${seen.join(', ')}`);
  assert.deepEqual(stagedFiles(dir), [], 'removed when the pipeline returned');
  await r.dispose();
  assert.equal(existsSync(dir), false);
  // A failing pipeline removes them with its directory.
  await assert.rejects(
    pipeline(await openImage(bbRef), [fileClassify({ dirs: DIRS }), look, step('boom', () => { throw new EnclavifyError('BAD_OPTIONS', 'boom'); })], {}),
    (e: unknown) => (e as EnclavifyError).code === 'BAD_OPTIONS',
  );
  assert.ok(seen.length >= 2);
  assert.equal(existsSync(dir), false, 'the directory and its staged files are gone after an error');
});

/** A transform that changes one byte of a staged layer file at `where` (an offset in layer `layer`'s tar). */
function tamper(where: (d: Draft, fs: Awaited<ReturnType<Draft['rootfs']>>) => Promise<{ layer: number; offset: number }>): Transform {
  return step('tamper', async (d) => {
    const fs = await d.rootfs();
    const { layer, offset } = await where(d, fs);
    // The staged files are numbered in the order the scans started: find layer `layer`'s by content.
    const want = await collect(await fs.sources[layer].open());
    const file = stagedFiles(d.tmpDir).map((n) => path.join(d.tmpDir, n)).find((f) => readFileSync(f).equals(want));
    assert.ok(file, 'the staged file of the layer');
    const b = readFileSync(file);
    b[offset] ^= 0x20;
    writeFileSync(file, b);
  });
}

/** Layer and data offset of the first non-empty region file. */
const regionFile = async (_d: Draft, fs: Awaited<ReturnType<Draft['rootfs']>>) => {
  const e = fs.entries().find((x) => x.type === 'file' && x.path.startsWith('app/data/') && x.size > 0)!;
  return { layer: e.content!.layer, offset: fs.layers[e.content!.layer].entries[e.content!.index].offset! };
};

test('a staged file changed between the scan and the rewrite fails with LAYER_CHANGED (content or header)', async () => {
  for (const where of [regionFile, async (d: Draft, fs: Awaited<ReturnType<Draft['rootfs']>>) => ({ layer: (await regionFile(d, fs)).layer, offset: 10 })]) {
    await assert.rejects(
      pipeline(await openImage(bbRef), [fileClassify({ dirs: DIRS }), tamper(where), encryptFS()], {}),
      (e: unknown) => {
        assert.equal((e as EnclavifyError).code, 'LAYER_CHANGED', String(e));
        assert.match(String((e as Error).message), /staged copy|changed between reads/);
        return true;
      },
    );
  }
  // A ranged read (readFiles) of a changed file is refused too.
  const read = step('read', async (d) => {
    const fs = await d.rootfs();
    const e = fs.entries().find((x) => x.type === 'file' && x.path.startsWith('app/data/') && x.size > 0)!;
    await assert.rejects(fs.readFiles([e.path]), (x: unknown) => (x as EnclavifyError).code === 'LAYER_CHANGED');
  });
  const r = await pipeline(await openImage(bbRef), [fileClassify({ dirs: DIRS }), tamper(regionFile), read], {});
  await r.dispose();
});

test('python image: stageLayers true and false give the same image; each layer decompressed once', { skip: pythonImageSkip }, async () => {
  const dirs = ['/usr/lib/python3.11', '/etc/python3.11', '/app'];
  const img = counting(await openImage(pythonImageRef));
  const r = await pipeline(img, [fileClassify({ dirs }), encryptFS({ deterministic: { masterKey } })], { created });
  let on: { digest: string; layers: string[] };
  try {
    on = { digest: await r.image.digest(), layers: await layerDigests(r.image) };
  } finally {
    await r.dispose();
  }
  assert.deepEqual(img.opens, img.opens.map(() => 1), `opens per layer: ${img.opens.join(', ')}`);
  assert.deepEqual(on, await convertDigest(pythonImageRef, dirs, { stageLayers: false }));
});
