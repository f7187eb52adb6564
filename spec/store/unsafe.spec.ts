/**
 * Malicious layers: an entry escaping the root with `..`, and one written through a symlink.
 * copy and tree refuse them naming the layer and the entry, and copy leaves no destination.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { buildLayer } from '../../lib/oci/layer.js';
import path from 'node:path';
import { openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import { runCli } from '../helpers/cli.js';
import { bbOci, scratch } from '../helpers/images.js';

const file = (p: string, data: string): { entry: FsEntry; content: Buffer } => ({
  entry: { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: Buffer.byteLength(data) },
  content: Buffer.from(data),
});

/** A transform that appends a layer with the given entries (our tar writer does not judge paths). */
const addRaw = (items: Array<{ entry: FsEntry; content?: Buffer }>): Transform => ({
  name: 'raw',
  async apply(d) {
    d.addLayer(await d.buildLayer(items, 'raw layer'), { createdBy: 'test' });
  },
});

async function makeImage(dir: string, items: Array<{ entry: FsEntry; content?: Buffer }>): Promise<string> {
  const out = await pipeline(await openImage(`oci:${bbOci}:latest`), [addRaw(items)], { tmpDir: dir });
  await writeImage(out.image, `oci:${dir}/evil:x`);
  await out.dispose();
  return `oci:${dir}/evil:x`;
}

/** A layer tar written by Python's tarfile (our own writer refuses such names). */
function pythonTar(file: string, name: string): void {
  execFileSync('python3', ['-c', `import tarfile, io
t = tarfile.open(${JSON.stringify(file)}, 'w', format=tarfile.PAX_FORMAT)
i = tarfile.TarInfo(${JSON.stringify(name)}); i.size = 1
t.addfile(i, io.BytesIO(b'x')); t.close()`]);
}

test('an entry with a ".." component is refused by copy and tree, naming layer and entry', async () => {
  const s = scratch();
  try {
    pythonTar(path.join(s.dir, 'evil.tar'), 'app/../../etc/evil');
    const evil: Transform = {
      name: 'evil',
      async apply(d) {
        const layer = await buildLayer({ tar: createReadStream(path.join(s.dir, 'evil.tar')), tmpDir: s.dir, name: 'evil', compression: 'gzip' });
        d.addLayer(layer, { createdBy: 'test' });
      },
    };
    const out = await pipeline(await openImage(`oci:${bbOci}:latest`), [evil], { tmpDir: s.dir });
    await writeImage(out.image, `oci:${s.dir}/evil:x`);
    const ref = `oci:${s.dir}/evil:x`;
    for (const args of [['copy', ref, `oci:${s.dir}/out:y`], ['tree', ref]]) {
      const r = await runCli(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /layer 3 \(/);
      assert.match(r.stderr, /app\/\.\.\/\.\.\/etc\/evil/);
    }
    assert.ok(!existsSync(path.join(s.dir, 'out')));
  } finally {
    s.done();
  }
});

test('an entry written through a symlink of a lower layer is refused', async () => {
  const s = scratch();
  try {
    // bb-fixture has app/static/secret-link -> ../data/secret.txt; add a symlinked dir and write through it.
    const link: FsEntry = { path: 'app/escape', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkname: '/etc' };
    const ref = await makeImage(s.dir, [{ entry: link }, file('app/escape/passwd', 'root::0:0::/:/bin/sh\n')]);
    const r = await runCli(['copy', ref, `oci:${s.dir}/out:y`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /symlink/);
    assert.match(r.stderr, /app\/escape\/passwd/);
    assert.ok(!existsSync(path.join(s.dir, 'out')));
    // Without validation, copy passes bytes through (blob digests are still checked).
    const r2 = await runCli(['copy', '--no-validate', ref, `oci:${s.dir}/out:y`]);
    assert.equal(r2.code, 0, r2.stderr);
  } finally {
    s.done();
  }
});
