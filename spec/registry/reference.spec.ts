/**
 * Registry references (Docker's short forms and normalisation), WWW-Authenticate parsing, the
 * order in which auth files are consulted, and registry error bodies rendered readably.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatRegistryReference, isLoopback, parseRegistryReference } from '../../lib/registry/reference.js';
import { mergeScopes, parseWwwAuthenticate } from '../../lib/registry/auth.js';
import { authFilePaths, lookupCredentials, parseCredentials } from '../../lib/registry/credentials.js';
import { renderErrorBody, statusError } from '../../lib/registry/errors.js';
import { retryAfterMs } from '../../lib/registry/http.js';
import { scratch } from '../helpers/images.js';

test('Docker short forms and aliases normalise to registry-1.docker.io', () => {
  const cases: Array<[string, string]> = [
    ['alpine', 'registry-1.docker.io/library/alpine:latest'],
    ['alpine:3.20', 'registry-1.docker.io/library/alpine:3.20'],
    ['gramineproject/gramine:1.9', 'registry-1.docker.io/gramineproject/gramine:1.9'],
    ['docker.io/alpine', 'registry-1.docker.io/library/alpine:latest'],
    ['index.docker.io/library/alpine:edge', 'registry-1.docker.io/library/alpine:edge'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/team/app:1.0', 'localhost:5000/team/app:1.0'],
    ['127.0.0.1:5000/app@sha256:' + 'a'.repeat(64), '127.0.0.1:5000/app@sha256:' + 'a'.repeat(64)],
    ['ghcr.io/org/app:v1@sha256:' + 'b'.repeat(64), 'ghcr.io/org/app:v1@sha256:' + 'b'.repeat(64)],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
  ];
  for (const [input, want] of cases) assert.equal(formatRegistryReference(parseRegistryReference(input)), want, input);
  const r = parseRegistryReference('registry.example.com:8443/a/b/c:tag');
  assert.deepEqual(r, { registry: 'registry.example.com:8443', repository: 'a/b/c', tag: 'tag' });
});

test('malformed references are refused with the accepted form', () => {
  for (const bad of ['', 'UPPER/case', 'host:5000/', 'app:bad tag', 'app@sha256:xyz', 'a//b', 'app:' + 'x'.repeat(129), '-app']) {
    assert.throws(() => parseRegistryReference(bad), (e: Error & { code?: string }) => e.code === 'BAD_REFERENCE' && /docker:\/\/HOST\[:PORT\]\/REPO/.test(e.message), bad);
  }
});

test('loopback names: localhost, 127/8 and ::1 only', () => {
  for (const h of ['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000']) assert.ok(isLoopback(h), h);
  for (const h of ['registry.local:5000', '10.0.0.1:5000', 'localhost.example.com', '128.0.0.1']) assert.ok(!isLoopback(h), h);
});

test('WWW-Authenticate: Bearer and Basic challenges, quoted strings with commas and escapes', () => {
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull,push' } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Basic realm="test \\"realm\\""'), [{ scheme: 'basic', params: { realm: 'test "realm"' } }]);
  const two = parseWwwAuthenticate('Basic realm="a", Bearer realm="https://x/t",error="insufficient_scope"');
  assert.deepEqual(two.map((c) => c.scheme), ['basic', 'bearer']);
  assert.equal(two[1].params.error, 'insufficient_scope');
  assert.deepEqual(mergeScopes(['repository:a:pull', 'repository:a:push', 'repository:b:pull', 'repository:a:pull']), ['repository:a:pull,push', 'repository:b:pull']);
});

test('Retry-After in seconds and as an HTTP date', () => {
  assert.equal(retryAfterMs('3'), 3000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs('soon'), undefined);
});

test('auth files: --authfile, else $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR; then ~/.config, $DOCKER_CONFIG or ~/.docker; first match wins', async () => {
  const s = scratch();
  try {
    const home = path.join(s.dir, 'home');
    const env = { XDG_RUNTIME_DIR: path.join(s.dir, 'run'), DOCKER_CONFIG: path.join(s.dir, 'dc') };
    assert.deepEqual(authFilePaths({ home, env }).map((p) => p.file), [
      path.join(s.dir, 'run/containers/auth.json'), path.join(home, '.config/containers/auth.json'), path.join(s.dir, 'dc/config.json'), path.join(home, '.dockercfg'),
    ]);
    assert.equal(authFilePaths({ home, env: { ...env, REGISTRY_AUTH_FILE: '/x/auth.json' } })[0].file, '/x/auth.json');
    assert.equal(authFilePaths({ home, env, authFile: '/y.json' })[0].file, '/y.json');
    assert.equal(authFilePaths({ home, env: {} })[1].file, path.join(home, '.docker/config.json'));
    const b64 = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');
    mkdirSync(path.join(s.dir, 'run/containers'), { recursive: true });
    mkdirSync(path.join(s.dir, 'dc'), { recursive: true });
    writeFileSync(path.join(s.dir, 'run/containers/auth.json'), JSON.stringify({ auths: { 'reg.example:5000': { auth: b64('podman', 'p1') } } }));
    writeFileSync(path.join(s.dir, 'dc/config.json'), JSON.stringify({ auths: { 'reg.example:5000': { auth: b64('docker', 'p2') }, 'https://index.docker.io/v1/': { auth: b64('hub', 'p3') }, 'other.example': { identitytoken: 'refresh-123' } } }));
    assert.deepEqual((await lookupCredentials('reg.example:5000', 'app', { home, env }))?.credentials, { username: 'podman', password: 'p1' });
    assert.deepEqual((await lookupCredentials('registry-1.docker.io', 'library/alpine', { home, env }))?.credentials, { username: 'hub', password: 'p3' });
    assert.deepEqual((await lookupCredentials('other.example', undefined, { home, env }))?.credentials, { identityToken: 'refresh-123' });
    assert.equal(await lookupCredentials('nowhere.example', undefined, { home, env }), undefined);
    await assert.rejects(lookupCredentials('reg.example:5000', undefined, { home, env, authFile: path.join(s.dir, 'missing.json') }), /--authfile .*missing\.json: cannot be read \(ENOENT\)/);
    writeFileSync(path.join(s.dir, 'dc/config.json'), JSON.stringify({ auths: { 'x.example': { auth: 'bm90LWEtcGFpcg==' } } }));
    await assert.rejects(lookupCredentials('x.example', undefined, { home, env: { DOCKER_CONFIG: env.DOCKER_CONFIG } }), /the "auth" of x\.example is not base64 of USER:PASSWORD/);
  } finally {
    s.done();
  }
});

test('--creds USER:PASS; a malformed value is refused without being quoted', () => {
  assert.deepEqual(parseCredentials('u:p:with:colons'), { username: 'u', password: 'p:with:colons' });
  assert.throws(() => parseCredentials('justasecret'), (e: Error) => !e.message.includes('justasecret') && /USER:PASSWORD/.test(e.message));
});

test('registry error bodies are rendered readably and redacted', () => {
  assert.equal(renderErrorBody('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"latest"}}]}'), 'MANIFEST_UNKNOWN: manifest unknown (Tag: latest)');
  assert.equal(renderErrorBody('<html>nope</html>'), undefined);
  const e = statusError(403, '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied for hunter2"}]}', { registry: 'r:1', repository: 'a/b' }, 'PUT manifest', ['hunter2']);
  assert.equal(e.code, 'REGISTRY_DENIED');
  assert.equal(e.message, 'registry r:1, repository a/b: PUT manifest: 403 denied: DENIED: requested access to the resource is denied for ***; these credentials may not do this (push or pull permission on the repository?)');
});
