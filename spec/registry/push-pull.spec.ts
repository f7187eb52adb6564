/**
 * Pull and push against a real registry (CNCF distribution 2.8 on loopback), checked with skopeo
 * and umoci: what we push, skopeo pulls and umoci unpacks to the expected tree; what skopeo pushes
 * (OCI and Docker schema2, a multi-platform index), we read; a repeated push uploads nothing and
 * a push to another repository mounts (counted in the registry's own request log).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { openImage } from '../../lib/store/index.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import { formatTree } from '../../lib/fs/tree.js';
import type { Image } from '../../lib/oci/image.js';
import { pushImage } from '../../lib/registry/push.js';
import { openRegistryImage } from '../../lib/registry/pull.js';
import { parseRegistryReference } from '../../lib/registry/reference.js';
import { closeRegistryClients } from '../../lib/registry/client.js';
import type { ProgressEvent } from '../../lib/registry/progress.js';
import { pipeline } from '../../lib/transforms/pipeline.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { PROTECTION } from '../../lib/transforms/state.js';
import { verify } from '../../lib/protect/verify.js';
import { bbArchive, bbOci, bbZstd, expectedTree, scratch, umociUnpack, writableCopy } from '../helpers/images.js';
import { diskTree } from '../helpers/disk-tree.js';
import { tool } from '../helpers/tools.js';
import { randomImage, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';

const registryTool = tool('docker-registry');
const skopeo = tool('skopeo');
const umoci = tool('umoci');
const expected = readFileSync(expectedTree, 'utf8');
let reg: TestRegistry;
const ref = (s: string) => parseRegistryReference(`${reg.host}/${s}`);
const treeOf = async (img: Image) => formatTree(await layersRootFs(await img.layers()));

before(async () => {
  if (!registryTool.skip) reg = await startRegistry();
});
after(async () => {
  await closeRegistryClients();
  await reg?.stop();
});

const fixtures = [
  ['bb-oci', `oci:${bbOci}:latest`],
  ['bb-zstd', `oci:${bbZstd}`],
  ['bb-archive', `docker-archive:${bbArchive}`],
] as const;

test('every fixture: pushed, pulled back with the same digest and the expected tree; a second push uploads no blob', { skip: registryTool.skip }, async () => {
  for (const [name, src] of fixtures) {
    const img = await openImage(src);
    const events: ProgressEvent[] = [];
    const res = await pushImage(img, ref(`fix/${name}:1`), { onProgress: (e) => events.push(e) });
    assert.equal(res.digest, await img.digest(), name);
    assert.equal(res.mediaType, await img.mediaType());
    // The first fixture uploads everything; the others share blobs with it (the same config or
    // layers), which are mounted from its repository rather than uploaded again.
    if (name === 'bb-oci') assert.deepEqual(res.blobs.map((b) => b.status), ['pushed', 'pushed', 'pushed', 'pushed']);
    else assert.ok(res.blobs.every((b) => b.status === 'pushed' || (b.status === 'mounted' && b.from === 'fix/bb-oci')), name);
    // Per-blob byte progress: a start and a done for each blob, bytes counted up to the size.
    for (const b of res.blobs) {
      const mine = events.filter((e) => e.blob === b.digest);
      if (b.status === 'mounted') {
        assert.deepEqual(mine.map((e) => e.status), ['mounted']);
        continue;
      }
      assert.equal(mine[0].status, 'start');
      assert.equal(mine.at(-1)!.status, 'done');
      assert.equal(mine.at(-1)!.bytesDone, b.size);
      assert.ok(mine.every((e) => e.phase === 'push' && e.bytesTotal === b.size));
    }
    const pulled = await openRegistryImage(ref(`fix/${name}:1`));
    assert.equal(await pulled.digest(), res.digest);
    assert.deepEqual(Buffer.from(await pulled.rawManifest()), Buffer.from(await img.rawManifest()));
    assert.equal(await treeOf(pulled), expected, name);

    const uploads = () => reg.count('PUT', new RegExp(`^/v2/fix/${name}/blobs/uploads/`)) + reg.count('PATCH', new RegExp(`^/v2/fix/${name}/blobs/uploads/`));
    const before = uploads();
    const again = await pushImage(img, ref(`fix/${name}:1`));
    assert.deepEqual(again.blobs.map((b) => b.status), ['skipped', 'skipped', 'skipped', 'skipped']);
    assert.equal(uploads(), before, `${name}: the second push uploaded nothing`);
  }
});

test('a push to another repository of the same registry mounts every blob instead of uploading it', { skip: registryTool.skip }, async (t) => {
  const s = scratch();
  t.after(s.done);
  const img = await randomImage(s.dir, 100_000);
  const first = await pushImage(img, ref('mount/src:1'));
  assert.ok(first.blobs.every((b) => b.status === 'pushed'));
  const res = await pushImage(img, ref('mount/dst:1'));
  assert.deepEqual(res.blobs.map((b) => [b.status, b.from]), res.blobs.map(() => ['mounted', 'mount/src']));
  assert.equal(reg.count('POST', /^\/v2\/mount\/dst\/blobs\/uploads\/\?mount=.*&from=mount%2Fsrc$/, 201), 2);
  assert.equal(reg.count('PUT', /^\/v2\/mount\/dst\/blobs\/uploads\//), 0);
  assert.equal(reg.count('PATCH', /^\/v2\/mount\/dst\/blobs\/uploads\//), 0);
  // A registry → registry copy in the same registry also mounts: the source's blobs are known.
  const copy = await pushImage(await openRegistryImage(ref('mount/src:1')), ref('mount/copy:1'));
  assert.ok(copy.blobs.every((b) => b.status === 'mounted'));
  assert.equal(await treeOf(await openRegistryImage(ref('mount/copy:1'))), await treeOf(img));
});

test('chunked upload: many PATCHes, each at the offset the registry returned; the blob arrives intact', { skip: registryTool.skip }, async (t) => {
  const s = scratch();
  t.after(s.done);
  const img = await randomImage(s.dir, 3_000_000);
  const res = await pushImage(img, ref('chunked/bb:1'), { registry: { chunkSize: 256 << 10, monolithicMax: 0 } });
  assert.deepEqual(res.blobs.map((b) => b.status), ['pushed', 'pushed']);
  // The config (one PATCH) and the layer in 256 KiB chunks.
  const layer = res.blobs[1];
  assert.equal(reg.count('PATCH', /^\/v2\/chunked\/bb\/blobs\/uploads\//, 202), Math.ceil(layer.size / (256 << 10)) + 1);
  assert.equal(reg.count('PUT', /^\/v2\/chunked\/bb\/blobs\/uploads\/.*digest=/, 201), 2);
  assert.equal(await treeOf(await openRegistryImage(ref('chunked/bb:1'))), await treeOf(img));
});

test('skopeo pulls what enclavify pushed and umoci unpacks it to the expected tree (zstd re-encoded by skopeo)', { skip: registryTool.skip || skopeo.skip || umoci.skip }, async () => {
  const s = scratch();
  try {
    for (const [name, src] of fixtures) {
      await pushImage(await openImage(src), ref(`interop/${name}:1`));
      const out = path.join(s.dir, name);
      execFileSync('skopeo', ['copy', '-q', '--src-tls-verify=false', '--dest-compress-format', 'gzip', ...(name === 'bb-zstd' ? ['--dest-compress'] : []), `docker://${reg.host}/interop/${name}:1`, `oci:${out}:x`], { stdio: 'pipe' });
      assert.equal(diskTree(umociUnpack(`${out}:x`, path.join(s.dir, `${name}-bundle`))), expected, name);
    }
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/bb-oci:1`]);
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, JSON.parse(readFileSync(path.join(bbOci, 'index.json'), 'utf8')).manifests[0].digest);
  } finally {
    s.done();
  }
});

test('enclavify reads what skopeo pushed: OCI and Docker schema2 manifests', { skip: registryTool.skip || skopeo.skip }, async () => {
  execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${bbOci}:latest`, `docker://${reg.host}/sk/oci:1`], { stdio: 'pipe' });
  execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${bbOci}:latest`, `docker://${reg.host}/sk/v2s2:1`], { stdio: 'pipe' });
  for (const [repo, mt] of [['sk/oci', 'application/vnd.oci.image.manifest.v1+json'], ['sk/v2s2', 'application/vnd.docker.distribution.manifest.v2+json']]) {
    const img = await openRegistryImage(ref(`${repo}:1`));
    assert.equal(await img.mediaType(), mt);
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repo}:1`]);
    assert.equal(await img.digest(), `sha256:${createHash('sha256').update(raw).digest('hex')}`);
    assert.equal(await treeOf(img), expected, repo);
  }
});

/** A two-platform OCI layout: the fixture as linux/amd64 and a linux/arm64 twin (its own config). */
function multiPlatformLayout(dir: string): { amd64: string; arm64: string } {
  writableCopy(bbOci, dir);
  const blob = (d: string) => path.join(dir, 'blobs', 'sha256', d.slice(7));
  const put = (bytes: Buffer) => {
    const d = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    writeFileSync(blob(d), bytes);
    return { digest: d, size: bytes.length };
  };
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const amd = idx.manifests[0];
  const m = JSON.parse(readFileSync(blob(amd.digest), 'utf8'));
  const cfg = JSON.parse(readFileSync(blob(m.config.digest), 'utf8'));
  cfg.architecture = 'arm64';
  const c = put(Buffer.from(JSON.stringify(cfg)));
  m.config = { ...m.config, ...c };
  const arm = put(Buffer.from(JSON.stringify(m)));
  const index = {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: amd.mediaType, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: amd.mediaType, ...arm, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  };
  const i = put(Buffer.from(JSON.stringify(index)));
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: index.mediaType, ...i, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] }));
  return { amd64: amd.digest, arm64: arm.digest };
}

