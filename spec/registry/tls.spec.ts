/**
 * TLS against the real registry serving HTTPS with a CA generated here: refused without the CA,
 * never downgraded to plain HTTP; accepted with a cert dir (as given, or the default
 * containers-certs.d location), or with verification off; plain HTTP only for a loopback name or
 * with verification off; client certificates from the cert dir (a TLS front requiring them).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openImage } from '../../lib/store/index.js';
import { pushImage } from '../../lib/registry/push.js';
import { openRegistryImage } from '../../lib/registry/pull.js';
import { parseRegistryReference } from '../../lib/registry/reference.js';
import { closeRegistryClients, type RegistryOptions } from '../../lib/registry/client.js';
import { loadTlsMaterial } from '../../lib/registry/certs.js';
import { bbOci, scratch } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';

const registryTool = tool('docker-registry');
const skopeo = tool('skopeo');
const s = scratch('enclavify-tls-');
let tlsReg: TestRegistry;
let plainReg: TestRegistry;
let front: Proxy;
const f = (n: string) => path.join(s.dir, n);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
const noAuth: RegistryOptions = { credentials: null };

before(async () => {
  if (registryTool.skip) return;
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=enclavify test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.crt'), '-days', '2', '-extfile', f('ext'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', '/CN=enclavify test client');
  openssl('x509', '-req', '-in', f('client.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('client.cert'), '-days', '2');
  mkdirSync(f('certs'));
  copyFileSync(f('ca.crt'), f('certs/ca.crt'));
  tlsReg = await startRegistry({ tls: { cert: f('srv.crt'), key: f('srv.key') } });
  plainReg = await startRegistry();
  front = await startProxy({ target: plainReg.host, tls: { key: readFileSync(f('srv.key'), 'utf8'), cert: readFileSync(f('srv.crt'), 'utf8'), ca: readFileSync(f('ca.crt'), 'utf8'), requireClientCert: true } });
});
after(async () => {
  await closeRegistryClients();
  await front?.close();
  await tlsReg?.stop();
  await plainReg?.stop();
  s.done();
});

test('HTTPS with a private CA: refused without it (no plain-HTTP fallback), accepted with --cert-dir, the default certs.d directory, or verification off', { skip: registryTool.skip }, async () => {
  const img = await openImage(`oci:${bbOci}:latest`);
  const ref = parseRegistryReference(`${tlsReg.host}/tls/bb:1`);
  await assert.rejects(pushImage(img, ref, { registry: noAuth }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_TLS');
    assert.match(e.message, /the TLS certificate does not verify \(\w+\); give the CA with --cert-dir DIR/);
    return true;
  });
  const res = await pushImage(img, ref, { registry: { ...noAuth, certDir: f('certs') } });
  assert.equal(res.blobs.length, 4);
  assert.equal(await (await openRegistryImage(ref, { registry: { ...noAuth, certDir: f('certs') } })).digest(), res.digest);
  // The default directories: ROOT/HOST:PORT/*.crt (containers-certs.d).
  mkdirSync(f(`roots/${tlsReg.host}`), { recursive: true });
  copyFileSync(f('ca.crt'), f(`roots/${tlsReg.host}/ca.crt`));
  assert.equal(await (await openRegistryImage(ref, { registry: { ...noAuth, certRoots: [f('roots')] } })).digest(), res.digest);
  assert.equal(await (await openRegistryImage(ref, { registry: { ...noAuth, tlsVerify: false } })).digest(), res.digest);
  // Nothing was ever sent in plain HTTP: every refused attempt was a TLS handshake.
  assert.ok(!/Client sent an HTTP request to an HTTPS server/.test(tlsReg.log()));
  if (!skopeo.skip) {
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--cert-dir', f('certs'), `docker://${ref.registry}/tls/bb:1`]);
    assert.equal(JSON.parse(raw.toString()).layers.length, 3);
  }
});

test('plain HTTP: used for a loopback name, refused for any other name unless verification is off', { skip: registryTool.skip }, async (t) => {
  const img = await openImage(`oci:${bbOci}:latest`);
  await pushImage(img, parseRegistryReference(`${plainReg.host}/plain/bb:1`), { registry: noAuth });
  await pushImage(img, parseRegistryReference(`localhost:${plainReg.port}/plain/bb:2`), { registry: noAuth });
  // The machine's own name, when it resolves to loopback, is not a loopback *name*.
  const name = os.hostname();
  const addr = await lookup(name).catch(() => undefined);
  if (!addr || !/^127\./.test(addr.address) || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(name) || name === 'localhost') {
    t.diagnostic(`host name ${name} does not resolve to loopback; the non-loopback case is not exercised`);
    return;
  }
  const other = parseRegistryReference(`${name.toLowerCase()}:${plainReg.port}/plain/bb:3`);
  await assert.rejects(pushImage(img, other, { registry: noAuth }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_TLS');
    assert.match(e.message, /speaks no TLS; plain HTTP is used only for a loopback host or with --tls-verify=false/);
    return true;
  });
  await pushImage(img, other, { registry: { ...noAuth, tlsVerify: false } });
});

test('client certificates: a *.cert/*.key pair of the cert dir is presented; a pair with a missing half is refused', { skip: registryTool.skip }, async () => {
  const img = await openImage(`oci:${bbOci}:latest`);
  const ref = parseRegistryReference(`${front.host}/client/bb:1`);
  await assert.rejects(pushImage(img, ref, { registry: { ...noAuth, certDir: f('certs'), retry: { attempts: 2 } } }), /requires a client certificate, put a \*\.cert\/\*\.key pair in the cert dir/);
  mkdirSync(f('client-certs'));
  copyFileSync(f('ca.crt'), f('client-certs/ca.crt'));
  copyFileSync(f('client.cert'), f('client-certs/client.cert'));
  copyFileSync(f('client.key'), f('client-certs/client.key'));
  const res = await pushImage(img, ref, { registry: { ...noAuth, certDir: f('client-certs') } });
  assert.equal(await (await openRegistryImage(ref, { registry: { ...noAuth, certDir: f('client-certs') } })).digest(), res.digest);
  mkdirSync(f('half'));
  copyFileSync(f('client.cert'), f('half/client.cert'));
  await assert.rejects(loadTlsMaterial(front.host, f('half')), /client certificate client\.cert has no key client\.key/);
  await assert.rejects(loadTlsMaterial(front.host, f('missing-dir')), /cert dir .*missing-dir: cannot be read \(ENOENT\)/);
});

// The launcher (bin/enclavify.cjs, run as an installed command) starts Node without
// NODE_EXTRA_CA_CERTS and lib/registry adds its CAs to the TLS connections itself: they must be
// trusted exactly as Node would, also beside a cert dir's CAs (an explicit `ca` replaces Node's
// store), and child processes see the variable as it was given.
const binFile = path.resolve(import.meta.dirname, '../../bin/enclavify.cjs');
const built = existsSync(path.resolve(import.meta.dirname, '../../dist/cli/main.js'));
test('NODE_EXTRA_CA_CERTS, kept from Node\'s start-up by the launcher: its CAs are trusted on TLS connections, beside a cert dir\'s, and child processes still see it', { skip: registryTool.skip || (!built && 'dist/ is not built (npm run build)') }, () => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('other.key'), '-out', f('other.crt'), '-days', '2', '-subj', '/CN=enclavify other CA');
  mkdirSync(f('other-certs'));
  copyFileSync(f('other.crt'), f('other-certs/other.crt'));
  // A credential helper (a child process) that records what it was given.
  const helperBin = f('helper-bin');
  mkdirSync(helperBin);
  const seen = f('helper-env');
  writeFileSync(path.join(helperBin, 'docker-credential-envcheck'), `#!/bin/sh\nprintf '%s|%s' "\${NODE_EXTRA_CA_CERTS-unset}" "\${ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS-unset}" > '${seen}'\nprintf '{"ServerURL":"x","Username":"u","Secret":"s"}'\n`);
  chmodSync(path.join(helperBin, 'docker-credential-envcheck'), 0o755);
  mkdirSync(f('docker-cfg'));
  writeFileSync(f('docker-cfg/config.json'), JSON.stringify({ credHelpers: { [tlsReg.host]: 'envcheck' } }));
  const env = (extra: Record<string, string>) => ({ PATH: `${helperBin}:${process.env.PATH}`, HOME: s.dir, DOCKER_CONFIG: f('docker-cfg'), ...extra });
  const cli = (args: string[], e: Record<string, string>, viaNode = false) =>
    spawnSync(viaNode ? process.execPath : binFile, [...(viaNode ? [binFile] : []), 'copy', '-q', `oci:${bbOci}:latest`, ...args], { encoding: 'utf8', env: env(e) });
  const dst = (tag: string) => `docker://${tlsReg.host}/extra-ca/bb:${tag}`;

  // Without the CA anywhere: refused, exit 1 (the error names the cure).
  let r = cli([dst('a')], {});
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /the TLS certificate does not verify/);
  // The CA in NODE_EXTRA_CA_CERTS only.
  r = cli([dst('b')], { NODE_EXTRA_CA_CERTS: f('ca.crt') });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(seen, 'utf8'), `${f('ca.crt')}|unset`, 'the helper sees NODE_EXTRA_CA_CERTS as given, and not the launcher\'s variable');
  // Beside a cert dir holding another CA: both trusted, launched by the command or by node itself.
  for (const viaNode of [false, true]) {
    r = cli(['--dest-cert-dir', f('other-certs'), dst(viaNode ? 'c2' : 'c1')], { NODE_EXTRA_CA_CERTS: f('ca.crt') }, viaNode);
    assert.equal(r.status, 0, r.stderr);
  }
  r = cli(['--dest-cert-dir', f('other-certs'), dst('d')], {});
  assert.equal(r.status, 1, 'the cert dir\'s CA alone does not verify this registry');
  // An unreadable NODE_EXTRA_CA_CERTS is ignored with Node's warning, as Node does at start-up.
  r = cli(['--dest-cert-dir', f('certs'), dst('e')], { NODE_EXTRA_CA_CERTS: f('no-such.pem') });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.match(/Ignoring extra certs from `[^`]*no-such\.pem`, load failed/g)?.length, 1, r.stderr);
  // With NODE_OPTIONS=--use-openssl-ca the launcher leaves the variable to Node.
  r = cli([dst('f')], { NODE_EXTRA_CA_CERTS: f('ca.crt'), NODE_OPTIONS: '--use-openssl-ca' });
  assert.equal(r.status, 0, r.stderr);
  if (!skopeo.skip) {
    for (const tag of ['b', 'c1', 'c2', 'e', 'f']) {
      const raw = execFileSync('skopeo', ['inspect', '--raw', '--cert-dir', f('certs'), `docker://${tlsReg.host}/extra-ca/bb:${tag}`]);
      assert.equal(JSON.parse(raw.toString()).layers.length, 3);
    }
  }
});
