/**
 * Registry authentication against the real registry: Basic (htpasswd) with credentials given,
 * from a config.json, an auth.json and a credential helper on PATH; Bearer tokens from a token
 * endpoint written here that issues real RS256 JWTs the registry itself verifies (auth.token with
 * a certificate generated here); pull tokens widened for push and for a mount's source. No
 * password or token ever appears in an error, a progress event or a result.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSign, randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { openImage } from '../../lib/store/index.js';
import { pushImage } from '../../lib/registry/push.js';
import { openRegistryImage } from '../../lib/registry/pull.js';
import { parseRegistryReference } from '../../lib/registry/reference.js';
import { closeRegistryClients, registryClient, type RegistryOptions } from '../../lib/registry/client.js';
import type { ProgressEvent } from '../../lib/registry/progress.js';
import { bbOci, scratch } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const registryTool = tool('docker-registry');
const htpasswdTool = tool('htpasswd');
const skip = registryTool.skip || htpasswdTool.skip;
const PASSWORD = 'pw-Zq8#not-in-any-message';
const s = scratch('enclavify-auth-');
let basic: TestRegistry;
let bearer: TestRegistry;
let tokens: TokenServer;

/** Everything a secret might leak into, collected per test. */
function leakCheck(texts: string[], secrets: string[]): void {
  for (const t of texts) for (const x of secrets) assert.ok(!t.includes(x), `a secret leaked into: ${t.slice(0, 200)}`);
}

// ---- a token endpoint (distribution's token spec) issuing RS256 JWTs with an x5c header ----

