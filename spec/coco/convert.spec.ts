/**
 * `convert --runtime coco` end to end: every layer encrypted for the attestation-agent provider
 * under one KEK (kid derived from --to), no runtime injected, the KEK in the keys file and the
 * Trustee bundle (0600), the chart rendered by chart-render; the guest's path (unwrap with the KEK,
 * decrypt) gives back the source's layers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, expectedTree, scratch } from '../helpers/images.js';
import { chartRender, chartRenderTool, parseManifests, workloadOf, get } from '../chart/render-helpers.js';

let work: ReturnType<typeof scratch>;
before(() => { work = scratch('enclavify-coco-'); });
after(() => work.done());

const manifestOf = (dir: string) => {
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  return JSON.parse(readFileSync(path.join(dir, 'blobs/sha256', idx.manifests[0].digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }> };
};

test('convert --runtime coco --tee tdx: encrypted layers, keys file, Trustee bundle and chart', { skip: chartRenderTool.skip }, async () => {
  const out = path.join(work.dir, 'out');
  const img = path.join(work.dir, 'img');
  const r = await runCli(['convert', '--json', '--from', `oci:${bbOci}:latest`, '--to', `oci:${img}:web-1`, '--runtime', 'coco', '--tee', 'tdx', '--kbs', 'https://kbs.example:8080', '--output-dir', out]);
  assert.equal(r.code, 0, r.stderr);
  const m = manifestOf(img);
  const src = manifestOf(bbOci);
  assert.equal(m.layers.length, src.layers.length + 1, 'the source layers and the protection manifest\'s');
  const kid = 'kbs:///default/image-kek/img-web-1';
  for (const l of m.layers) {
    assert.match(l.mediaType, /\+encrypted$/);
    const packet = JSON.parse(Buffer.from(l.annotations!['org.opencontainers.image.enc.keys.provider.attestation-agent'], 'base64').toString()) as { kid: string; wrap_type: string };
    assert.equal(packet.kid, kid);
    assert.equal(packet.wrap_type, 'A256GCM');
  }
  const keys = JSON.parse(readFileSync(path.join(out, 'keys.json'), 'utf8')) as { coco: { kid: string; kek: string } };
  assert.equal(statSync(path.join(out, 'keys.json')).mode & 0o777, 0o600);
  assert.equal(keys.coco.kid, kid);
  const kekFile = path.join(out, 'trustee/kbs/default/image-kek/img-web-1');
  assert.equal(statSync(kekFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(kekFile).toString('hex'), keys.coco.kek);
  assert.ok(!r.stdout.includes(keys.coco.kek) && !r.stderr.includes(keys.coco.kek), 'the KEK is never printed');
  for (const f of ['resource-policy.rego', 'security-policy.json', 'set-resources.sh', 'initdata.toml', 'initdata.digest', 'initdata.annotation']) assert.ok(existsSync(path.join(out, 'trustee', f)), f);
  // The guest's path: the KEK opens every layer, and the tree is the source's.
  const t = await runCli(['tree', '--decryption-key', kekFile, `oci:${img}:web-1`]);
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.trimEnd().split('\n').filter((l) => !l.startsWith('.enclavify'));
  assert.equal(lines.join('\n'), readFileSync(expectedTree, 'utf8').trimEnd(), 'no runtime was injected: the tree is the source\'s (plus the protection manifest)');
  const chartDir = path.join(out, 'chart', readdir(path.join(out, 'chart'))[0]);
  const rr = chartRender(chartDir);
  assert.equal(rr.status, 0, rr.stderr);
  const w = workloadOf(parseManifests(rr.stdout));
  assert.equal(get(w, 'spec.template.spec.runtimeClassName'), 'kata-qemu-tdx');
  assert.equal(get(w, 'spec.template.metadata.annotations')['io.katacontainers.config.hypervisor.cc_init_data'], readFileSync(path.join(out, 'trustee/initdata.annotation'), 'utf8').trim());
  assert.equal(get(w, 'spec.template.spec.containers.0.imagePullPolicy'), 'Always');
  const j = cliJson(r.stdout) as { runtime: string; report: { coco: { tee: string; kid: string } } };
  assert.equal(j.runtime, 'coco');
  assert.equal(j.report.coco.kid, kid);
});

test('convert --runtime coco refuses --dir, a missing --tee or --kbs, SGX options, and a non-kbs kid', async () => {
  const base = ['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${path.join(work.dir, 'x')}:1`, '--output-dir', path.join(work.dir, 'o2'), '--runtime', 'coco'];
  for (const [extra, msg] of [
    [['--tee', 'tdx', '--kbs', 'http://k:1', '--dir', '/app'], /--dir is refused/],
    [['--kbs', 'http://k:1'], /needs --tee/],
    [['--tee', 'tdx'], /needs --kbs/],
    [['--tee', 'tdx', '--kbs', 'http://k:1', '--heap', '1G'], /not with --runtime coco/],
    [['--tee', 'tdx', '--kbs', 'http://k:1', '--coco-kid', '/default/image-kek/x'], /kbs:/],
    [['--tee', 'tdx', '--kbs', 'http://k:1', '--measurement', 'ab'.repeat(32)], /--measurement .*96 hex digits/],
  ] as const) {
    const r = await runCli([...base, ...extra]);
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  for (const extra of [['--tee', 'tdx'], ['--measurement', 'ab'.repeat(48)]]) {
    const r = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${path.join(work.dir, 'y')}:1`, '--output-dir', path.join(work.dir, 'o3'), ...extra]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /only with --runtime coco/);
  }
});

test('convert --runtime coco --measurement: the resource policy requires the measurement and the image\'s own init data', async () => {
  const out = path.join(work.dir, 'out-m');
  const mr = 'C0'.repeat(48);
  const r = await runCli(['convert', '--json', '--from', `oci:${bbOci}:latest`, '--to', `oci:${path.join(work.dir, 'img-m')}:1`, '--runtime', 'coco', '--tee', 'snp', '--kbs', 'https://kbs.example:8080', '--measurement', mr, '--measurement', '0d'.repeat(48), '--output-dir', out]);
  assert.equal(r.code, 0, r.stderr);
  const rego = readFileSync(path.join(out, 'trustee/resource-policy.rego'), 'utf8');
  assert.ok(rego.includes(`measurements := {"${mr.toLowerCase()}", "${'0d'.repeat(48)}"}`), rego);
  assert.match(rego, /^\tevidence\.snp\.measurement in measurements$/m);
  // SNP HOSTDATA holds the init data's sha256 digest (the default for snp), hex.
  const digest = readFileSync(path.join(out, 'trustee/initdata.digest'), 'utf8').trim();
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(rego.includes(`"${digest.slice(7)}"`), 'the init-data digest is required');
  assert.match(rego, /^\tevidence\.init_data in init_data$/m);
  const j = JSON.parse(r.stdout) as { report: { coco: { measurements: string[] } } };
  assert.deepEqual(j.report.coco.measurements, [mr.toLowerCase(), '0d'.repeat(48)]);
});

import { readdirSync as readdir } from 'node:fs';

test('verify of a CoCo image: structure without keys; with --trustee every layer opens and the protection manifest is checked; a removed KEK is a finding', async () => {
  const out = path.join(work.dir, 'vout');
  const img = path.join(work.dir, 'vimg');
  const c = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${img}:v`, '--runtime', 'coco', '--tee', 'snp', '--kbs', 'http://10.0.0.1:8080', '--output-dir', out]);
  assert.equal(c.code, 0, c.stderr);
  const bare = await runCli(['verify', '--expect-encrypted', `oci:${img}:v`]);
  assert.equal(bare.code, 0, bare.stderr + bare.stdout);
  assert.match(bare.stdout, /4 of 4 layers encrypted; protection manifest not checked/);
  const full = await runCli(['verify', '--json', '--trustee', path.join(out, 'trustee'), '--expect-encrypted', `oci:${img}:v`]);
  assert.equal(full.code, 0, full.stderr + full.stdout);
  const j = cliJson(full.stdout) as { ok: boolean; ocicrypt: { layers: Array<{ decrypted: boolean }> } };
  assert.ok(j.ok && j.ocicrypt.layers.every((l) => l.decrypted));
  rmSync(path.join(out, 'trustee/kbs/default/image-kek/vimg-v'));
  const missing = await runCli(['verify', '--trustee', path.join(out, 'trustee'), `oci:${img}:v`]);
  assert.equal(missing.code, 3, missing.stdout);
  assert.match(missing.stdout, /trustee bundle: BUNDLE_MISMATCH: .*no KEK for kbs:\/\/\/default\/image-kek\/vimg-v/);
});

import { rmSync } from 'node:fs';
