/** The realistic python image: merged view against umoci, and startup-file discovery of python3. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { openImage } from '../../lib/index.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import { findStartupFiles } from '../../lib/protect/deps.js';
import { runCli } from '../helpers/cli.js';
import { diskTree } from '../helpers/disk-tree.js';
import { scratch, umociUnpack } from '../helpers/images.js';
import { pythonImageDir, pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';
import { tool } from '../helpers/tools.js';

test('enclavify tree of the python image equals what umoci unpacks', { skip: pythonImageSkip || tool('umoci').skip }, async () => {
  const s = scratch();
  try {
    const r = await runCli(['tree', pythonImageRef]);
    assert.equal(r.code, 0, r.stderr);
    const rootfs = umociUnpack(`${pythonImageDir}:py`, path.join(s.dir, 'bundle'));
    const disk = diskTree(rootfs);
    assert.ok(disk.split('\n').length > 5000);
    assert.equal(r.stdout + '\n', disk);
  } finally {
    s.done();
  }
});

test('python3 (a bare Entrypoint) resolves through PATH; its interpreter and every DT_NEEDED library are found', { skip: pythonImageSkip }, async () => {
  const img = await openImage(pythonImageRef);
  const cfg = (await img.config()).config!;
  assert.deepEqual(cfg.Entrypoint, ['python3']);
  const fs = await layersRootFs(await img.layers());
  const found = await findStartupFiles({ lookup: fs, command: 'python3', env: cfg.Env, workingDir: cfg.WorkingDir });
  assert.equal(found.program, 'usr/bin/python3.11');
  assert.equal(found.interpreter, 'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  const sonames = found.libraries.map((l) => l.soname).sort();
  for (const need of ['libc.so.6', 'libm.so.6', 'libz.so.1', 'libexpat.so.1']) assert.ok(sonames.includes(need), `${need} in ${sonames}`);
  assert.deepEqual(found.missing, []);
  // Cross-check with the ELF's own DT_NEEDED as readelf (binutils) reports it, where available.
  try {
    const s = scratch();
    try {
      const files = await fs.readFiles(['usr/bin/python3.11']);
      const f = path.join(s.dir, 'python3.11');
      (await import('node:fs')).writeFileSync(f, files.get('usr/bin/python3.11')!);
      const needed = [...execFileSync('readelf', ['-dW', f], { encoding: 'utf8' }).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g)].map((m) => m[1]);
      for (const n of needed) assert.ok(sonames.includes(n), `readelf NEEDED ${n}`);
    } finally {
      s.done();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
});