test('a multi-platform index pushed by skopeo --all: linux/amd64 by default, --platform picks the other; converted for linux/amd64 and pushed', { skip: registryTool.skip || skopeo.skip }, async () => {
  const s = scratch();
  try {
    const digests = multiPlatformLayout(path.join(s.dir, 'multi'));
    execFileSync('skopeo', ['copy', '-q', '--all', '--dest-tls-verify=false', `oci:${s.dir}/multi:multi`, `docker://${reg.host}/multi/bb:1`], { stdio: 'pipe' });
    const amd = await openRegistryImage(ref('multi/bb:1'));
    assert.equal(await amd.digest(), digests.amd64);
    const arm = await openRegistryImage(ref('multi/bb:1'), { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(await arm.digest(), digests.arm64);
    assert.equal((await arm.config()).architecture, 'arm64');
    await assert.rejects(openRegistryImage(ref('multi/bb:1'), { platform: { os: 'linux', architecture: 's390x' } }), /no manifest for platform linux\/s390x \(available: linux\/amd64, linux\/arm64\)/);

    const out = await pipeline(amd, [fileClassify({ dirs: ['/app/data'] }), encryptFS({ keysArtifact: 'keys.json' })]);
    try {
      const pushed = await pushImage(out.image, ref('multi/bb-conf:1'));
      // Unchanged layers are not uploaded again: they are mounted from the source repository.
      assert.ok(pushed.blobs.some((b) => b.status === 'mounted'));
      assert.ok(pushed.blobs.some((b) => b.status === 'pushed'));
      const back = await openRegistryImage(ref('multi/bb-conf:1'));
      assert.equal((await back.config()).architecture, 'amd64');
      const r = await verify(back, { keys: String(out.artifacts.get('keys.json')!.data) });
      assert.equal(r.ok, true, JSON.stringify(r.findings));
      assert.ok(out.state.get(PROTECTION)?.manifestPath);
    } finally {
      await out.dispose();
    }
  } finally {
    s.done();
  }
});

test('the python image: pushed, pulled back with its tree; skopeo copies it out with the same digest', { skip: registryTool.skip || pythonImageSkip || skopeo.skip }, async () => {
  const s = scratch();
  try {
    const img = await openImage(pythonImageRef);
    const res = await pushImage(img, ref('py/python:1'));
    const back = await openRegistryImage(ref('py/python:1'));
    assert.equal(await back.digest(), res.digest);
    assert.equal(await treeOf(back), await treeOf(img));
    execFileSync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/py/python:1`, `oci:${s.dir}/py:py`], { stdio: 'pipe' });
    assert.equal(JSON.parse(readFileSync(path.join(s.dir, 'py', 'index.json'), 'utf8')).manifests[0].digest, res.digest);
  } finally {
    s.done();
  }
});

test('clear errors: no such tag, no such repository, a server that is not a registry', { skip: registryTool.skip }, async () => {
  await pushImage(await openImage(`oci:${bbOci}:latest`), ref('err/bb:1'));
  await assert.rejects(openRegistryImage(ref('err/bb:nope')), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'REGISTRY_NOT_FOUND');
    assert.match(e.message, new RegExp(`registry ${reg.host.replace(/\./g, '\\.')}, repository err/bb, manifest nope: GET manifest: 404 no such tag or manifest: MANIFEST_UNKNOWN`));
    return true;
  });
  await assert.rejects(openRegistryImage(ref('err/none:1')), (e: Error & { code?: string }) => e.code === 'REGISTRY_NOT_FOUND' && /repository err\/none/.test(e.message));
  // A web server is not a registry.
  for (const [status, type, body] of [[200, 'text/html', '<html>hello</html>'], [404, 'text/plain', 'not here']] as const) {
    const web = http.createServer((_q, r) => r.writeHead(status, { 'content-type': type }).end(body));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(web.address() as { port: number }).port}`;
      await assert.rejects(openRegistryImage(parseRegistryReference(`${host}/app:1`)), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'REGISTRY_NOT_OCI');
        assert.match(e.message, new RegExp(`http://${host} is not an OCI distribution registry`));
        return true;
      });
    } finally {
      web.close();
    }
  }
});

