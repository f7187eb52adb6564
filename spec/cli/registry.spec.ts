/**
 * The CLI with docker:// references against a real registry: copy in and out (umoci unpacks what
 * comes back), tree, convert registry → registry with the Gramine runtime image from the registry
 * too, then verify and inspect by docker:// reference; skopeo's flags (--creds, --src-creds,
 * --dest-creds, --authfile, --tls-verify=false, --dest-cert-dir); --json lists every blob pushed,
 * mounted or skipped, and never a secret.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, expectedTree, scratch, umociUnpack } from '../helpers/images.js';
import { diskTree } from '../helpers/disk-tree.js';
import { tool } from '../helpers/tools.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { standInRuntime, testKey } from '../runtimes/gramine-helpers.js';
import { imageFromDirectory } from '../../lib/fs/from-directory.js';
import { pushImage } from '../../lib/registry/push.js';
import { parseRegistryReference } from '../../lib/registry/reference.js';
import { closeRegistryClients } from '../../lib/registry/client.js';

const registryTool = tool('docker-registry');
const htpasswdTool = tool('htpasswd');
const umoci = tool('umoci');
const skip = registryTool.skip || htpasswdTool.skip;
const PASSWORD = 'cli-pw-Kq2-never-printed';
const expected = readFileSync(expectedTree, 'utf8').replace(/\n$/, '');
const s = scratch('enclavify-cli-registry-');
let reg: TestRegistry;
let authReg: TestRegistry;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  authReg = await startRegistry({ htpasswd: `dana:${PASSWORD}` });
});
after(async () => {
  await closeRegistryClients();
  await reg?.stop();
  await authReg?.stop();
  s.done();
});

test('copy to and from a registry, tree of a docker:// reference; --json lists every blob, a second copy skips them all', { skip }, async () => {
  const dst = `docker://${reg.host}/cli/bb:1`;
  const r = await runCli(['copy', '--json', '--no-validate', `oci:${bbOci}:latest`, dst]);
  assert.equal(r.code, 0, r.stderr);
  const res = cliJson(r.stdout);
  assert.equal(res.destination, dst);
  assert.deepEqual(res.blobs.map((b: { status: string }) => b.status), ['pushed', 'pushed', 'pushed', 'pushed']);
  assert.ok(res.blobs.every((b: { digest: string; size: number; mediaType: string }) => /^sha256:/.test(b.digest) && b.size > 0 && b.mediaType));
  // Not a terminal: one line per blob on stderr.
  assert.equal(r.stderr.split('\n').filter((l) => /^enclavify: pushing (config|layer \d) sha256:[0-9a-f]{12} \(/.test(l)).length, 4, r.stderr);
  const again = await runCli(['copy', '--json', `oci:${bbOci}:latest`, dst]);
  assert.equal(again.stderr.split('\n').filter((l) => /: already in the registry$/.test(l)).length, 4, again.stderr);
  assert.deepEqual(cliJson(again.stdout).blobs.map((b: { status: string }) => b.status), ['skipped', 'skipped', 'skipped', 'skipped']);
  const other = await runCli(['copy', '--json', '-q', dst, `docker://${reg.host}/cli/other:1`]);
  assert.equal(other.stderr, '', '--quiet prints nothing');
  assert.deepEqual(cliJson(other.stdout).blobs.map((b: { status: string; from: string }) => `${b.status} ${b.from}`), Array(4).fill('mounted cli/bb'));
  const t = await runCli(['tree', `docker://${reg.host}/cli/other:1`]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout, expected);
  if (!umoci.skip) {
    const out = path.join(s.dir, 'back');
    const b = await runCli(['copy', '-q', `docker://${reg.host}/cli/bb:1`, `oci:${out}:x`]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(diskTree(umociUnpack(`${out}:x`, path.join(s.dir, 'bundle'))), expected + '\n');
  }
  const missing = await runCli(['tree', `docker://${reg.host}/cli/bb:nope`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /enclavify tree: registry .*, repository cli\/bb, manifest nope: GET manifest: 404 no such tag or manifest/);
});

test('convert registry → registry with the Gramine runtime image from the registry; verify and inspect by docker:// reference', { skip }, async () => {
  // The runtime image: a stand-in Gramine installation, pushed to the registry.
  const rtDir = standInRuntime(path.join(s.dir, 'gramine'));
  await pushImage(await imageFromDirectory({ dir: rtDir, tmpDir: s.dir }), parseRegistryReference(`${reg.host}/gramine/runtime:1.9`));
  await runCli(['copy', '-q', `oci:${bbOci}:latest`, `docker://${reg.host}/apps/bb:1`]);
  const art = path.join(s.dir, 'art');
  const to = `docker://${reg.host}/apps/bb:1-sgx`;
  const r = await runCli([
    'convert', '--json', '--from', `docker://${reg.host}/apps/bb:1`, '--to', to, '--push-image',
    '--dir', '/app/data', '--runtime-image', `docker://${reg.host}/gramine/runtime:1.9`, '--sign-key', testKey, '--output-dir', art,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const res = cliJson(r.stdout);
  assert.equal(res.destination, to);
  assert.equal(res.runtime, 'gramine');
  // Unchanged base layers are already in the repository (skipped); new ones are pushed.
  const statuses = new Set(res.blobs.map((b: { status: string }) => b.status));
  assert.ok(statuses.has('skipped') && statuses.has('pushed'), JSON.stringify(res.blobs));
  const v = await runCli(['verify', to, '--keys', res.keysFile]);
  assert.equal(v.code, 0, v.stderr + v.stdout);
  const ins = await runCli(['inspect', '--json', to]);
  assert.equal(ins.code, 0, ins.stderr);
  assert.ok(JSON.stringify(cliJson(ins.stdout)).includes(res.mrenclave[0]));
  // The keys never went to the registry.
  const keys = JSON.parse(readFileSync(res.keysFile, 'utf8'));
  const layers = await runCli(['tree', to]);
  for (const k of keys.keys) assert.ok(!layers.stdout.includes(k.key));
  // --push-image needs a registry destination.
  const bad = await runCli(['convert', '--from', `docker://${reg.host}/apps/bb:1`, '--to', `oci:${s.dir}/x:1`, '--push-image']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--push-image: the destination .* is not a registry/);
});

test('skopeo flags: --creds, --src-creds/--dest-creds, --authfile, --no-creds; a wrong password is a clear 401 without the password', { skip }, async () => {
  const dst = `docker://${authReg.host}/dana/bb:1`;
  const noFiles = { REGISTRY_AUTH_FILE: path.join(s.dir, 'none.json') };
  const saved = { ...process.env };
  Object.assign(process.env, noFiles, { DOCKER_CONFIG: path.join(s.dir, 'no-docker'), XDG_CONFIG_HOME: path.join(s.dir, 'no-xdg') });
  try {
    const ok = await runCli(['copy', '--json', '--dest-creds', `dana:${PASSWORD}`, `oci:${bbOci}:latest`, dst]);
    assert.equal(ok.code, 0, ok.stderr);
    const wrong = await runCli(['tree', '--json', '--creds', `dana:x${PASSWORD}`, dst]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /401 unauthorized/);
    const anon = await runCli(['tree', '--no-creds', dst]);
    assert.match(anon.stderr, /401 unauthorized.*--creds USER:PASS/);
    const authfile = path.join(s.dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from(`dana:${PASSWORD}`).toString('base64') } } }));
    const viaFile = await runCli(['tree', '--authfile', authfile, dst]);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    assert.equal(viaFile.stdout, expected);
    // registry → registry with credentials per side.
    const cp = await runCli(['copy', '--json', '--src-creds', `dana:${PASSWORD}`, '--dest-no-creds', dst, `docker://${reg.host}/from-auth/bb:1`]);
    assert.equal(cp.code, 0, cp.stderr);
    const contradiction = await runCli(['tree', '--creds', `dana:${PASSWORD}`, '--no-creds', dst]);
    assert.equal(contradiction.code, 2);
    for (const x of [ok, wrong, anon, viaFile, cp, contradiction]) {
      assert.ok(!(x.stdout + x.stderr).includes(PASSWORD), 'no password in any output');
    }
  } finally {
    process.env = saved;
  }
});

test('--dest-tls-verify=false and --dest-cert-dir against a registry serving HTTPS with a test CA', { skip: registryTool.skip }, async () => {
  const f = (n: string) => path.join(s.dir, n);
  const openssl = (...a: string[]) => execFileSync('openssl', a, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=cli test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.crt'), '-days', '2', '-extfile', f('ext'));
  execFileSync('mkdir', ['-p', f('certs')]);
  execFileSync('cp', [f('ca.pem'), f('certs/ca.crt')]);
  const tls = await startRegistry({ tls: { cert: f('srv.crt'), key: f('srv.key') } });
  try {
    const dst = `docker://${tls.host}/tls/bb:1`;
    const refused = await runCli(['copy', `oci:${bbOci}:latest`, dst]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /TLS certificate does not verify/);
    assert.equal((await runCli(['copy', '-q', '--dest-cert-dir', f('certs'), `oci:${bbOci}:latest`, dst])).code, 0);
    assert.equal((await runCli(['copy', '-q', '--dest-tls-verify=false', `oci:${bbOci}:latest`, `docker://${tls.host}/tls/bb:2`])).code, 0);
    const t = await runCli(['tree', '--cert-dir', f('certs'), dst]);
    assert.equal(t.stdout, expected);
    assert.equal((await runCli(['tree', '--tls-verify=false', `docker://${tls.host}/tls/bb:2`])).stdout, expected);
  } finally {
    await tls.stop();
  }
});
