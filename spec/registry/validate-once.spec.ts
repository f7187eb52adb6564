/**
 * A validating copy (the default) reads each blob once: from a registry, one GET per layer blob
 * (counted in the registry's access log), the layer check running on the same bytes as the
 * write. An unsafe image is still refused with nothing committed: no destination when the copy
 * created it, no new blob (nor temporary file) in a layout that existed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { copyImage, openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import { closeRegistryClients } from '../../lib/registry/client.js';
import { bbOci, expectedTree, scratch } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tool } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

const registryTool = tool('docker-registry');
const skip = registryTool.skip;
const s = scratch('enclavify-validate-once-');
let reg: TestRegistry;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
});
after(async () => {
  await closeRegistryClients();
  await reg?.stop();
  s.done();
});

const blobGets = (repo: string, digests: string[]) => digests.reduce((n, d) => n + reg.count('GET', new RegExp(`/v2/${repo}/blobs/${d}`)), 0);
const blobsIn = (dir: string) => (existsSync(path.join(dir, 'blobs', 'sha256')) ? readdirSync(path.join(dir, 'blobs', 'sha256')).sort() : []);

test('a validating copy registry → OCI layout downloads each layer blob once, and the result is the image', { skip }, async () => {
  await copyImage(`oci:${bbOci}:latest`, `docker://${reg.host}/once/bb:1`, { validate: false });
  const digests = (await (await openImage(`oci:${bbOci}:latest`)).manifest()).layers.map((l) => l.digest);
  const before = blobGets('once/bb', digests);
  const out = path.join(s.dir, 'out');
  const events: string[] = [];
  await copyImage(`docker://${reg.host}/once/bb:1`, `oci:${out}:x`, { onProgress: (e) => events.push(e.phase) });
  assert.equal(blobGets('once/bb', digests) - before, digests.length, 'one GET per layer blob');
  assert.ok(events.includes('validate'));
  // Same layers, verified on read; the tree is the fixture's.
  assert.deepEqual((await (await openImage(`oci:${out}:x`)).manifest()).layers.map((l) => l.digest), digests);
  const t = await runCli(['tree', `oci:${out}:x`]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout, readFileSync(expectedTree, 'utf8').replace(/\n$/, ''));
  assert.ok(!blobsIn(out).some((n) => n.includes('.tmp-')));
  // Into a docker archive, also one pass.
  const before2 = blobGets('once/bb', digests);
  await copyImage(`docker://${reg.host}/once/bb:1`, `docker-archive:${path.join(s.dir, 'bb.tar')}:bb:1`);
  assert.equal(blobGets('once/bb', digests) - before2, digests.length);
  // A second copy into the same layout skips the blobs it has; they are still checked (read from the source).
  const before3 = blobGets('once/bb', digests);
  await copyImage(`docker://${reg.host}/once/bb:1`, `oci:${out}:y`);
  assert.equal(blobGets('once/bb', digests) - before3, digests.length);
});

test('an unsafe image from a registry is refused by a validating copy; nothing is committed, each blob was read once', { skip }, async () => {
  // bb's lower layers plus one writing through a symlink it adds (our tar writer does not judge paths).
  const link: FsEntry = { path: 'app/escape', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkname: '/etc' };
  const data = Buffer.from('root::0:0::/:/bin/sh\n');
  const passwd: FsEntry = { path: 'app/escape/passwd', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: data.length };
  const raw: Transform = {
    name: 'raw',
    async apply(d) {
      d.addLayer(await d.buildLayer([{ entry: link }, { entry: passwd, content: data }], 'raw layer'), { createdBy: 'test' });
    },
  };
  const built = await pipeline(await openImage(`oci:${bbOci}:latest`), [raw], { tmpDir: s.dir });
  await writeImage(built.image, `docker://${reg.host}/once/evil:1`);
  await built.dispose();
  const src = await openImage(`docker://${reg.host}/once/evil:1`);
  const digests = (await src.manifest()).layers.map((l) => l.digest);
  const fresh = path.join(s.dir, 'evil-out');
  const before = blobGets('once/evil', digests);
  await assert.rejects(copyImage(`docker://${reg.host}/once/evil:1`, `oci:${fresh}:x`), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'LAYER_WRITE_THROUGH_SYMLINK');
    assert.match(e.message, /app\/escape\/passwd/);
    return true;
  });
  assert.equal(blobGets('once/evil', digests) - before, digests.length, 'one GET per layer blob');
  assert.ok(!existsSync(fresh), 'a layout the copy created is removed');
  // An existing layout: no new blob lands in it, no temporary is left.
  const existing = path.join(s.dir, 'existing');
  await copyImage(`oci:${bbOci}:latest`, `oci:${existing}:bb`);
  const had = blobsIn(existing);
  await assert.rejects(copyImage(`docker://${reg.host}/once/evil:1`, `oci:${existing}:evil`), /symlink/);
  assert.deepEqual(blobsIn(existing), had);
  assert.doesNotMatch(readFileSync(path.join(existing, 'index.json'), 'utf8'), /"evil"/);
  // A docker archive is not written either.
  await assert.rejects(copyImage(`docker://${reg.host}/once/evil:1`, `docker-archive:${path.join(s.dir, 'evil.tar')}`), /symlink/);
  assert.ok(!existsSync(path.join(s.dir, 'evil.tar')));
  assert.ok(!readdirSync(s.dir).some((n) => n.startsWith('evil.tar.tmp-')));
});
