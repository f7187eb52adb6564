/**
 * Cancellation with an AbortSignal: an operation aborted in the middle rejects with ABORTED,
 * destroys its streams and leaves nothing behind (no temporary blob, no staged layer, the
 * layout's index.json as it was).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EnclavifyError, encryptFS, fileClassify, imageFromDirectory, inspectImage, openImage, pipeline, verify, writeImage, copyImage, type ProgressEvent } from '../../lib/index.js';
import { bbOci, scratch } from '../helpers/images.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';
import { filesUnder } from '../helpers/disk-tree.js';

const isAborted = (e: unknown) => e instanceof EnclavifyError && e.code === 'ABORTED';

test('a write aborted in the middle of the python image: ABORTED, no temporary blob, index.json unchanged', { skip: pythonImageSkip }, async () => {
  const s = scratch();
  try {
    const layout = path.join(s.dir, 'layout');
    await writeImage(await openImage(`oci:${bbOci}:latest`), `oci:${layout}:base`);
    const index = readFileSync(path.join(layout, 'index.json'));
    const ac = new AbortController();
    const seen: ProgressEvent[] = [];
    const py = await openImage(pythonImageRef);
    await assert.rejects(writeImage(py, `oci:${layout}:py`, {
      signal: ac.signal,
      onProgress: (e) => {
        seen.push(e);
        if (e.status === 'progress' && (e.bytesDone ?? 0) > 1 << 20) ac.abort();
      },
    }), isAborted);
    assert.ok(seen.some((e) => e.status === 'progress'), 'the abort came in the middle of a layer');
    assert.deepEqual(filesUnder(layout).filter((f) => /\.tmp/.test(f)), [], 'no temporary blob survives');
    assert.deepEqual(readFileSync(path.join(layout, 'index.json')), index, 'index.json is unchanged');
    // A layout the aborted write created is removed again.
    const ac2 = new AbortController();
    await assert.rejects(writeImage(py, `oci:${s.dir}/fresh:py`, { signal: ac2.signal, onProgress: (e) => { if (e.status === 'progress') ac2.abort(); } }), isAborted);
    assert.ok(!existsSync(path.join(s.dir, 'fresh')), 'the new layout is removed');
  } finally {
    s.done();
  }
});

test('a pipeline aborted in the middle of the python image: ABORTED, its temporary directory removed', { skip: pythonImageSkip }, async () => {
  const s = scratch();
  try {
    const ac = new AbortController();
    const py = await openImage(pythonImageRef);
    await assert.rejects(pipeline(py, [fileClassify({ dirs: ['/root'] }), encryptFS()], {
      tmpDir: s.dir,
      signal: ac.signal,
      onProgress: (e) => {
        if (e.phase === 'scan' && (e.bytesDone ?? 0) > 4 << 20) ac.abort();
      },
    }), isAborted);
    assert.deepEqual(readdirSync(s.dir), [], 'the staging directory is removed');
  } finally {
    s.done();
  }
});

test('a fired signal cancels every long operation with ABORTED and leaves nothing behind', async () => {
  const s = scratch();
  try {
    const fired = AbortSignal.abort();
    const img = await openImage(`oci:${bbOci}:latest`);
    await assert.rejects(openImage(`oci:${bbOci}:latest`, { signal: fired }), isAborted);
    await assert.rejects(writeImage(img, `oci:${s.dir}/o:x`, { signal: fired }), isAborted);
    await assert.rejects(writeImage(img, `docker-archive:${s.dir}/o.tar`, { signal: fired }), isAborted);
    await assert.rejects(copyImage(`oci:${bbOci}:latest`, `oci:${s.dir}/c:x`, { signal: fired }), isAborted);
    await assert.rejects(pipeline(img, [fileClassify()], { tmpDir: s.dir, signal: fired }), isAborted);
    await assert.rejects(verify(img, { keys: new Map(), signal: fired }), isAborted);
    await assert.rejects(inspectImage(img, { signal: fired }), isAborted);
    await assert.rejects(imageFromDirectory({ dir: path.join(s.dir), tmpDir: s.dir, signal: fired }), isAborted);
    assert.deepEqual(readdirSync(s.dir), [], 'nothing was written');
    // Aborted as the first layer starts: the write of a small image stops too.
    const ac = new AbortController();
    await assert.rejects(writeImage(img, `oci:${s.dir}/p:x`, { signal: ac.signal, onProgress: (e) => { if (e.status === 'start') ac.abort(); } }), isAborted);
    assert.deepEqual(readdirSync(s.dir), []);
    // Images opened under a signal: their layer streams stop when it fires.
    const ac2 = new AbortController();
    const opened = await openImage(`oci:${bbOci}:latest`, { signal: ac2.signal });
    ac2.abort();
    await assert.rejects(pipeline(opened, [fileClassify()], { tmpDir: s.dir }), isAborted);
    assert.deepEqual(readdirSync(s.dir), []);
  } finally {
    s.done();
  }
});
