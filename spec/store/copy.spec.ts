/**
 * Copying images between transports, checked with real tools: umoci unpacks what we write and the
 * result equals the fixture's expected tree; skopeo inspects it; every JSON document validates
 * against the official OCI schemas. Corrupt input fails clearly and leaves no destination.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { tool } from '../helpers/tools.js';
import { bbArchive, bbOci, bbZstd, expectedTree, scratch, umociUnpack, writableCopy } from '../helpers/images.js';
import { diskTree } from '../helpers/disk-tree.js';
import { ociSchemaErrors } from '../helpers/oci-schema.js';

const umoci = tool('umoci');
const skopeo = tool('skopeo');
const expected = readFileSync(expectedTree, 'utf8');

/** Every JSON document of a layout validates against the OCI schemas. */
function validateLayout(dir: string): void {
  assert.deepEqual(ociSchemaErrors('image-layout', JSON.parse(readFileSync(path.join(dir, 'oci-layout'), 'utf8'))), []);
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  assert.deepEqual(ociSchemaErrors('image-index', index), []);
  for (const d of index.manifests) {
    const m = JSON.parse(readFileSync(path.join(dir, 'blobs', 'sha256', d.digest.slice(7)), 'utf8'));
    assert.deepEqual(ociSchemaErrors('image-manifest', m), [], `manifest ${d.digest}`);
    const c = JSON.parse(readFileSync(path.join(dir, 'blobs', 'sha256', m.config.digest.slice(7)), 'utf8'));
    assert.deepEqual(ociSchemaErrors('config', c), [], `config ${m.config.digest}`);
  }
}

test('copy of the OCI fixture keeps its manifest digest and byte-identical blobs', async () => {
  const s = scratch();
  try {
    const src = JSON.parse(readFileSync(path.join(bbOci, 'index.json'), 'utf8')).manifests[0].digest;
    const r = await runCli(['copy', `oci:${bbOci}:latest`, `oci:${s.dir}/out:copy`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, src);
    for (const f of readdirSync(path.join(bbOci, 'blobs', 'sha256'))) {
      assert.ok(readFileSync(path.join(s.dir, 'out', 'blobs', 'sha256', f)).equals(readFileSync(path.join(bbOci, 'blobs', 'sha256', f))), f);
    }
    validateLayout(path.join(s.dir, 'out'));
  } finally {
    s.done();
  }
});

test('docker-archive -> OCI: umoci unpacks the expected tree; skopeo inspects it', { skip: umoci.skip || skopeo.skip }, async () => {
  const s = scratch();
  try {
    const r = await runCli(['copy', '--json', `docker-archive:${bbArchive}`, `oci:${s.dir}/out:bb`]);
    assert.equal(r.code, 0, r.stderr);
    const res = cliJson(r.stdout);
    assert.match(res.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(res.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    validateLayout(path.join(s.dir, 'out'));
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${s.dir}/out:bb`], { encoding: 'utf8' }));
    assert.equal(inspect.Digest, res.digest);
    assert.equal(inspect.Layers.length, 3);
    const rootfs = umociUnpack(`${s.dir}/out:bb`, path.join(s.dir, 'bundle'));
    assert.equal(diskTree(rootfs), expected);
  } finally {
    s.done();
  }
});

test('zstd OCI -> OCI keeps zstd layers; re-encoded to gzip by skopeo, umoci unpacks the expected tree', { skip: umoci.skip || skopeo.skip }, async () => {
  const s = scratch();
  try {
    const r = await runCli(['copy', `oci:${bbZstd}`, `oci:${s.dir}/out:z`]);
    assert.equal(r.code, 0, r.stderr);
    validateLayout(path.join(s.dir, 'out'));
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${s.dir}/out:z`], { encoding: 'utf8' }));
    assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType.endsWith('+zstd')));
    execFileSync('skopeo', ['copy', '--dest-compress', '--dest-compress-format', 'gzip', `oci:${s.dir}/out:z`, `oci:${s.dir}/gz:z`], { stdio: 'pipe' });
    const rootfs = umociUnpack(`${s.dir}/gz:z`, path.join(s.dir, 'bundle'));
    assert.equal(diskTree(rootfs), expected);
  } finally {
    s.done();
  }
});

test('writing into an existing layout keeps its other tags', async () => {
  const s = scratch();
  try {
    const out = `${s.dir}/out`;
    assert.equal((await runCli(['copy', `oci:${bbOci}:latest`, `oci:${out}:one`])).code, 0);
    assert.equal((await runCli(['copy', `docker-archive:${bbArchive}`, `oci:${out}:two`])).code, 0);
    assert.equal((await runCli(['copy', `oci:${bbOci}:latest`, `oci:${out}:one`])).code, 0);
    const tags = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')).manifests.map((d: { annotations: Record<string, string> }) => d.annotations['org.opencontainers.image.ref.name']);
    assert.deepEqual(tags.sort(), ['one', 'two']);
    assert.ok(!existsSync(path.join(out, 'index.json.lock')));
    assert.deepEqual(readdirSync(path.join(out, 'blobs', 'sha256')).filter((f) => f.includes('.tmp')), []);
  } finally {
    s.done();
  }
});

