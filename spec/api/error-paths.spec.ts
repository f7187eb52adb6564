/**
 * Every exported function's errors carry a documented code: this walks the error paths a caller
 * can reach (bad references, missing layouts, bad platforms, bad rules, chart, policy and SCONE
 * options, keys files, pipeline misuse...) and checks each rejection is an EnclavifyError whose
 * code is in ERROR_CODES, and the one expected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as api from '../../lib/index.js';
import { EnclavifyError, ERROR_CODES, type ErrorCode } from '../../lib/index.js';
import { bbOci, scratch } from '../helpers/images.js';

const bb = () => api.openImage(`oci:${bbOci}:latest`);

/** Runs `fn` and checks it fails with an EnclavifyError of `code`. */
async function expectCode(code: ErrorCode, fn: () => unknown, what: string): Promise<void> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown !== undefined, `${what}: expected ${code}, nothing was thrown`);
  assert.ok(thrown instanceof EnclavifyError, `${what}: expected an EnclavifyError, got ${String(thrown)}`);
  assert.ok(Object.hasOwn(ERROR_CODES, thrown.code), `${what}: code ${thrown.code} is not in ERROR_CODES`);
  assert.equal(thrown.code, code, `${what}: ${thrown.message}`);
  assert.ok(thrown.message.length > 0, what);
}

const failing = (name: string, e: unknown): api.Transform => ({ name, apply() { throw e; } });

test('references, layouts and platforms', async () => {
  const s = scratch();
  try {
    await expectCode('BAD_REFERENCE', () => api.openImage('nonsense'), 'a reference without transport');
    await expectCode('BAD_REFERENCE', () => api.parseRef('oci:'), 'an oci: reference without directory');
    await expectCode('REGISTRY_CONNECT', () => api.openImage('docker://127.0.0.1:1/x:1'), 'a registry nobody listens at');
    await expectCode('NOT_FOUND', () => api.openImage(`oci:${s.dir}/missing:latest`), 'a missing layout');
    await expectCode('NOT_FOUND', () => api.openImage(`oci:${bbOci}:no-such-tag`), 'a missing tag');
    await expectCode('NOT_FOUND', () => api.openImage(`docker-archive:${s.dir}/missing.tar`), 'a missing archive');
    await expectCode('BAD_PLATFORM', () => api.parsePlatform('linux'), 'a platform without architecture');
    mkdirSync(path.join(s.dir, 'bad'));
    writeFileSync(path.join(s.dir, 'bad/oci-layout'), '{"imageLayoutVersion": "2.0.0"}');
    await expectCode('BAD_LAYOUT', () => api.openImage(`oci:${s.dir}/bad`), 'an unsupported layout version');
    writeFileSync(path.join(s.dir, 'bad/oci-layout'), '{');
    await expectCode('BAD_JSON', () => api.openImage(`oci:${s.dir}/bad`), 'a malformed oci-layout');
    const img = await bb();
    await expectCode('BAD_REFERENCE', () => api.writeImage(img, `oci:${s.dir}/o@sha256:${'0'.repeat(64)}`), 'a destination with a digest');
    writeFileSync(path.join(s.dir, 'exists.tar'), 'x');
    await expectCode('EXISTS', () => api.writeImage(img, `docker-archive:${s.dir}/exists.tar`), 'an existing docker archive');
    await expectCode('NOT_FOUND', () => api.copyImage(`oci:${s.dir}/nowhere`, `oci:${s.dir}/o:x`), 'copying from a missing layout');
  } finally {
    s.done();
  }
});

test('pipeline misuse and failing transforms', async () => {
  const img = await bb();
  await expectCode('BAD_TRANSFORM', () => api.pipeline(img, [{ notATransform: true } as never, api.encryptFS()]), 'a non-transform');
  await expectCode('TRANSFORM_FAILED', () => api.pipeline(img, [failing('mine', new Error('refused'))]), 'a custom transform throwing a plain Error');
  await expectCode('TRANSFORM_FAILED', () => api.pipeline(img, [failing('mine', 'a string')]), 'a custom transform throwing a string');
  await expectCode('BAD_LAYER_INDEX', () => api.pipeline(img, [{ name: 'x', apply: (d) => d.replaceLayer(99, img as never, 'c') }]), 'replaceLayer out of range');
  await expectCode('PIPELINE_ORDER', () => api.pipeline(img, [api.encryptFS()]), 'encryptFS without fileClassify');
  await expectCode('BAD_TRANSFORM', () => api.pipeline(img, api.encryptFS() as never), 'a transform where the array goes');
  await expectCode('BAD_OPTIONS', () => api.pipeline(img, [], api.encryptFS() as never), 'a transform where the options go');
  const key = api.stateKey<{ n: number }>('spec.missing');
  await expectCode('PIPELINE_ORDER', () => api.pipeline(img, [{ name: 'needy', apply: (d) => void d.state.require(key, 'needy', 'a producer') }]), 'a required state key nobody set');
  const out = await api.pipeline(img, [{ name: 'x', apply: async (d) => d.addLayer(await d.buildLayer([], 'empty'), { createdBy: 'x' }) }]);
  await out.dispose();
  const s = scratch();
  try {
    await expectCode('DISPOSED', () => api.writeImage(out.image, `oci:${s.dir}/never:x`), 'writing a disposed result');
    assert.ok(!existsSync(path.join(s.dir, 'never')), 'nothing was created');
  } finally {
    s.done();
  }
  await expectCode('ABORTED', () => api.pipeline(img, [api.fileClassify()], { signal: AbortSignal.abort() }), 'a cancelled pipeline');
});