interface TokenServer {
  url: string;
  /** Every request: the user (or 'anonymous') and the scopes asked for. */
  requests: Array<{ user: string; scopes: string[] }>;
  issued: string[];
  close(): void;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

async function startTokenServer(key: string, certPem: string, users: Record<string, string>): Promise<TokenServer> {
  const der = new X509Certificate(certPem).raw.toString('base64');
  const requests: TokenServer['requests'] = [];
  const issued: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    let user = 'anonymous';
    const auth = req.headers.authorization;
    if (auth) {
      const [name, pass] = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString().split(':');
      if (users[name] !== pass) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      user = name;
    }
    const scopes = u.searchParams.getAll('scope');
    requests.push({ user, scopes });
    // Policy: anonymous may pull; a user may pull and push repositories under its own name.
    const access = scopes.map((sc) => {
      const [type, name, actions] = sc.split(':');
      const allowed = actions.split(',').filter((a) => a === 'pull' || (user !== 'anonymous' && name.startsWith(`${user}/`)));
      return { type, name, actions: allowed };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der] };
    const claims = { iss: 'enclavify-test-issuer', sub: user, aud: 'enclavify-test', exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${createSign('RSA-SHA256').update(input).sign(key).toString('base64url')}`;
    issued.push(token);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/token`, requests, issued, close: () => server.close() };
}

before(async () => {
  if (skip) return;
  basic = await startRegistry({ htpasswd: `alice:${PASSWORD}` });
  const key = path.join(s.dir, 'token.key'), cert = path.join(s.dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=enclavify test token signer'], { stdio: 'pipe' });
  tokens = await startTokenServer(readFileSync(key, 'utf8'), readFileSync(cert, 'utf8'), { bob: PASSWORD });
  const extra = path.join(s.dir, 'token.yml');
  writeFileSync(extra, `auth:\n  token:\n    realm: ${tokens.url}\n    service: enclavify-test\n    issuer: enclavify-test-issuer\n    rootcertbundle: ${cert}\n`);
  bearer = await startRegistry({ configExtra: extra });
});
after(async () => {
  await closeRegistryClients();
  await basic?.stop();
  await bearer?.stop();
  tokens?.close();
  s.done();
});

const bb = () => openImage(`oci:${bbOci}:latest`);
/** Options that see no auth file of the machine: an empty home and environment. */
const isolated = (extra: RegistryOptions = {}): RegistryOptions => ({ home: path.join(s.dir, 'empty-home'), env: { PATH: process.env.PATH }, ...extra });

test('Basic: the right password pushes and pulls; a wrong one is a clear 401 that does not echo it; none at all says how to give one', { skip }, async () => {
  const events: ProgressEvent[] = [];
  const ok = isolated({ credentials: { username: 'alice', password: PASSWORD } });
  const res = await pushImage(await bb(), parseRegistryReference(`${basic.host}/alice/bb:1`), { registry: ok, onProgress: (e) => events.push(e) });
  const back = await openRegistryImage(parseRegistryReference(`${basic.host}/alice/bb:1`), { registry: ok, onProgress: (e) => events.push(e) });
  assert.equal(await back.digest(), res.digest);

  const wrong = 'wrong-' + PASSWORD;
  const errors: string[] = [];
  await assert.rejects(openRegistryImage(parseRegistryReference(`${basic.host}/alice/bb:1`), { registry: isolated({ credentials: { username: 'alice', password: wrong } }) }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_UNAUTHORIZED');
    assert.match(e.message, /401 unauthorized.*refused the ones given/);
    errors.push(e.message, String(e.stack));
    return true;
  });
  await assert.rejects(pushImage(await bb(), parseRegistryReference(`${basic.host}/alice/bb:2`), { registry: isolated() }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_UNAUTHORIZED');
    assert.match(e.message, /--creds USER:PASS/);
    return true;
  });
  const b64 = (p: string) => Buffer.from(`alice:${p}`).toString('base64');
  leakCheck([...errors, ...events.map((e) => JSON.stringify(e)), JSON.stringify(res)], [PASSWORD, wrong, b64(PASSWORD), b64(wrong)]);
});

test('credentials from a Docker config.json, a containers auth.json (--authfile and $REGISTRY_AUTH_FILE) and a credential helper on PATH', { skip }, async () => {
  const auth = Buffer.from(`alice:${PASSWORD}`).toString('base64');
  const ref = parseRegistryReference(`${basic.host}/alice/bb:1`);
  // $DOCKER_CONFIG/config.json, keyed the way `docker login` writes it.
  const docker = path.join(s.dir, 'docker');
  mkdirSync(docker, { recursive: true });
  writeFileSync(path.join(docker, 'config.json'), JSON.stringify({ auths: { [`https://${basic.host}`]: { auth } } }));
  await openRegistryImage(ref, { registry: isolated({ env: { DOCKER_CONFIG: docker } }) });
  // ~/.docker/config.json of the home directory.
  const home = path.join(s.dir, 'home');
  mkdirSync(path.join(home, '.docker'), { recursive: true });
  writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [basic.host]: { auth } } }));
  await openRegistryImage(ref, { registry: { home, env: {} } });
  // auth.json (podman/skopeo), given with --authfile and with $REGISTRY_AUTH_FILE; a
  // repository-scoped key wins over the registry-wide one.
  const authJson = path.join(s.dir, 'auth.json');
  writeFileSync(authJson, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from('alice:wrong').toString('base64') }, [`${basic.host}/alice`]: { auth } } }));
  await openRegistryImage(ref, { registry: isolated({ authFile: authJson }) });
  await openRegistryImage(ref, { registry: isolated({ env: { REGISTRY_AUTH_FILE: authJson } }) });
  // A credential helper named by credHelpers, found on PATH; it is told the registry on stdin.
  const bin = path.join(s.dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const asked = path.join(s.dir, 'helper-asked');
  const helper = path.join(bin, 'docker-credential-enclavifytest');
  writeFileSync(helper, `#!/bin/sh\n[ "$1" = get ] || exit 1\nread server\necho "$server" > '${asked}'\nprintf '{"ServerURL":"%s","Username":"alice","Secret":"%s"}' "$server" '${PASSWORD}'\n`);
  chmodSync(helper, 0o755);
  const helperCfg = path.join(s.dir, 'helper');
  mkdirSync(helperCfg, { recursive: true });
  writeFileSync(path.join(helperCfg, 'config.json'), JSON.stringify({ credHelpers: { [basic.host]: 'enclavifytest' } }));
  await pushImage(await bb(), parseRegistryReference(`${basic.host}/alice/helper:1`), { registry: isolated({ env: { DOCKER_CONFIG: helperCfg, PATH: `${bin}:${process.env.PATH}` } }) });
  assert.equal(readFileSync(asked, 'utf8').trim(), basic.host);
  // credsStore: the same helper for every registry of the file.
  writeFileSync(path.join(helperCfg, 'config.json'), JSON.stringify({ credsStore: 'enclavifytest' }));
  await openRegistryImage(parseRegistryReference(`${basic.host}/alice/helper:1`), { registry: isolated({ env: { DOCKER_CONFIG: helperCfg, PATH: `${bin}:${process.env.PATH}` } }) });
  // A helper that is not installed is skipped (anonymous: a 401 here), one that fails is named without its output.
  writeFileSync(path.join(helperCfg, 'config.json'), JSON.stringify({ credHelpers: { [basic.host]: 'not-installed-anywhere' } }));
  await assert.rejects(openRegistryImage(ref, { registry: isolated({ env: { DOCKER_CONFIG: helperCfg } }) }), /401 unauthorized/);
  writeFileSync(helper, `#!/bin/sh\necho '${PASSWORD}'\necho 'keychain locked' >&2\nexit 3\n`);
  writeFileSync(path.join(helperCfg, 'config.json'), JSON.stringify({ credHelpers: { [basic.host]: 'enclavifytest' } }));
  await assert.rejects(openRegistryImage(ref, { registry: isolated({ env: { DOCKER_CONFIG: helperCfg, PATH: `${bin}:${process.env.PATH}` } }) }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_CREDENTIALS');
    assert.match(e.message, /docker-credential-enclavifytest .*failed.*exit 3.*keychain locked/);
    leakCheck([e.message], [PASSWORD]);
    return true;
  });
  // A malformed auth file is named, its content never quoted.
  writeFileSync(authJson, `{"auths": {"${basic.host}": {"auth": "${PASSWORD}"`);
  await assert.rejects(openRegistryImage(ref, { registry: isolated({ authFile: authJson }) }), (e: Error) => /auth file .*auth\.json: not valid JSON/.test(e.message) && !e.message.includes(PASSWORD));
});

