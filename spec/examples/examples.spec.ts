/** The examples run as users run them (a child process) and produce what their READMEs promise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { openImage } from '../../lib/index.js';
import { RootFs } from '../../lib/fs/merged.js';
import { standInRuntime } from '../runtimes/gramine-helpers.js';
import { bbOci } from '../helpers/images.js';
import { formatProblems, validateGramineAttestationPolicy, validateSconeSession } from '../../lib/policy/index.js';
import { assertSameObjects, chartRenderTool, parseManifests, renderOk } from '../chart/render-helpers.js';
import { scratch } from '../helpers/images.js';
import { repoRoot } from '../helpers/tools.js';

function run(script: string, out: string, env: Record<string, string> = {}): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--out', out], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `${script} failed:\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

const read = (f: string) => readFileSync(f, 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function checkSession(file: string): Record<string, any> {
  const session = parse(read(file));
  const problems = validateSconeSession(session);
  assert.deepEqual(problems, [], `${file}:\n${formatProblems(problems)}`);
  return session;
}

/** The chart under `dir/chart/<name>` renders (chart-render) to the manifests file beside it. */
function checkChart(dir: string, name: string): void {
  assert.ok(existsSync(path.join(dir, 'chart', name, 'Chart.yaml')), `${name} chart`);
  if (chartRenderTool.skip) return;
  assertSameObjects(renderOk(path.join(dir, 'chart', name)), parseManifests(read(path.join(dir, 'manifests.yaml'))), name);
}

test('examples/hello: builds the native image and writes the converted images, keys, policies and charts', async () => {
  const s = scratch();
  try {
    const { stdout } = run('examples/hello/build-and-convert.ts', s.dir);
    const native = await openImage(`oci:${path.join(s.dir, 'hello-native')}:latest`);
    assert.deepEqual((await native.config()).config!.Entrypoint, ['/app/hello.sh']);
    assert.match(stdout, new RegExp(`native image ${await native.digest()}`));

    // SCONE track
    const sconeDir = path.join(s.dir, 'hello', 'scone');
    const sconeImage = await openImage(`oci:${path.join(sconeDir, 'image')}:scone`);
    assert.ok((await sconeImage.config()).config!.Env!.includes('SCONE_CONFIG_ID=hello-example/hello/hello'));
    const session = checkSession(path.join(sconeDir, 'policy', 'session.yaml'));
    assert.equal(session.name, 'hello-example/hello');
    // the #!/bin/sh script runs through its interpreter; the enclave binary is /bin/sh
    assert.equal(session.services[0].command, '/bin/sh /app/hello.sh');
    assert.equal(session.services[0].pwd, '/app');
    assert.equal(session.services[0].environment.GREETING, 'Hello');
    assert.match(stdout, /scone session hello-example\/hello/);
    checkChart(sconeDir, 'sconify-hello');

    // Gramine track: /app/data encrypted (when the protection transforms are exported)
    const gramineDir = path.join(s.dir, 'hello', 'gramine');
    const policy = JSON.parse(read(path.join(gramineDir, 'policy', 'attestation.json')));
    assert.deepEqual(validateGramineAttestationPolicy(policy), []);
    if (existsSync(path.join(gramineDir, 'keys.json'))) {
      assert.equal(statSync(path.join(gramineDir, 'keys.json')).mode & 0o777, 0o600);
      assert.deepEqual(policy.keys.map((k: { name: string }) => k.name), ['app_data']);
      // the policy names the key; its value stays in keys.json
      const keys = JSON.parse(read(path.join(gramineDir, 'keys.json'))) as { keys: Array<{ key: string }> };
      for (const k of keys.keys) assert.ok(!read(path.join(gramineDir, 'policy', 'attestation.json')).includes(k.key));
    }
    await openImage(`oci:${path.join(gramineDir, 'image')}:gramine`);
    checkChart(gramineDir, 'enclavify-hello');
  } finally {
    s.done();
  }
});

