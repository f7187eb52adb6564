/**
 * Robustness against a failing network, with a fault-injecting proxy (written here, loopback) in
 * front of the real registry: a 500 on the first /v2/ ping, 429 with Retry-After, a 503 on a blob
 * upload, connection resets in the middle of an upload and of a download. One push and one pull
 * each still complete and the result verifies. Also: relative Location headers, an upload resumed
 * at the offset the registry reports, retries that give up in bounded time, a redirect to another
 * host that never carries the credentials, and a registry that lies (oversized manifest, wrong
 * digest, corrupt blob) refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { openImage } from '../../lib/store/index.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import { formatTree } from '../../lib/fs/tree.js';
import type { Image } from '../../lib/oci/image.js';
import { pushImage } from '../../lib/registry/push.js';
import { openRegistryImage } from '../../lib/registry/pull.js';
import { parseRegistryReference } from '../../lib/registry/reference.js';
import { closeRegistryClients, type RegistryOptions } from '../../lib/registry/client.js';
import type { ProgressEvent } from '../../lib/registry/progress.js';
import { bbOci, scratch } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { randomImage, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startProxy, type Action, type ProxyRequest } from '../helpers/proxy.js';

const registryTool = tool('docker-registry');
const htpasswdTool = tool('htpasswd');
const s = scratch('enclavify-faults-');
let reg: TestRegistry;
let authReg: TestRegistry;
const PASSWORD = 'faults-pw-not-for-cdn';
const treeOf = async (img: Image) => formatTree(await layersRootFs(await img.layers()));
// Fast retries, so the test does not wait long; Retry-After (1 s) is still honoured.
const fast: RegistryOptions = { credentials: null, retry: { baseDelayMs: 20, maxDelayMs: 200 } };

before(async () => {
  if (registryTool.skip) return;
  reg = await startRegistry();
  if (!htpasswdTool.skip) authReg = await startRegistry({ htpasswd: `carol:${PASSWORD}` });
});
after(async () => {
  await closeRegistryClients();
  await reg?.stop();
  await authReg?.stop();
  s.done();
});

/** A rule that applies each fault once, to the first request it matches. */
function once(faults: Array<{ when: (r: ProxyRequest) => boolean; action: Action }>): (r: ProxyRequest) => Action {
  const used = new Set<number>();
  return (r) => {
    const i = faults.findIndex((f, k) => !used.has(k) && f.when(r));
    if (i < 0) return { kind: 'forward' };
    used.add(i);
    return faults[i].action;
  };
}

const isPing = (r: ProxyRequest) => r.method === 'GET' && r.url === '/v2/';

