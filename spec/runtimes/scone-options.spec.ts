/** The sconify_image option table and its mapping onto runtime, policy and chart transforms. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseArgs, UsageError } from '../../lib/cli/args.js';
import { defaultSessionName, imageNameFor, runtimePolicyChartTransforms, sconifyOptions } from '../../lib/cli/sconify-options.js';
import { openImage, pipeline } from '../../lib/index.js';
import { CHART, type ChartInfo } from '../../lib/transforms/emit-chart.js';
import { POLICY, type PolicyInfo } from '../../lib/transforms/emit-policy.js';
import { bbOci, scratch } from '../helpers/images.js';
import { fixtures } from '../helpers/tools.js';

const MR = 'fe'.repeat(32);
// the convert command also defines --dir (protection options); the table here is merged into it
const spec = { ...sconifyOptions, dir: { kind: 'list' as const, help: 'encrypt' } };
const ctx = { to: 'oci:/tmp/out/bb-conf:1.0', outputDir: '/tmp/out' };

test('every sconify_image option of the brief is in the table, with help text', () => {
  const names = ['binary', 'name', 'namespace', 'service-name', 'command', 'env', 'volume', 'cas', 'las', 'secrets', 'injectedfiles', 'heap', 'stack', 'dlopen', 'fork', 'log',
    'allow-debug-mode', 'allow-tcb-vulnerabilities', 'dry-run', 'disable-copy-envvars', 'k8s-helm-workload-type', 'k8s-helm-expose', 'k8s-helm-volume', 'k8s-helm-set',
    'k8s-helm-output-dir', 'k8s-helm-manifests', 'sgx-device-mode', 'runtime', 'mrenclave', 'sigstruct'];
  for (const n of names) {
    assert.ok(sconifyOptions[n], `--${n} missing`);
    assert.ok(sconifyOptions[n].help.length > 10, `--${n} help`);
  }
});

test('image and session names derived from --to as sconify_image does', () => {
  assert.equal(imageNameFor('oci:/tmp/out/bb-conf:1.0'), 'bb-conf:1.0');
  assert.equal(imageNameFor('oci:out/Hello_World'), 'hello_world:latest');
  assert.equal(imageNameFor('docker://registry.example:5000/team/app:2'), 'registry.example:5000/team/app:2');
  assert.equal(defaultSessionName('registry.example:5000/team/app:2.1'), 'registry-example-5000-team-app-2-1');
});

test('--runtime scone: scone runtime, session and chart from the sconify options', async () => {
  const s = scratch();
  try {
    const secrets = path.join(s.dir, 'secrets.yaml');
    writeFileSync(secrets, 'secrets:\n  - name: db_password\n    kind: ascii\n    size: 16\n');
    const args = parseArgs([
      '--runtime=scone', '--namespace', 'acme', '--name=bb', '--service-name=web', '--binary=/bin/sh', '--heap=512M', '--dlopen=2',
      '--cas=cas.acme', '--env=DB_PASSWORD=$$SCONE::db_password$$', '--secrets', secrets, '--volume=data:/data', `--mrenclave=${MR}`,
      '--allow-debug-mode', '--k8s-helm-workload-type=statefulset', '--k8s-helm-expose=8080', '--k8s-helm-manifests=/tmp/out/manifests.yaml',
    ], spec);
    const steps = runtimePolicyChartTransforms(args, ctx);
    assert.deepEqual(steps.map((t) => t.name), ['injectRuntime(scone)', 'emitPolicy', 'emitChart']);
    const out = await pipeline(await openImage(`oci:${bbOci}:latest`), steps);
    try {
      const env = (await out.image.config()).config!.Env!;
      assert.ok(env.includes('SCONE_CONFIG_ID=acme/bb/web'));
      assert.ok(env.includes('SCONE_HEAP=512M'));
      assert.ok(env.includes('SCONE_ALLOW_DLOPEN=2'));
      assert.ok(env.includes('SCONE_CAS_ADDR=cas.acme'));
      const policy = out.state.get(POLICY) as PolicyInfo;
      assert.equal(policy.sessionId, 'acme/bb');
      const session = parse(String(out.artifacts.get('policy/session.yaml')!.data));
      assert.equal(session.services[0].environment.DB_PASSWORD, '$$SCONE::db_password$$');
      assert.equal(session.secrets[0].name, 'db_password');
      assert.deepEqual(session.security.attestation.tolerate, ['debug-mode']);
      const chart = out.state.get(CHART) as ChartInfo;
      assert.equal(chart.dir, 'chart/sconify-web');
      assert.equal(chart.manifestsPath, 'manifests.yaml');
      assert.match(String(out.artifacts.get('chart/sconify-web/values.yaml')!.data), /image: bb-conf:1.0/);
    } finally {
      await out.dispose();
    }
  } finally {
    s.done();
  }
});

test('--runtime gramine: policy and chart only; SCONE-only options are refused, not ignored', async () => {
  const sig = path.join(fixtures, 'sgx-sigstruct', 'gramine-echo.sig');
  const steps = runtimePolicyChartTransforms(parseArgs([`--sigstruct=${sig}`, '--k8s-helm-output-dir=/tmp/out/k8s'], spec), ctx);
  assert.deepEqual(steps.map((t) => t.name), ['emitPolicy', 'emitChart']);
  const out = await pipeline(await openImage(`oci:${bbOci}:latest`), steps);
  try {
    const policy = JSON.parse(String(out.artifacts.get('policy/attestation.json')!.data));
    assert.equal(policy.name, 'bb-conf:1.0');
    assert.ok(out.artifacts.has('k8s/enclavify-bb-conf/Chart.yaml'));
  } finally {
    await out.dispose();
  }
  assert.throws(() => runtimePolicyChartTransforms(parseArgs(['--heap=1G', '--cas=x'], spec), ctx), (e: Error) => e instanceof UsageError && /--cas, --heap: only with --runtime scone/.test(e.message));
  assert.throws(() => runtimePolicyChartTransforms(parseArgs(['--volume=o:/o::other'], spec), ctx), /SCONE CAS feature/);
});

test('option mapping errors are usage errors that name the option', () => {
  const bad = (argv: string[], re: RegExp) => assert.throws(() => runtimePolicyChartTransforms(parseArgs(argv, spec), ctx), (e: Error) => e instanceof UsageError && re.test(e.message));
  bad(['--runtime=sgx'], /--runtime=sgx/);
  bad(['--runtime=scone', '--dir=/app/data'], /proprietary/);
  bad(['--runtime=scone', '--dlopen=3'], /--dlopen=3/);
  bad(['--runtime=scone', '--fork=yes'], /--fork=yes/);
  bad(['--runtime=scone', '--heap=lots'], /heap/);
  bad(['--mrenclave=abc'], /--mrenclave=abc/);
  bad(['--k8s-helm-expose=http'], /--k8s-helm-expose=http/);
  bad(['--k8s-helm-workload-type=pod'], /deployment, statefulset, daemonset, job/);
  bad(['--sgx-device-mode=magic'], /--sgx-device-mode=magic/);
  bad(['--k8s-helm-output-dir=/elsewhere'], /inside --output-dir/);
  bad(['--runtime=scone', '--binary-image-path=/x'], /need --binary-image/);
  assert.throws(() => runtimePolicyChartTransforms(parseArgs(['--runtime=scone', '--secrets=/nonexistent.yaml'], spec), ctx), /--secrets \/nonexistent.yaml/);
});

test('--binary with Gramine: accepted when it names the program the image runs, refused otherwise', async () => {
  const { fileClassify } = await import('../../lib/transforms/file-classify.js');
  const steps = (binary: string) => [fileClassify({}), ...runtimePolicyChartTransforms(parseArgs([`--binary=${binary}`, `--mrenclave=${MR}`], spec), ctx)];
  const ok = await pipeline(await openImage(`oci:${bbOci}:latest`), steps('/app/server.sh'));
  await ok.dispose();
  await assert.rejects(pipeline(await openImage(`oci:${bbOci}:latest`), steps('/usr/bin/python3')), (e: Error) => e instanceof UsageError && /enclave runs the image's own program/.test(e.message));
});
