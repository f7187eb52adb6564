import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import { stamp } from '../../examples/custom-transform.js';
import { bbArchive, bbOci, expectedTree, scratch, umociUnpack } from '../helpers/images.js';
import { diskTree } from '../helpers/disk-tree.js';
import { ociSchemaErrors } from '../helpers/oci-schema.js';
import { tool } from '../helpers/tools.js';

test('a pipeline with no transforms reproduces the source manifest digest', async () => {
  const src = await openImage(`oci:${bbOci}:latest`);
  const out = await pipeline(src, []);
  try {
    assert.equal(await out.image.digest(), await src.digest());
    const s = scratch();
    try {
      const res = await writeImage(out.image, `oci:${s.dir}/o:t`);
      assert.equal(res.digest, await src.digest());
    } finally {
      s.done();
    }
  } finally {
    await out.dispose();
  }
});

test('a user transform adds a layer: history, diff_ids and digests stay consistent; umoci sees the file', { skip: tool('umoci').skip }, async () => {
  const s = scratch();
  try {
    const src = await openImage(`docker-archive:${bbArchive}`);
    const out = await pipeline(src, [stamp({ build: 'test-42' })], { tmpDir: s.dir });
    const res = await writeImage(out.image, `oci:${s.dir}/o:stamped`);
    await out.dispose();
    const m = await out.image.manifest();
    const c = await out.image.config();
    assert.equal(m.layers.length, 4);
    assert.equal(c.rootfs.diff_ids.length, 4);
    assert.equal(c.history!.filter((h) => !h.empty_layer).length, 4);
    assert.equal(c.config!.Labels!['org.example.stamp'], 'test-42');
    assert.deepEqual(ociSchemaErrors('image-manifest', m), []);
    assert.deepEqual(ociSchemaErrors('config', c), []);
    // Unchanged layers keep their digests (docker-archive layers are uncompressed: digest = diff_id).
    const srcLayers = await src.layers();
    for (let i = 0; i < 3; i++) assert.equal(m.layers[i].digest, await srcLayers[i].digest());
    const rootfs = umociUnpack(`${s.dir}/o:stamped`, path.join(s.dir, 'bundle'));
    const info = JSON.parse(readFileSync(path.join(rootfs, 'etc/build-info.json'), 'utf8'));
    assert.equal(info.build, 'test-42');
    const tree = diskTree(rootfs).split('\n').filter((l) => !l.startsWith('etc/build-info.json')).join('\n');
    assert.equal(tree, readFileSync(expectedTree, 'utf8'));
    assert.match(res.digest, /^sha256:/);
  } finally {
    s.done();
  }
});

test('a failing transform propagates its error and removes staged files', async () => {
  const s = scratch();
  try {
    const tmp = path.join(s.dir, 'stage');
    const boom: Transform = { name: 'boom', apply() { throw new Error('boom: refused'); } };
    const src = await openImage(`oci:${bbOci}:latest`);
    await assert.rejects(pipeline(src, [stamp({}), boom]), /boom: refused/);
    await assert.rejects(pipeline(src, [{ notATransform: true } as never, boom]), /not a transform/);
    assert.ok(!existsSync(tmp));
  } finally {
    s.done();
  }
});
