/**
 * Resources: pipeline results and images from directories are disposable (`dispose()`,
 * `await using`), idempotently; their temporaries go on dispose, on failure and at process exit;
 * using them after dispose is a coded DISPOSED error naming the image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnclavifyError, fileClassify, imageFromDirectory, openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import { liveTemps } from '../../lib/oci/temp.js';
import { bbOci, scratch } from '../helpers/images.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const disposed = (name: string) => (e: unknown) => e instanceof EnclavifyError && e.code === 'DISPOSED' && e.message.includes(name);

const stamp: Transform = {
  name: 'stamp',
  async apply(d) {
    d.addLayer(await d.buildLayer([{ entry: { path: 'stamp', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 2 }, content: Buffer.from('42') }], 'stamp layer'), { createdBy: 'stamp' });
  },
};

test('await using: the result is written inside the block, its staged layers go at the end, later use is DISPOSED', async () => {
  const s = scratch();
  try {
    const stage = path.join(s.dir, 'stage');
    mkdirSync(stage);
    const src = await openImage(`oci:${bbOci}:latest`);
    let image;
    let layers;
    {
      await using out = await pipeline(src, [stamp], { tmpDir: stage });
      assert.equal(readdirSync(stage).length, 1, 'one staging directory');
      await writeImage(out.image, `oci:${s.dir}/o:x`);
      image = out.image;
      layers = await out.image.layers();
    }
    assert.deepEqual(readdirSync(stage), [], 'removed at the end of the block');
    await assert.rejects(writeImage(image, `oci:${s.dir}/o:y`), disposed(`${src.name} (converted)`));
    await assert.rejects(image.layers(), disposed(src.name));
    await assert.rejects(layers.at(-1)!.compressed(), disposed('stamp layer'));
    // The source's own layers are not the result's: they stay readable.
    await layers[0].compressed().then((r) => r.destroy());
  } finally {
    s.done();
  }
});

test('dispose() is idempotent, Symbol.asyncDispose is the same, and the registry forgets the directory', async () => {
  const src = await openImage(`oci:${bbOci}:latest`);
  const before = liveTemps().length;
  const out = await pipeline(src, [stamp]);
  assert.equal(liveTemps().length, before + 1, 'the staging directory is registered');
  await Promise.all([out.dispose(), out.dispose()]);
  await out[Symbol.asyncDispose]();
  assert.equal(liveTemps().length, before);
  // An unchanged pipeline returns the source itself, which stays usable after dispose.
  const same = await pipeline(src, [fileClassify()]);
  await same.dispose();
  assert.equal(same.image, src);
  assert.ok((await same.image.layers()).length > 0);
});

test('imageFromDirectory: one model, disposable; DISPOSED after dispose; its directory gone', async () => {
  const s = scratch();
  try {
    const dir = path.join(s.dir, 'app');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'hello.sh'), 'echo hi\n');
    const stage = path.join(s.dir, 'stage');
    mkdirSync(stage);
    let kept;
    {
      await using img = await imageFromDirectory({ dir, prefix: '/app', tmpDir: stage, name: 'hello-dir' });
      await writeImage(img, `oci:${s.dir}/o:x`);
      kept = img;
      // A pipeline result built from it shares its layer: dispose it first.
      await using out = await pipeline(img, [stamp], { tmpDir: stage });
      await writeImage(out.image, `oci:${s.dir}/o:y`);
    }
    assert.deepEqual(readdirSync(stage), []);
    await assert.rejects(writeImage(kept, `oci:${s.dir}/o:z`), disposed('hello-dir'));
  } finally {
    s.done();
  }
});

test('a result nobody disposes is removed when the process exits (the library installs no signal handler)', () => {
  const s = scratch();
  try {
    const script = `
      import { openImage, pipeline } from './lib/index.ts';
      const out = await pipeline(await openImage(${JSON.stringify(`oci:${bbOci}:latest`)}), [{
        name: 'stamp', async apply(d) { d.addLayer(await d.buildLayer([{ entry: { path: 'x', type: 'file', mode: 420, uid: 0, gid: 0, mtime: 0, size: 0 } }], 'x'), { createdBy: 'x' }); },
      }]);
      console.log(JSON.stringify({ staged: (await out.image.layers()).length, sigint: process.listenerCount('SIGINT'), sigterm: process.listenerCount('SIGTERM') }));
    `;
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, TMPDIR: s.dir }, encoding: 'utf8' });
    const r = JSON.parse(stdout) as { staged: number; sigint: number; sigterm: number };
    assert.ok(r.staged > 1);
    assert.deepEqual([r.sigint, r.sigterm], [0, 0], 'no signal handlers');
    assert.deepEqual(readdirSync(s.dir).filter((n) => n.startsWith('enclavify-')), [], 'the exit handler removed the staging directory');
  } finally {
    s.done();
  }
});
