/**
 * `enclavify convert` end to end with a runtime, as a CI step would run it: Gramine (a stand-in
 * installation, signed with the test key) and SCONE; the policy, the chart checked with
 * chart-render, inspect and verify on the result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, scratch } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { standInRuntime, testKey } from '../runtimes/gramine-helpers.js';
import { validateGramineAttestationPolicy, validateSconeSession } from '../../lib/policy/index.js';

const chartRender = tool('chart-render');

/** Kubernetes objects of a multi-document YAML text, keyed by kind/name. */
function objects(text: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const d of YAML.parseAllDocuments(text)) {
    const o = d.toJS() as { kind?: string; metadata?: { name?: string } } | null;
    if (o) out.set(`${o.kind}/${o.metadata?.name}`, o);
  }
  return out;
}

test('convert with the Gramine runtime: signed image, attestation policy with its MRENCLAVE, chart equal to chart-render, verify and inspect agree', { skip: chartRender.skip }, async () => {
  const s = scratch();
  try {
    const runtime = standInRuntime(path.join(s.dir, 'gramine'));
    const art = path.join(s.dir, 'art');
    const r = await runCli([
      'convert', '--json', '-q', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/out:conf`,
      '--dir', '/app/data', '--runtime-image', runtime, '--sign-key', testKey,
      '--output-dir', art, '--k8s-helm-expose', '8080', '--k8s-helm-manifests', path.join(art, 'manifests.yaml'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const res = cliJson(r.stdout);
    assert.equal(res.runtime, 'gramine');
    assert.match(res.mrenclave[0], /^[0-9a-f]{64}$/);
    // The policy names the measured enclave and the key names, never key values.
    const policy = JSON.parse(readFileSync(path.join(art, res.policy), 'utf8'));
    assert.deepEqual(validateGramineAttestationPolicy(policy), []);
    assert.deepEqual(policy.attestation.mrenclave, res.mrenclave);
    assert.equal(policy.attestation.signer.mrsigner, res.mrsigner);
    assert.deepEqual(policy.keys.map((k: { name: string }) => k.name), ['app_data']);
    const keys = JSON.parse(readFileSync(res.keysFile, 'utf8'));
    assert.equal(statSync(res.keysFile).mode & 0o777, 0o600);
    const policyText = readFileSync(path.join(art, res.policy), 'utf8');
    for (const k of keys.keys) assert.ok(!policyText.includes(k.key), 'policy holds no key');
    // inspect reads MRENCLAVE from the image's SIGSTRUCT.
    const ins = await runCli(['inspect', '--json', `oci:${s.dir}/out:conf`]);
    assert.equal(ins.code, 0, ins.stderr);
    assert.ok(JSON.stringify(cliJson(ins.stdout)).includes(res.mrenclave[0]));
    // verify: the protected files are intact.
    const v = await runCli(['verify', `oci:${s.dir}/out:conf`, '--keys', res.keysFile]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    // The chart renders, with Helm's semantics, to exactly the manifests convert wrote.
    const chartDir = path.join(art, res.chart);
    const rendered = execFileSync(chartRender.path!, [chartDir], { encoding: 'utf8' });
    assert.deepEqual(objects(rendered), objects(readFileSync(path.join(art, 'manifests.yaml'), 'utf8')));
    assert.ok([...objects(rendered).keys()].some((k) => k.startsWith('Service/')));
  } finally {
    s.done();
  }
});

test('convert with --runtime scone prints the digest and the session id; the session validates and carries the image command', async () => {
  const s = scratch();
  try {
    const art = path.join(s.dir, 'art');
    const r = await runCli([
      'convert', '-q', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/out:scone`, '--runtime', 'scone',
      '--binary', '/bin/busybox', '--namespace', 'my-ns', '--name', 'bb-session', '--service-name', 'web',
      '--mrenclave', 'a'.repeat(64), '--output-dir', art, '--k8s-helm-workload-type', 'statefulset',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [digest, session] = r.stdout.split('\n');
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(session, 'my-ns/bb-session');
    const doc = YAML.parse(readFileSync(path.join(art, 'policy', 'session.yaml'), 'utf8'));
    assert.deepEqual(validateSconeSession(doc), []);
    assert.equal(doc.name, 'my-ns/bb-session');
    assert.equal(doc.services[0].pwd, '/app');
    assert.equal(doc.services[0].environment.APP_MODE, 'production');
    assert.ok(existsSync(path.join(art, 'chart')));
    const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${s.dir}/out:scone`], { encoding: 'utf8' })).config;
    assert.ok(cfg.Env.includes('SCONE_CONFIG_ID=my-ns/bb-session/web'));
  } finally {
    s.done();
  }
});

test('runtime options without a runtime, and SCONE with --dir, are usage errors (exit 2)', async () => {
  let r = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', 'oci:/tmp/never:x', '--k8s-helm-workload-type', 'job']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /need a runtime/);
  r = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', 'oci:/tmp/never:x', '--runtime', 'scone', '--dir', '/app/data']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /proprietary/i);
  assert.ok(!existsSync('/tmp/never'));
});

test('convert --dry-run computes everything and writes nothing', async () => {
  const s = scratch();
  try {
    const r = await runCli(['convert', '--json', '--dry-run', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/out:x`, '--dir', '/app/data', '--output-dir', path.join(s.dir, 'art')]);
    assert.equal(r.code, 0, r.stderr);
    const res = cliJson(r.stdout);
    assert.equal(res.dryRun, true);
    assert.ok(res.artifacts.includes('keys.json'));
    assert.deepEqual(readdirSync(s.dir), []);
  } finally {
    s.done();
  }
});