test('classification rules', async () => {
  const img = await bb();
  await expectCode('RULE_BAD_PATH', () => api.pipeline(img, [api.fileClassify({ dirs: ['relative/dir'] })]), 'a relative --dir');
  await expectCode('RULE_CONFLICT', () => api.pipeline(img, [api.fileClassify({ dirs: ['/etc'], plain: ['/etc'] })]), 'conflicting rules');
  await expectCode('RULE_NOT_A_DIRECTORY', () => api.pipeline(img, [api.fileClassify({ dirs: ['/bin/busybox'] })]), 'a --dir on a file');
});

test('chart, policy and SCONE options', async () => {
  const img = await bb();
  const withScone = (t: api.Transform) => api.pipeline(img, [api.injectRuntime(api.scone({ namespace: 'acme', name: 'bb', binary: '/bin/sh' })), t]);
  await expectCode('BAD_OPTIONS', () => withScone(api.emitChart({} as never)), 'emitChart without image');
  await expectCode('BAD_CHART', () => withScone(api.emitChart({ image: 'x:1', workloadType: 'pod' as 'job' })), 'a bad workload type');
  await expectCode('BAD_CHART', () => withScone(api.emitChart({ image: 'x:1', volumes: ['novolume'] })), 'a bad --k8s-helm-volume');
  await expectCode('BAD_CHART', () => withScone(api.emitChart({ image: 'x:1', expose: [70000] })), 'a port out of range');
  await expectCode('BAD_POLICY', () => withScone(api.emitPolicy({ runtime: 'scone', scone: { volumes: ['bad'] }, mrenclaves: ['0'.repeat(64)] })), 'a bad --volume');
  await expectCode('BAD_OPTIONS', () => api.pipeline(img, [api.emitPolicy()]), 'emitPolicy without a runtime');
  await expectCode('SCONE_BAD_OPTIONS', () => api.scone({ namespace: '', name: 'x' }), 'an empty SCONE namespace');
  await expectCode('SCONE_BAD_OPTIONS', () => api.scone({ namespace: 'a', name: 'x', heap: 'lots' }), 'a bad SCONE heap');
  await expectCode('SCONE_BAD_OPTIONS', () => api.scone({ namespace: 'a', name: 'x', mrenclaves: ['beef'] }), 'a short MRENCLAVE');
  await expectCode('SCONE_BAD_OPTIONS', () => api.scone({ namespace: 'a', name: 'x', binary: 'relative' }), 'a relative SCONE binary');
  await expectCode('GRAMINE_BAD_OPTIONS', () => api.gramine({} as never), 'gramine() without runtime');
  await expectCode('GRAMINE_NOT_FOUND', () => api.pipeline(img, [api.signGramineImage({ signKey: 'not a key' })]), 'signing an image without a Gramine manifest');
  await expectCode('GRAMINE_NO_RUNTIME', () => api.pipeline(img, [api.injectRuntime(api.gramine({ runtimeDir: '/nonexistent-runtime' }))]), 'a missing Gramine runtime directory');
});

test('keys files, protection manifests, verify, directories', async () => {
  const s = scratch();
  try {
    await expectCode('KEYS_FILE_INVALID', () => api.parseKeysFile('{'), 'a keys file that is not JSON');
    await expectCode('NOT_FOUND', () => api.readKeysFile(path.join(s.dir, 'no-keys.json')), 'a missing keys file');
    writeFileSync(path.join(s.dir, 'keys.json'), '[1]');
    await expectCode('KEYS_FILE_INVALID', () => api.readKeysFile(path.join(s.dir, 'keys.json')), 'a keys file that is not an object');
    await expectCode('KEYS_FILE_INVALID', () => api.parseKeysFile('{"kind": "other"}'), 'a keys file of another kind');
    await expectCode('MANIFEST_INVALID', () => api.parseManifest(new TextEncoder().encode('x')), 'a protection manifest that is not JSON');
    const img = await bb();
    await expectCode('KEYS_FILE_INVALID', () => api.verify(img, { keys: 'garbage' }), 'verify with a bad keys file');
    await expectCode('NOT_FOUND', () => api.imageFromDirectory({ dir: path.join(s.dir, 'missing'), tmpDir: s.dir }), 'a missing directory');
    writeFileSync(path.join(s.dir, 'file'), 'x');
    await expectCode('NOT_A_DIRECTORY', () => api.imageFromDirectory({ dir: path.join(s.dir, 'file'), tmpDir: s.dir }), 'a file as directory');
    await expectCode('BAD_PATH', () => api.imageFromDirectory({ dir: s.dir, prefix: '/../x', tmpDir: s.dir }), 'a prefix with ..');
  } finally {
    s.done();
  }
});
