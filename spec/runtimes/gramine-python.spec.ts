/**
 * The realistic Debian python image (../shared/tools/make-python-image; skipped when absent),
 * converted with /app/data encrypted: the trusted list against what the kernel reaches in a
 * chroot of the unpacked result (thousands of paths through merged-/usr and library symlinks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TomlTable } from 'smol-toml';
import { openImage, pipeline, writeImage } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { gramine } from '../../lib/runtimes/gramine/index.js';
import { scratch, umociUnpack } from '../helpers/images.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';
import { tool } from '../helpers/tools.js';
import { GLIBC, kernelReachable, readImageFiles, standInRuntime, toml, trustedMap } from './gramine-helpers.js';

test('python image: python3 through PATH and symlinks, every library under /lib and /usr/lib, the list equals the kernel\'s view', { skip: pythonImageSkip || tool('umoci').skip }, async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const out = await pipeline(await openImage(pythonImageRef), [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt, insecureDevKeys: true }))], { tmpDir: s.dir });
    const ref = `oci:${s.dir}/out:py`;
    await writeImage(out.image, ref);
    await out.dispose();
    const doc = toml((await readImageFiles(await openImage(ref), ['gramine/app/entrypoint.manifest'])).get('gramine/app/entrypoint.manifest')!);
    const loader = doc.loader as TomlTable;
    assert.equal((doc.libos as TomlTable).entrypoint, '/usr/bin/python3.11');
    assert.deepEqual(loader.argv, ['python3', '/app/app.py']);
    assert.ok(String((loader.env as TomlTable).LD_LIBRARY_PATH).startsWith(`/${GLIBC}:`));
    const t = trustedMap(doc);
    assert.equal(t.get('file:/usr/bin/python3'), t.get('file:/usr/bin/python3.11'));
    assert.equal(t.get('file:/bin/python3'), t.get('file:/usr/bin/python3.11'));
    assert.equal(t.get('file:/lib/x86_64-linux-gnu/libc.so.6'), t.get('file:/usr/lib/x86_64-linux-gnu/libc.so.6'));
    assert.equal(t.get('file:/lib64/ld-linux-x86-64.so.2'), t.get('file:/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'));
    assert.ok(t.size > 1.5 * new Set(t.values()).size, `${t.size} entries`);
    const rootfs = umociUnpack(ref.slice(4), path.join(s.dir, 'bundle'));
    const kernel = kernelReachable(rootfs, ['/dev', '/proc', '/sys', '/boot', '/tmp', '/var', '/run', '/gramine/app', '/app/data', '/.enclavify', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/etc/mtab']);
    if (!kernel) {
      assert.ok(process.getuid?.() !== 0 || !existsSync('/usr/bin/python3'), 'the chroot walk failed although root and python3 are there');
      return;
    }
    const hostSide = (p: string) => /^(\/usr)?\/lib\/x86_64-linux-gnu\/gramine\/(?!runtime\/glibc\/)/.test(p) || /^(\/usr)?\/bin\/gramine-/.test(p);
    const expected = new Map([...kernel].filter(([p]) => !hostSide(p)).map(([p, h]) => [`file:${p}`, h]));
    const missing = [...expected.keys()].filter((k) => !t.has(k));
    const extra = [...t.keys()].filter((k) => !expected.has(k));
    assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] });
    for (const [k, h] of expected) assert.equal(t.get(k), h, k);
  } finally {
    s.done();
  }
});