test('examples/hello: the native and SCONE images are reproducible', () => {
  const a = scratch(), b = scratch();
  try {
    const x = run('examples/hello/build-and-convert.ts', a.dir).stdout;
    const y = run('examples/hello/build-and-convert.ts', b.dir).stdout;
    const digests = (t: string) => [/native image (sha256:\w+)/.exec(t)![1], /scone image (sha256:\w+)/.exec(t)![1]];
    assert.deepEqual(digests(x), digests(y));
  } finally {
    a.done();
    b.done();
  }
});

test('examples/multi-party: three sessions whose exports and imports name each other', () => {
  const s = scratch();
  try {
    run('examples/multi-party/generate.ts', s.dir);
    const dir = path.join(s.dir, 'multi-party');
    const workflow = checkSession(path.join(dir, 'workflow', 'session.yaml'));
    const a = checkSession(path.join(dir, 'party-a', 'policy', 'session.yaml'));
    const b = checkSession(path.join(dir, 'party-b', 'policy', 'session.yaml'));
    assert.equal(workflow.name, 'workflow-owner/workflow');
    assert.equal(workflow.services, undefined, 'the workflow session only holds volumes');
    const exportsOf = (v: string) => workflow.volumes.find((x: { name: string }) => x.name === v).export.map((e: { session: string }) => e.session);
    assert.deepEqual(exportsOf('dataset'), [a.name, b.name]);
    assert.deepEqual(exportsOf('model'), [b.name]);
    const imports = (sess: Record<string, any>) => sess.volumes.filter((v: { import?: unknown }) => v.import).map((v: { import: { session: string; volume: string } }) => `${v.import.session}:${v.import.volume}`);
    assert.deepEqual(imports(a), ['workflow-owner/workflow:dataset']);
    assert.deepEqual(imports(b), ['workflow-owner/workflow:dataset', 'workflow-owner/workflow:model']);
    // Party A's own volume stays its own
    assert.deepEqual(a.volumes.find((v: { name: string }) => v.name === 'raw'), { name: 'raw' });
    // each party owns its session (CAS CREATOR), distinct namespaces
    for (const sess of [workflow, a, b]) assert.deepEqual(sess.access_policy, { read: ['CREATOR'], update: ['CREATOR'] });
    assert.notEqual(a.name.split('/')[0], b.name.split('/')[0]);
    checkChart(path.join(dir, 'party-a'), 'sconify-preprocess');
    checkChart(path.join(dir, 'party-b'), 'sconify-train');
  } finally {
    s.done();
  }
});

test('examples/hello with a Gramine installation and HELLO_SHELL: the Gramine track gets the runtime', async () => {
  const s = scratch();
  try {
    // a static busybox as the shell (from bb-fixture), and a stand-in Gramine installation
    const bb = await openImage(`oci:${bbOci}:latest`);
    const fs = await RootFs.scan((await bb.layers()).map((l) => ({ name: l.name, open: () => l.uncompressed() })));
    const shell = path.join(s.dir, 'busybox');
    writeFileSync(shell, (await fs.readFiles(['bin/busybox'])).get('bin/busybox')!, { mode: 0o755 });
    const runtime = path.join(s.dir, 'gramine-rt');
    mkdirSync(runtime);
    standInRuntime(runtime);
    const { stderr } = run('examples/hello/build-and-convert.ts', path.join(s.dir, 'out'), { GRAMINE_RUNTIME_DIR: runtime, HELLO_SHELL: shell });
    assert.doesNotMatch(stderr, /runtime not injected/);
    const gramineDir = path.join(s.dir, 'out', 'hello', 'gramine');
    const c = (await (await openImage(`oci:${path.join(gramineDir, 'image')}:gramine`)).config()).config!;
    assert.match(c.Entrypoint!.join(' '), /gramine/);
    const policy = JSON.parse(read(path.join(gramineDir, 'policy', 'attestation.json')));
    assert.deepEqual(validateGramineAttestationPolicy(policy), []);
    assert.deepEqual(policy.keys, [{ name: 'app_data', mounts: ['/app/data'] }]);
    // without a shell the runtime is not injected, and the example says why
    const again = run('examples/hello/build-and-convert.ts', path.join(s.dir, 'out2'), { GRAMINE_RUNTIME_DIR: runtime });
    assert.match(again.stderr, /no \/bin\/sh/);
  } finally {
    s.done();
  }
});
