/**
 * Gramine: argv as written (a relative script Entrypoint stays relative, resolved against the
 * working directory at run time as the kernel does) and loader.log_level from the CLI. The argv is
 * checked against a native run of the same Entrypoint in a chroot of the unpacked fixture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import type { TomlTable } from 'smol-toml';
import { openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { gramine } from '../../lib/runtimes/gramine/index.js';
import { bbOci, scratch, umociUnpack } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';
import { readImageFiles, standInRuntime, toml } from './gramine-helpers.js';

const BASE = '/gramine/app/entrypoint';
const setConfig = (c: { Entrypoint?: string[]; Cmd?: string[] }): Transform => ({ name: 'setConfig', apply: (d) => void Object.assign((d.config.config ??= {}), c) });

async function manifestOf(ref: string): Promise<TomlTable> {
  const files = await readImageFiles(await openImage(ref), [`${BASE}.manifest`]);
  return toml(new TextDecoder().decode(files.get(`${BASE}.manifest`)));
}

test('gramine: a relative script Entrypoint stays relative in loader.argv ($0 as natively), fs.start_dir is the WorkingDir; logLevel sets loader.log_level', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const out = await pipeline(await openImage(`oci:${bbOci}:latest`), [setConfig({ Entrypoint: ['./server.sh'], Cmd: ['a b'] }), injectRuntime(gramine({ runtimeDir: rt, logLevel: 'debug' }))], { tmpDir: s.dir });
    const ref = `oci:${s.dir}/out:rel`;
    try {
      await writeImage(out.image, ref);
    } finally {
      await out.dispose();
    }
    const doc = await manifestOf(ref);
    const loader = doc.loader as TomlTable;
    assert.equal((doc.libos as TomlTable).entrypoint, '/bin/busybox');
    assert.deepEqual(loader.argv, ['/bin/sh', './server.sh', 'a b']);
    assert.equal((doc.fs as TomlTable).start_dir, '/app');
    assert.equal(loader.log_level, 'debug');
  } finally {
    s.done();
  }
});

const umoci = tool('umoci');
const chrootBin = ['/usr/sbin/chroot', '/sbin/chroot', '/usr/bin/chroot'].find((p) => existsSync(p)) ?? 'chroot';
const chrootSkip = umoci.skip || (process.getuid?.() !== 0 ? 'needs root (chroot)' : false);

test('gramine argv of a relative script gives the script the same $0 as a native run (chroot)', { skip: chrootSkip }, async () => {
  const s = scratch();
  try {
    const root = umociUnpack(`${bbOci}:latest`, path.join(s.dir, 'bundle'));
    writeFileSync(path.join(root, 'app/rel.sh'), '#!/bin/sh\necho "0=$0 args=$* pwd=$(pwd)"\n');
    chmodSync(path.join(root, 'app/rel.sh'), 0o755);
    const run = (argv: string[]) => spawnSync(chrootBin, [root, '/bin/busybox', 'sh', '-c', 'cd /app && exec "$@"', 'sh', ...argv], { encoding: 'utf8', env: { PATH: '/bin' } });
    const native = run(['./rel.sh', 'x']);
    assert.equal(native.status, 0, native.stderr);
    assert.equal(native.stdout, '0=./rel.sh args=x pwd=/app\n');
    // what the enclave gets: libos.entrypoint with loader.argv, from fs.start_dir
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const { imageFromDirectory } = await import('../../lib/index.js');
    const image = await imageFromDirectory({ dir: root, config: { Entrypoint: ['./rel.sh'], Cmd: ['x'], WorkingDir: '/app' } });
    const out = await pipeline(image, [injectRuntime(gramine({ runtimeDir: rt }))], { tmpDir: s.dir });
    try {
      const info = out.report['injectRuntime(gramine)'] as { enclave: { entrypoint: string; argv: string[]; startDir: string } };
      assert.deepEqual(info.enclave.argv, ['/bin/sh', './rel.sh', 'x']);
      // exec entrypoint with argv (argv[0] as given): busybox dispatches on it like the kernel's exec
      const r = spawnSync(chrootBin, [root, '/bin/busybox', 'sh', '-c', `cd ${info.enclave.startDir} && exec -a "$0" ${info.enclave.entrypoint} "$@"`, ...info.enclave.argv], { encoding: 'utf8', env: { PATH: '/bin' } });
      assert.equal(r.stdout, native.stdout, r.stderr);
    } finally {
      await out.dispose();
    }
  } finally {
    s.done();
  }
});

test('convert --gramine-log-level sets loader.log_level; other values are usage errors', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const ref = `oci:${s.dir}/out:log`;
    const r = await runCli(['convert', '-q', '--from', `oci:${bbOci}:latest`, '--to', ref, '--runtime', 'gramine', '--runtime-image', rt, '--gramine-log-level', 'trace', '--output-dir', path.join(s.dir, 'art')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(((await manifestOf(ref)).loader as TomlTable).log_level, 'trace');
    const bad = await runCli(['convert', '-q', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/never:x`, '--runtime', 'gramine', '--runtime-image', rt, '--gramine-log-level', 'loud']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--gramine-log-level=loud: expected one of error, warning, debug, trace, all/);
    const scone = await runCli(['convert', '-q', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/never:x`, '--runtime', 'scone', '--gramine-log-level', 'debug']);
    assert.equal(scone.code, 2);
    assert.ok(!existsSync(path.join(s.dir, 'never')));
  } finally {
    s.done();
  }
});
