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

/** A transform running `fn` on the draft. */
const step = (fn: Transform['apply']): Transform => ({ name: 'step', apply: fn });
const fileItem = (path: string, text: string) => ({ entry: { path, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: Buffer.byteLength(text) }, content: Buffer.from(text) });

for (const cached of [false, true]) {
  test(`views after a layer change reuse the scans of the layers kept, and only those${cached ? ' (with a scan cache)' : ''}`, async () => {
    const s = scratch();
    try {
      const src = await openImage(`oci:${bbOci}:latest`);
      const n = (await src.layers()).length;
      let entries = 0;
      await pipeline(src, [step(async (draft) => {
        const fs1 = await draft.rootfs();
        entries = fs1.layers.reduce((a, ix) => a + ix.entries.length, 0);
        draft.addLayer(await draft.buildLayer([fileItem('etc/x', 'a')], 'x'), { createdBy: 'test' });
        const fs2 = await draft.rootfs();
        assert.notEqual(fs2, fs1);
        for (let i = 0; i < n; i++) assert.equal(fs2.layers[i], fs1.layers[i], `layer ${i} is scanned once`);
        assert.equal(fs2.get('etc/x')?.size, 1);
        assert.equal(fs1.get('etc/x'), undefined, 'the earlier view is unchanged');
        // The added layer replaced: its scan is made again, the others are still shared.
        draft.replaceLayer(n, await draft.buildLayer([fileItem('etc/x', 'bb')], 'x2'), 'x2');
        const fs3 = await draft.rootfs();
        assert.notEqual(fs3.layers[n], fs2.layers[n]);
        assert.equal(fs3.layers[0], fs1.layers[0]);
        assert.equal(fs3.get('etc/x')?.size, 2);
        assert.equal(Buffer.from((await fs3.readFiles(['etc/x'])).get('etc/x')!).toString(), 'bb');
        // A base layer replaced twice before the next view: neither earlier scan of it is used.
        draft.replaceLayer(0, await draft.buildLayer([fileItem('etc/y', 'y')], 'y'), 'y');
        draft.replaceLayer(0, await draft.buildLayer([fileItem('etc/z', 'zz')], 'z'), 'z');
        const fs4 = await draft.rootfs();
        assert.notEqual(fs4.layers[0], fs1.layers[0]);
        assert.equal(fs4.get('etc/y'), undefined);
        assert.equal(fs4.get('etc/z')?.size, 2);
        for (let i = 1; i <= n; i++) assert.equal(fs4.layers[i], fs3.layers[i]);
        // Reading through a shared scan's source still works.
        assert.equal((await fs4.readFiles(['etc/x'])).size, 1);
      })], { tmpDir: s.dir, ...(cached ? { cache: path.join(s.dir, 'cache') } : {}) });
      // Reused scans count toward maxEntries: one entry more than the source holds is refused.
      await assert.rejects(
        pipeline(src, [step(async (draft) => {
          await draft.rootfs();
          draft.addLayer(await draft.buildLayer([fileItem('etc/x', 'a')], 'x'), { createdBy: 'test' });
          await draft.rootfs();
        })], { tmpDir: s.dir, maxEntries: entries, ...(cached ? { cache: path.join(s.dir, 'cache') } : {}) }),
        (e: Error & { code?: string }) => e.code === 'TOO_MANY_ENTRIES',
      );
    } finally {
      s.done();
    }
  });
}
