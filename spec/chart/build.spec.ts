/** buildChart without Helm: files, names, values.yaml, README, option checks. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import {
  appVersionFromImage,
  buildChart,
  isDns1123Label,
  parseEncryptedVolumeFlag,
  parseHelmVolumeFlag,
  type ChartOptions,
} from '../../lib/chart/index.js';
import { parseManifests } from './render-helpers.js';

const base: ChartOptions = { serviceName: 'web', image: 'registry.example.com/web:1.0', runtime: 'gramine' };

test('chart files, Chart.yaml and names', () => {
  const g = buildChart({ ...base, expose: [80], encryptedVolumes: [{ name: 'data', path: '/data' }] });
  assert.equal(g.name, 'enclavify-web');
  assert.deepEqual([...g.files.keys()].sort(), ['.helmignore', 'Chart.yaml', 'README.md', 'templates/NOTES.txt', 'templates/_helpers.tpl', 'templates/pvc.yaml', 'templates/service.yaml', 'templates/workload.yaml', 'values.yaml']);
  const chartYaml = parse(g.files.get('Chart.yaml')!);
  assert.equal(chartYaml.apiVersion, 'v2');
  assert.equal(chartYaml.name, 'enclavify-web');
  assert.equal(chartYaml.version, '0.1.0');
  assert.equal(chartYaml.appVersion, '1.0', 'appVersion stays a string');
  assert.equal(buildChart({ ...base, runtime: 'scone' }).name, 'sconify-web', 'sconify users find the name they know');
  assert.equal(buildChart({ ...base, namePrefix: 'acme' }).name, 'acme-web');
  assert.equal(buildChart({ ...base, serviceName: 'My_Service.v2' }).name, 'enclavify-my-service-v2');
  const long = buildChart({ ...base, serviceName: 'x'.repeat(80) });
  assert.ok(isDns1123Label(long.name) && long.name.length === 63);
  for (const chart of [g, long]) for (const m of chart.manifests) assert.ok(isDns1123Label(m.metadata.name), m.metadata.name);
});

test('appVersion comes from the image tag or digest', () => {
  assert.equal(appVersionFromImage('reg:5000/a/b:v1.2.3'), 'v1.2.3');
  assert.equal(appVersionFromImage('reg:5000/a/b'), 'latest');
  assert.equal(appVersionFromImage('b@sha256:' + 'ab'.repeat(32)), 'abababababab');
  assert.equal(appVersionFromImage('b:1.0@sha256:' + 'ab'.repeat(32)), '1.0');
});

test('values.yaml reads back (YAML 1.1, as Helm reads it) to the values, with comments', () => {
  const c = buildChart({ ...base, env: { YES: 'yes', OCT: '0755', NUM: '12', EMPTY: '' }, expose: [8080], volumes: [{ name: 'tmp', path: '/tmp' }] });
  const text = c.files.get('values.yaml')!;
  assert.deepEqual(parse(text, { version: '1.1' }), c.values);
  assert.deepEqual(parse(text, { version: '1.2' }), c.values);
  assert.match(text, /# Confidential image to run \(required\)\.\nimage: /);
  assert.match(text, /^ {2}# Mount path in the container \(required\)\.$/m);
});

test('README lists every value with its default', () => {
  const c = buildChart({ ...base, runtime: 'scone', expose: [443], encryptedVolumes: [{ name: 'V1', path: '/V1' }], set: ['custom.key=x|y'] });
  const readme = c.files.get('README.md')!;
  for (const key of ['image', 'workloadType', 'useSGXDevPlugin', 'scone.las', 'scone.configID', 'service.enabled', 'volumev1.persistence.existingClaim', 'volumev1.persistence.storageClass', 'resources', 'custom.key']) {
    assert.match(readme, new RegExp(`^\\| \`${key.replace(/\./g, '\\.')}\` \\|`, 'm'), key);
  }
  assert.match(readme, /\| `custom\.key` \| `"x\\\|y"` \|/, 'pipes are escaped');
  assert.match(readme, /helm install/);
});

test('manifestsYaml is the manifests as YAML', () => {
  const c = buildChart({ ...base, workloadType: 'job', expose: [80], env: { FLAG: 'on' } });
  assert.deepEqual(parseManifests(c.manifestsYaml), c.manifests);
  assert.match(c.manifestsYaml, /# Source: enclavify-web\/templates\/workload\.yaml/);
  assert.match(c.manifestsYaml, /value: "on"/, 'YAML 1.1 booleans are quoted for Kubernetes');
});

test('volume flags', () => {
  assert.deepEqual(parseHelmVolumeFlag('cache:/var/cache'), { name: 'cache', path: '/var/cache' });
  assert.deepEqual(parseEncryptedVolumeFlag('data:/data'), { name: 'data', path: '/data' });
  assert.deepEqual(parseEncryptedVolumeFlag('in:/in:producer-session:'), { name: 'in', path: '/in', fromSession: 'producer-session' });
  assert.deepEqual(parseEncryptedVolumeFlag('out:/out::consumer-1:consumer-2'), { name: 'out', path: '/out', toSessions: ['consumer-1', 'consumer-2'] });
  assert.throws(() => parseHelmVolumeFlag('cache'), /--k8s-helm-volume=cache: want NAME:PATH/);
  assert.throws(() => parseHelmVolumeFlag('cache:relative'), /not absolute/);
  assert.throws(() => parseHelmVolumeFlag('a:/a:b'), /want NAME:PATH/);
});

test('invalid options are rejected with what is wrong', () => {
  const cases: [Partial<ChartOptions>, RegExp][] = [
    [{ image: '' }, /image is required/],
    [{ serviceName: '' }, /serviceName is required/],
    [{ serviceName: '___' }, /no letters or digits/],
    [{ workloadType: 'cronjob' as never }, /--k8s-helm-workload-type must be one of/],
    [{ sgxDevice: 'nvidia' as never }, /SGX device mode must be one of/],
    [{ runtime: 'occlum' as never }, /runtime must be/],
    [{ expose: [0] }, /--k8s-helm-expose: 0 is not a TCP port/],
    [{ expose: [70000] }, /not a TCP port/],
    [{ expose: [80, 80] }, /listed twice/],
    [{ volumes: [{ name: 'a', path: '/a' }], encryptedVolumes: [{ name: 'A', path: '/b' }] }, /another volume already uses the name a/],
    [{ volumes: [{ name: 'sgx-enclave', path: '/x' }] }, /reserved/],
    [{ volumes: [{ name: 'v', path: 'rel' }] }, /not absolute/],
    [{ chartName: 'Bad_Name' }, /not a DNS-1123 label/],
    [{ chartVersion: '1.0' }, /not a semantic version/],
    [{ appVersion: 'sha256:abc' }, /not a valid label value/],
    [{ set: ['workloadType=cron'] }, /workloadType must be one of .* \(got "cron"\)/],
    [{ set: ['image=null'] }, /image is required/],
    [{ set: ['broken'] }, /--set "broken"/],
  ];
  for (const [over, message] of cases) assert.throws(() => buildChart({ ...base, ...over }), message, JSON.stringify(over));
});

test('SCONE defaults match sconify_image', () => {
  const c = buildChart({ ...base, runtime: 'scone' });
  assert.equal(c.values.useSGXDevPlugin, 'scone');
  assert.deepEqual(c.values.scone, { cas: 'scone-cas.cf', las: '', configID: '', allowDlOpen: 1, heap: '1G', stack: '1M', fork: 0, log: 'ERROR', printVersion: false });
  assert.equal(c.values.sgxEpcMem, 8);
  const g = buildChart(base);
  assert.equal(g.values.useSGXDevPlugin, 'intel');
  assert.equal(g.values.sgxProvision, true);
});