test('two concurrent writers into one layout both land (the lock serialises index.json)', async () => {
  const s = scratch();
  try {
    const out = `${s.dir}/out`;
    const rs = await Promise.all(['a', 'b', 'c'].map((t) => runCli(['copy', `oci:${bbOci}:latest`, `oci:${out}:${t}`])));
    assert.deepEqual(rs.map((r) => r.code), [0, 0, 0]);
    const tags = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')).manifests.map((d: { annotations: Record<string, string> }) => d.annotations['org.opencontainers.image.ref.name']);
    assert.deepEqual(tags.sort(), ['a', 'b', 'c']);
  } finally {
    s.done();
  }
});

test('a corrupted layer blob fails naming the blob, and leaves no destination', async () => {
  const s = scratch();
  try {
    const src = writableCopy(bbOci, path.join(s.dir, 'src'));
    const m = JSON.parse(readFileSync(path.join(src, 'blobs', 'sha256', JSON.parse(readFileSync(path.join(src, 'index.json'), 'utf8')).manifests[0].digest.slice(7)), 'utf8'));
    const layer = m.layers[0].digest as string;
    const f = path.join(src, 'blobs', 'sha256', layer.slice(7));
    const b = readFileSync(f);
    b[1000] ^= 0xff;
    writeFileSync(f, b);
    const r = await runCli(['copy', `oci:${src}:latest`, `oci:${s.dir}/out:x`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`blob ${layer} does not match its content`));
    assert.match(r.stderr, /layer 0 \(/);
    assert.ok(!existsSync(path.join(s.dir, 'out')), 'no destination left behind');
  } finally {
    s.done();
  }
});

test('a truncated blob, malformed JSON and unknown media types fail clearly', async () => {
  const s = scratch();
  try {
    const src = writableCopy(bbOci, path.join(s.dir, 'src'));
    const idx = JSON.parse(readFileSync(path.join(src, 'index.json'), 'utf8'));
    const mpath = path.join(src, 'blobs', 'sha256', idx.manifests[0].digest.slice(7));
    const m = JSON.parse(readFileSync(mpath, 'utf8'));
    // Truncated layer.
    const lf = path.join(src, 'blobs', 'sha256', m.layers[1].digest.slice(7));
    const orig = readFileSync(lf);
    writeFileSync(lf, orig.subarray(0, 100));
    let r = await runCli(['copy', `oci:${src}:latest`, `oci:${s.dir}/out:x`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /truncated: 100 of 246 bytes/);
    assert.ok(!existsSync(path.join(s.dir, 'out')));
    writeFileSync(lf, orig);
    // Malformed index.json.
    writeFileSync(path.join(src, 'index.json'), '{"schemaVersion": 2, "manifests": [');
    r = await runCli(['copy', `oci:${src}:latest`, `oci:${s.dir}/out:x`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /index\.json: malformed JSON/);
    // Unknown layer media type (manifest rewritten, index pointing at it).
    m.layers[0].mediaType = 'application/vnd.example.unknown';
    const mb = Buffer.from(JSON.stringify(m));
    const { createHash } = await import('node:crypto');
    const md = createHash('sha256').update(mb).digest('hex');
    writeFileSync(path.join(src, 'blobs', 'sha256', md), mb);
    idx.manifests[0] = { ...idx.manifests[0], digest: `sha256:${md}`, size: mb.length };
    writeFileSync(path.join(src, 'index.json'), JSON.stringify(idx));
    r = await runCli(['tree', `oci:${src}:latest`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unsupported layer media type application\/vnd\.example\.unknown/);
    // Missing tag.
    r = await runCli(['tree', `oci:${src}:nope`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no image tagged nope \(tags: latest\)/);
  } finally {
    s.done();
  }
});

test('usage errors exit 2 and show the accepted reference forms', async () => {
  const r = await runCli(['copy', 'nonsense', 'oci:/tmp/x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /accepted forms/);
  assert.equal((await runCli(['copy', '--bogus'])).code, 2);
  assert.equal((await runCli(['nosuchcommand'])).code, 2);
  const h = await runCli(['copy', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: enclavify copy/);
});

test('OCI -> docker-archive: skopeo reads it back, and umoci unpacks its copy to the expected tree', { skip: umoci.skip || skopeo.skip }, async () => {
  const s = scratch();
  try {
    const file = path.join(s.dir, 'bb.tar');
    const r = await runCli(['copy', `oci:${bbOci}:latest`, `docker-archive:${file}:example.org/bb:v1`]);
    assert.equal(r.code, 0, r.stderr);
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' }));
    assert.equal(inspect.Layers.length, 3);
    execFileSync('skopeo', ['copy', `docker-archive:${file}`, `oci:${s.dir}/back:b`], { stdio: 'pipe' });
    assert.equal(diskTree(umociUnpack(`${s.dir}/back:b`, path.join(s.dir, 'bundle'))), expected);
    // And our own reader, by name.
    const t = await runCli(['tree', `docker-archive:${file}:example.org/bb:v1`]);
    assert.equal(t.stdout + '\n', expected);
  } finally {
    s.done();
  }
});