test('a layout copied from the registry by our pull equals the source, blob for blob', { skip: registryTool.skip }, async () => {
  const s = scratch();
  try {
    await pushImage(await openImage(`oci:${bbOci}:latest`), ref('layout/bb:1'));
    const { writeOciLayout } = await import('../../lib/store/oci-layout.js');
    await writeOciLayout(await openRegistryImage(ref('layout/bb:1')), { transport: 'oci', dir: path.join(s.dir, 'out'), tag: 'x' });
    for (const d of JSON.parse(readFileSync(path.join(bbOci, 'index.json'), 'utf8')).manifests) {
      assert.ok(readFileSync(path.join(s.dir, 'out', 'blobs', 'sha256', d.digest.slice(7))).equals(readFileSync(path.join(bbOci, 'blobs', 'sha256', d.digest.slice(7)))));
    }
  } finally {
    s.done();
  }
});

test('a corrupt blob in the source is refused by the registry (it verifies every upload); the tag is not created', { skip: registryTool.skip }, async () => {
  const s = scratch();
  try {
    // Blobs no repository holds (a known one would be mounted: the registry's own good copy).
    const src = path.join(s.dir, 'src');
    const { writeOciLayout } = await import('../../lib/store/oci-layout.js');
    await writeOciLayout(await randomImage(s.dir, 300_000), { transport: 'oci', dir: src, tag: 'latest' });
    const idx = JSON.parse(readFileSync(path.join(src, 'index.json'), 'utf8'));
    const m = JSON.parse(readFileSync(path.join(src, 'blobs', 'sha256', idx.manifests[0].digest.slice(7)), 'utf8'));
    const layer = m.layers[0].digest as string;
    const f = path.join(src, 'blobs', 'sha256', layer.slice(7));
    const b = readFileSync(f);
    b[1000] ^= 0xff;
    writeFileSync(f, b);
    await assert.rejects(pushImage(await openImage(`oci:${src}:latest`), ref('corrupt/bb:1')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'BLOB_DIGEST_MISMATCH');
      assert.match(e.message, new RegExp(`blob ${layer.slice(0, 19)}.*DIGEST_INVALID.*do not match its digest ${layer}`));
      return true;
    });
    await assert.rejects(openRegistryImage(ref('corrupt/bb:1')), (e: Error & { code?: string }) => e.code === 'REGISTRY_NOT_FOUND');
  } finally {
    s.done();
  }
});
