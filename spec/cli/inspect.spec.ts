/**
 * `enclavify inspect`: runtime, manifest, MRENCLAVE/MRSIGNER (recomputed from the image's bytes),
 * protected regions; a tampered signed image is reported (exit 3); development keys are named,
 * never printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { openImage, pipeline, writeImage, type PipelineResult, type Transform } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { PROTECTION, RUNTIME, type Protection, type RuntimeInfo } from '../../lib/transforms/state.js';
import { gramine } from '../../lib/runtimes/gramine/index.js';
import type { ImageInspection } from '../../lib/runtimes/gramine/inspect.js';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, scratch } from '../helpers/images.js';
import { fileItem, standInRuntime, testKey } from '../runtimes/gramine-helpers.js';

const BASE = '/gramine/app/entrypoint';

async function convert(dir: string, tag: string, steps: Transform[]): Promise<{ ref: string; state: PipelineResult['state'] }> {
  const out = await pipeline(await openImage(`oci:${bbOci}:latest`), steps, { tmpDir: dir });
  const ref = `oci:${dir}/img:${tag}`;
  await writeImage(out.image, ref);
  await out.dispose();
  return { ref, state: out.state };
}

test('inspect a native image: runtime native, no manifest', async () => {
  const r = await runCli(['inspect', `oci:${bbOci}:latest`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const i = cliJson(r.stdout) as ImageInspection;
  assert.equal(i.runtime, 'native');
  assert.deepEqual(i.entrypoint, ['/app/server.sh']);
  assert.equal(i.gramine, undefined);
});

test('inspect a signed Gramine image with an encrypted region: MRENCLAVE/MRSIGNER from the SIGSTRUCT, checked against the image; regions from the protection manifest', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const c = await convert(s.dir, 'signed', [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt, signKey: readFileSync(testKey) }))]);
    const info = c.state.get(RUNTIME) as RuntimeInfo;
    const region = (c.state.get(PROTECTION) as Protection).keys[0];
    const r = await runCli(['inspect', c.ref, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const i = cliJson(r.stdout) as ImageInspection;
    assert.equal(i.runtime, 'gramine');
    assert.equal(i.gramine!.manifestPath, `${BASE}.manifest`);
    assert.equal(i.gramine!.manifestSgxPath, `${BASE}.manifest.sgx`);
    assert.equal(i.gramine!.libosEntrypoint, '/bin/busybox');
    assert.deepEqual(i.gramine!.argv, ['/bin/sh', '/app/server.sh']);
    assert.deepEqual(i.gramine!.mounts, [{ path: '/app/data', type: 'encrypted', keyName: region.name }, { path: '/tmp', type: 'tmpfs' }]);
    assert.equal(i.gramine!.sigstruct!.mrenclave, info.mrenclave![0]);
    assert.equal(i.gramine!.sigstruct!.mrsigner, info.mrsigner);
    assert.equal(i.gramine!.sigstruct!.signatureValid, true);
    assert.equal(i.gramine!.sigstruct!.mrenclaveMatchesImage, true);
    assert.deepEqual(i.gramine!.problems, []);
    assert.equal(i.protection!.path, '/.enclavify/protection.json');
    assert.deepEqual(i.protection!.regions.map((x) => ({ name: x.name, path: x.path })), [{ name: region.name, path: '/app/data' }]);
    assert.ok(i.protection!.files!.encrypted >= 3);
    const text = await runCli(['inspect', c.ref]);
    assert.equal(text.code, 0);
    for (const line of [`MRENCLAVE:    ${info.mrenclave![0]}`, `MRSIGNER:     ${info.mrsigner}`, 'Signature:    valid; MRENCLAVE matches', `Region:       /app/data (key ${region.name}`, 'Runtime:      gramine']) {
      assert.ok(text.stdout.includes(line), `missing ${line} in\n${text.stdout}`);
    }
    assert.ok(!text.stdout.includes(region.keyHex));
  } finally {
    s.done();
  }
});

test('inspect reports a .manifest.sgx that no longer matches the .sig (exit 3) and names development keys without printing them', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    // A later layer replaces the signed manifest: the SIGSTRUCT's MRENCLAVE no longer matches.
    const tamper: Transform = {
      name: 'tamper',
      async apply(d) {
        const layer = await d.buildLayer([fileItem(`${BASE.slice(1)}.manifest.sgx`, '[libos]\nentrypoint = "/bin/sh"\n')], 'tamper');
        d.addLayer(layer, { createdBy: 'tamper' });
      },
    };
    const c = await convert(s.dir, 'tampered', [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt, signKey: readFileSync(testKey), insecureDevKeys: true })), tamper]);
    const key = (c.state.get(PROTECTION) as Protection).keys[0];
    const r = await runCli(['inspect', c.ref]);
    assert.equal(r.code, 3);
    assert.match(r.stdout, /MRENCLAVE does NOT match the image/);
    assert.match(r.stdout, /Problem: .*measures/);
    const dev = await runCli(['inspect', (await convert(s.dir, 'dev', [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt, insecureDevKeys: true }))])).ref, '--json']);
    assert.equal(dev.code, 0);
    const i = cliJson(dev.stdout) as ImageInspection;
    assert.deepEqual(i.gramine!.insecureKeyNames, [key.name]);
    assert.ok(!dev.stdout.includes(key.keyHex), 'the key value is never printed');
    const text = await runCli(['inspect', `oci:${s.dir}/img:dev`]);
    assert.match(text.stdout, /INSECURE development keys/);
    assert.ok(!text.stdout.includes(key.keyHex));
  } finally {
    s.done();
  }
});