test('Bearer: real JWTs from the token endpoint, verified by the registry; anonymous pull; pull tokens widened for push and for a mount source; tokens reused and never shown', { skip }, async () => {
  const events: ProgressEvent[] = [];
  const bob: RegistryOptions = isolated({ credentials: { username: 'bob', password: PASSWORD } });
  const img = await bb();
  const res = await pushImage(img, parseRegistryReference(`${bearer.host}/bob/app:1`), { registry: bob, onProgress: (e) => events.push(e) });
  assert.ok(tokens.requests.some((r) => r.user === 'bob' && r.scopes.includes('repository:bob/app:pull,push')));
  // Anonymous pull: the token endpoint grants pull to anyone.
  const anon = await openRegistryImage(parseRegistryReference(`${bearer.host}/bob/app:1`), { registry: isolated({ credentials: null }) });
  assert.equal(await anon.digest(), res.digest);
  // Anonymous push is refused by the registry: the token carries no push.
  await assert.rejects(pushImage(img, parseRegistryReference(`${bearer.host}/bob/anon:1`), { registry: isolated({ credentials: null }) }), (e: Error & { code?: string }) => e.code === 'REGISTRY_UNAUTHORIZED');

  // One client: a pull (token for pull only), then a push to the same repository (token widened
  // to pull,push), then a push to another repository that mounts from the first (its pull scope added).
  const n0 = tokens.requests.length;
  const carol = isolated({ credentials: { username: 'bob', password: PASSWORD }, timeoutMs: 60_000 });
  const pulled = await openRegistryImage(parseRegistryReference(`${bearer.host}/bob/app:1`), { registry: carol });
  await pulled.config();
  await openRegistryImage(parseRegistryReference(`${bearer.host}/bob/app:1`), { registry: carol });
  const mine = () => tokens.requests.slice(n0).map((r) => r.scopes.join(' '));
  assert.deepEqual(mine(), ['repository:bob/app:pull'], 'one token, reused for the second pull');
  await pushImage(img, parseRegistryReference(`${bearer.host}/bob/app:2`), { registry: carol });
  assert.deepEqual(mine(), ['repository:bob/app:pull', 'repository:bob/app:pull,push']);
  const m = await pushImage(pulled, parseRegistryReference(`${bearer.host}/bob/copy:1`), { registry: carol });
  assert.ok(m.blobs.every((b) => b.status === 'mounted'));
  assert.ok(mine().includes('repository:bob/app:pull repository:bob/copy:pull,push'));
  assert.equal(bearer.count('POST', /^\/v2\/bob\/copy\/blobs\/uploads\/\?mount=/, 201), 4);

  // A request made with a pull-only token is refused by the registry with insufficient_scope;
  // the client then asks for the scope the registry names and retries.
  const client = await registryClient(bearer.host, 'bob/app', carol);
  const n1 = tokens.requests.length;
  const r = await client.call({ method: 'POST', url: '/v2/bob/up/blobs/uploads/', scopes: ['repository:bob/up:pull'], expect: [202], what: 'start upload', subject: { registry: bearer.host, repository: 'bob/up' } });
  await r.body.dump();
  assert.deepEqual(tokens.requests.slice(n1).map((x) => x.scopes.join(' ')), ['repository:bob/up:pull', 'repository:bob/up:pull,push']);

  // Wrong password at the token endpoint: clear, and without the password.
  await assert.rejects(openRegistryImage(parseRegistryReference(`${bearer.host}/bob/app:1`), { registry: isolated({ credentials: { username: 'bob', password: 'nope-' + PASSWORD } }) }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_UNAUTHORIZED');
    assert.match(e.message, /token endpoint http:\/\/127\.0\.0\.1:\d+\/token refused the credentials of user bob/);
    leakCheck([e.message], [PASSWORD]);
    return true;
  });
  leakCheck([...events.map((e) => JSON.stringify(e)), JSON.stringify(res), JSON.stringify(m)], [PASSWORD, ...tokens.issued]);
});