test('push through 500, 429 + Retry-After, a 503 on an upload and a reset mid-upload: it completes and the image verifies', { skip: registryTool.skip }, async () => {
  const img = await randomImage(s.dir, 3_000_000);
  const proxy = await startProxy({
    target: reg.host, relativeLocations: true,
    rule: once([
      { when: isPing, action: { kind: 'respond', status: 500 } },
      { when: (r) => r.method === 'HEAD', action: { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' } },
      { when: (r) => r.method === 'PUT' && /\/blobs\/uploads\/.*digest=/.test(r.url) && r.headers['content-length'] !== '0', action: { kind: 'respond', status: 503 } },
      { when: (r) => r.method === 'PATCH', action: { kind: 'reset-request', after: 1_000_000 } },
    ]),
  });
  try {
    const events: ProgressEvent[] = [];
    const res = await pushImage(img, parseRegistryReference(`${proxy.host}/faults/push:1`), { registry: fast, onProgress: (e) => events.push(e) });
    const kinds = proxy.log.filter((l) => l.action !== 'forward').map((l) => `${l.method} ${l.status ?? ''}`.trim());
    assert.deepEqual(kinds.sort(), ['GET 500', 'HEAD 429', 'PATCH', 'PUT 503'].sort(), 'every fault happened');
    // Retries are reported as warnings on the blob they concern.
    assert.ok(events.some((e) => e.level === 'warning' && /connection lost|starting the upload again|resuming/.test(e.message)));
    // The result, read straight from the registry (no proxy), verifies: digests and the tree.
    const back = await openRegistryImage(parseRegistryReference(`${reg.host}/faults/push:1`), { registry: { credentials: null } });
    assert.equal(await back.digest(), res.digest);
    assert.equal(await treeOf(back), await treeOf(img));
  } finally {
    await proxy.close();
  }
});

test('an upload cut between chunks resumes at the offset the registry reports, in the same session', { skip: registryTool.skip }, async () => {
  const img = await randomImage(s.dir, 2_000_000);
  let patches = 0;
  const proxy = await startProxy({
    target: reg.host, relativeLocations: true,
    // One blob at a time, the largest first: the layer's PATCHes, then the config's; the
    // layer's third is cut before any of its bytes reach the registry.
    rule: (r) => (r.method === 'PATCH' && ++patches === 3 ? { kind: 'reset-request', after: 0 } : { kind: 'forward' }),
  });
  try {
    const res = await pushImage(img, parseRegistryReference(`${proxy.host}/faults/resume:1`), { registry: { ...fast, chunkSize: 512 << 10, monolithicMax: 0, concurrency: 1 } });
    const status = proxy.log.filter((l) => l.method === 'GET' && /\/blobs\/uploads\//.test(l.url));
    assert.deepEqual(status.map((l) => l.status), [204], 'one upload status request');
    const ranges = proxy.log.filter((l) => l.method === 'PATCH').map((l) => l.headers['content-range']);
    // the layer: 0, 512 Ki, [cut at 1 Mi], 1 Mi again, ...; then the config (one chunk)
    assert.equal(ranges[2], `${1 << 20}-${(1536 << 10) - 1}`);
    assert.equal(ranges[3], `${1 << 20}-${(1536 << 10) - 1}`);
    const back = await openRegistryImage(parseRegistryReference(`${reg.host}/faults/resume:1`), { registry: { credentials: null } });
    assert.equal(await back.digest(), res.digest);
    assert.equal(await treeOf(back), await treeOf(img));
  } finally {
    await proxy.close();
  }
});

test('a mount the registry refuses (403, 401) falls back to an ordinary upload', { skip: registryTool.skip }, async () => {
  const img = await randomImage(s.dir, 200_000);
  const first = await pushImage(img, parseRegistryReference(`${reg.host}/faults/mount-src:1`), { registry: fast });
  assert.ok(first.blobs.every((b) => b.status === 'pushed'));
  let n = 0;
  const proxy = await startProxy({
    target: reg.host, relativeLocations: true,
    rule: (r) => (r.method === 'POST' && /[?&]mount=/.test(r.url) ? { kind: 'respond', status: n++ % 2 ? 401 : 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } : { kind: 'forward' }),
  });
  try {
    // The blobs are remembered under the registry's own host; through the proxy they would not
    // be: push the source once more through it, so that its locations are known there.
    await pushImage(img, parseRegistryReference(`${proxy.host}/faults/mount-src:1`), { registry: fast });
    const res = await pushImage(img, parseRegistryReference(`${proxy.host}/faults/mount-dst:1`), { registry: fast });
    assert.deepEqual(res.blobs.map((b) => b.status), res.blobs.map(() => 'pushed'));
    assert.ok(proxy.log.filter((l) => l.method === 'POST' && /[?&]mount=/.test(l.url)).length >= res.blobs.length, 'the mounts were tried');
    const back = await openRegistryImage(parseRegistryReference(`${reg.host}/faults/mount-dst:1`), { registry: { credentials: null } });
    assert.equal(await back.digest(), res.digest);
  } finally {
    await proxy.close();
  }
});

test('pull through 500, 429 + Retry-After, a 503 on a blob and a reset mid-download: resumed with Range, verified', { skip: registryTool.skip }, async () => {
  const img = await randomImage(s.dir, 3_000_000);
  const pushed = await pushImage(img, parseRegistryReference(`${reg.host}/faults/pull:1`), { registry: { credentials: null } });
  const layer = pushed.blobs[1].digest;
  const proxy = await startProxy({
    target: reg.host,
    rule: once([
      { when: isPing, action: { kind: 'respond', status: 500 } },
      { when: (r) => /\/manifests\//.test(r.url), action: { kind: 'respond', status: 429, headers: { 'retry-after': '1' } } },
      { when: (r) => r.url.endsWith(`/blobs/${layer}`), action: { kind: 'respond', status: 503 } },
      { when: (r) => r.url.endsWith(`/blobs/${layer}`), action: { kind: 'reset-response', after: 1_000_000 } },
    ]),
  });
  try {
    const events: ProgressEvent[] = [];
    const back = await openRegistryImage(parseRegistryReference(`${proxy.host}/faults/pull:1`), { registry: { ...fast, timeoutMs: 30_000 }, onProgress: (e) => events.push(e) });
    assert.equal(await back.digest(), pushed.digest);
    assert.equal(await treeOf(back), await treeOf(img));
    const gets = proxy.log.filter((l) => l.url.endsWith(`/blobs/${layer}`));
    assert.deepEqual(gets.map((l) => l.action), ['respond', 'reset-response', 'forward']);
    const from = Number(/^bytes=(\d+)-$/.exec(String(gets[2].headers.range))?.[1]);
    assert.ok(from > 0 && from <= 1_000_000, `resumed from byte ${from}`);
    assert.ok(events.some((e) => e.level === 'warning' && e.message.includes(`resuming at byte ${from}`)));
  } finally {
    await proxy.close();
  }
});

test('retries are bounded: a registry that keeps failing gives up with its own error, in bounded time', { skip: registryTool.skip }, async () => {
  const proxy = await startProxy({ target: reg.host, rule: (r) => (isPing(r) ? { kind: 'forward' } : { kind: 'respond', status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"maintenance window"}]}' }) });
  try {
    const started = Date.now();
    await assert.rejects(openRegistryImage(parseRegistryReference(`${proxy.host}/faults/none:1`), { registry: { credentials: null, retry: { attempts: 3, baseDelayMs: 10 } } }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'REGISTRY_RETRIES_EXHAUSTED');
      assert.match(e.message, /repository faults\/none, manifest 1: GET manifest: HTTP 503: UNAVAILABLE: maintenance window \(gave up after 3 tries in/);
      return true;
    });
    assert.equal(proxy.log.filter((l) => l.status === 503).length, 3);
    // A Retry-After beyond the time budget is not waited for.
    const slow = await startProxy({ target: reg.host, rule: (r) => (isPing(r) ? { kind: 'forward' } : { kind: 'respond', status: 429, headers: { 'retry-after': '3600' } }) });
    try {
      await assert.rejects(openRegistryImage(parseRegistryReference(`${slow.host}/faults/none:1`), { registry: { credentials: null, retry: { maxElapsedMs: 5_000 } } }), /429 too many requests.*gave up after 1 try/);
    } finally {
      await slow.close();
    }
    assert.ok(Date.now() - started < 30_000);
  } finally {
    await proxy.close();
  }
});

test('a blob redirect to another host gets no Authorization; the blob still verifies', { skip: registryTool.skip || htpasswdTool.skip }, async () => {
  const img = await openImage(`oci:${bbOci}:latest`);
  const creds: RegistryOptions = { credentials: { username: 'carol', password: PASSWORD } };
  const pushed = await pushImage(img, parseRegistryReference(`${authReg.host}/carol/bb:1`), { registry: creds });
  // The "CDN": another origin that serves blobs (fetching them from the registry itself).
  const seen: Array<string | undefined> = [];
  const cdn = http.createServer((q, r) => {
    seen.push(q.headers.authorization);
    http.get({ host: '127.0.0.1', port: authReg.port, path: q.url, headers: { authorization: `Basic ${Buffer.from(`carol:${PASSWORD}`).toString('base64')}` } }, (up) => {
      r.writeHead(up.statusCode!, up.headers);
      up.pipe(r);
    });
  });
  await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
  const cdnPort = (cdn.address() as { port: number }).port;
  const proxy = await startProxy({
    target: authReg.host,
    rewriteResponse: (req, status, headers) => (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url) && status === 200
      ? { status: 307, headers: { location: `http://127.0.0.1:${cdnPort}${req.url}`, 'content-length': '0' } }
      : { status, headers }),
  });
  try {
    const back = await openRegistryImage(parseRegistryReference(`${proxy.host}/carol/bb:1`), { registry: creds });
    assert.equal(await back.digest(), pushed.digest);
    assert.equal((await treeOf(back)).split('\n').length > 10, true);
    assert.ok(seen.length >= 4, 'config and layers came from the other host');
    assert.deepEqual(seen.filter((a) => a !== undefined), [], 'no Authorization sent to another host');
    assert.ok(proxy.log.filter((l) => /\/blobs\/sha256:/.test(l.url)).every((l) => l.headers.authorization?.startsWith('Basic ')));
  } finally {
    await proxy.close();
    cdn.close();
  }
});

test('a registry that lies is refused: an oversized manifest, a wrong Docker-Content-Digest, a corrupt blob', { skip: registryTool.skip }, async () => {
  const img = await openImage(`oci:${bbOci}:latest`);
  const pushed = await pushImage(img, parseRegistryReference(`${reg.host}/faults/liar:1`), { registry: { credentials: null } });
  const huge = await startProxy({ target: reg.host, rule: (r) => (/\/manifests\//.test(r.url) ? { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: ' '.repeat(5 << 20) } : { kind: 'forward' }) });
  const wrongDigest = await startProxy({
    target: reg.host,
    rewriteResponse: (req, status, headers) => (/\/manifests\//.test(req.url) ? { status, headers: { ...headers, 'docker-content-digest': `sha256:${'0'.repeat(64)}` } } : { status, headers }),
  });
  const layer = pushed.blobs[1].digest;
  // Flips a byte in the middle of the first layer.
  const corrupt = http.createServer((q, r) => {
    http.get({ host: '127.0.0.1', port: reg.port, path: q.url, headers: q.headers }, (up) => {
      r.writeHead(up.statusCode!, up.headers);
      if (!q.url!.endsWith(layer)) return void up.pipe(r);
      let n = 0;
      up.on('data', (c: Buffer) => {
        if (n <= 100_000 && n + c.length > 100_000) c[100_000 - n] ^= 0xff;
        n += c.length;
        r.write(c);
      });
      up.on('end', () => r.end());
    });
  });
  await new Promise<void>((r) => corrupt.listen(0, '127.0.0.1', r));
  try {
    await assert.rejects(openRegistryImage(parseRegistryReference(`${huge.host}/faults/liar:1`), { registry: { credentials: null } }), (e: Error & { code?: string }) => e.code === 'REGISTRY_BAD_RESPONSE' && /GET manifest is (\d+ bytes, )?more than the 4194304 (bytes )?allowed/.test(e.message));
    await assert.rejects(openRegistryImage(parseRegistryReference(`${wrongDigest.host}/faults/liar:1`), { registry: { credentials: null } }), /Docker-Content-Digest says sha256:0{64} but the manifest's digest is sha256:/);
    const bad = await openRegistryImage(parseRegistryReference(`127.0.0.1:${(corrupt.address() as { port: number }).port}/faults/liar:1`), { registry: { credentials: null } });
    await assert.rejects(treeOf(bad), new RegExp(`blob ${layer} does not match its content`));
  } finally {
    await huge.close();
    await wrongDigest.close();
    corrupt.close();
  }
});

test('an AbortSignal cancels a push (the tag is not created) and a download (ABORTED)', { skip: registryTool.skip }, async () => {
  const img = await randomImage(s.dir, 3_000_000);
  const ctl = new AbortController();
  const ref = parseRegistryReference(`${reg.host}/faults/abort:1`);
  await assert.rejects(pushImage(img, ref, { registry: { credentials: null }, signal: ctl.signal, onProgress: (e) => { if (e.status === 'start' && (e.bytesTotal ?? 0) > 1_000_000) ctl.abort(); } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ABORTED');
    return true;
  });
  await assert.rejects(openRegistryImage(ref, { registry: { credentials: null } }), (e: Error & { code?: string }) => e.code === 'REGISTRY_NOT_FOUND');
  await pushImage(img, ref, { registry: { credentials: null } });
  const pull = new AbortController();
  const back = await openRegistryImage(ref, { registry: { credentials: null }, signal: pull.signal });
  const stream = await (await back.layers())[0].compressed();
  await assert.rejects((async () => {
    for await (const _ of stream) pull.abort();
  })(), (e: Error & { code?: string }) => e.code === 'ABORTED');
});
