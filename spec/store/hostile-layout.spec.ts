/**
 * Hostile source layouts, generated here: blobs that are symlinks to host files (with made-up
 * digests of the right size), FIFOs, corrupt compressed streams, deeply nested JSON, and tar
 * headers that used to hang the reader. What is attacked: no message ever quotes bytes (or the
 * digest) of a blob whose digest did not verify; every failure is an EnclavifyError with a code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { copyImage, openImage } from '../../lib/store/index.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import { readTar } from '../../lib/fs/tar-read.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { runCli } from '../helpers/cli.js';
import { archive, base256, fileEntry, header, padded, paxHeader } from '../../fuzz/tar-build.js';
import { compressLayer, sha256, writeLayout, type LayoutSpec } from '../../fuzz/layout-build.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-hostile-layout-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const layout = (spec: LayoutSpec) => writeLayout(path.join(tmp, `l${n++}`), spec);
const dest = () => `oci:${path.join(tmp, `out${n++}`)}:x`;

/** Runs `fn`, expects an EnclavifyError with `code`, returns it. */
async function refused(code: string, fn: () => Promise<unknown>): Promise<EnclavifyError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof EnclavifyError, `not an EnclavifyError: ${String((e as Error)?.stack ?? e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** Opens, scans every layer and copies: all a reading command does with a source. */
async function readAll(ref: string, opts: { followBlobSymlinks?: boolean } = {}): Promise<void> {
  const img = await openImage(ref, opts);
  await img.config();
  await layersRootFs(await img.layers());
  await copyImage(ref, dest(), opts);
}

/** Asserts that `message` shows nothing of `secret`: no line of it, no 8-byte run, not its digest. */
function assertNoLeak(message: string, secret: Buffer): void {
  assert.ok(!message.includes(sha256(secret).slice(7, 19)), `message shows the target's digest: ${message}`);
  const text = secret.toString('latin1');
  for (let i = 0; i + 8 <= text.length; i += 4) {
    const run = text.slice(i, i + 8);
    if (/^[\x20-\x7e]+$/.test(run) && !/^[ 0]+$/.test(run)) assert.ok(!message.includes(run), `message quotes ${JSON.stringify(run)}: ${message}`);
  }
}

// A "host file" with secret-looking content: a shadow file, which is also a plausible tar header
// start (its first bytes land in the name field), padded to whole tar blocks.
const shadow = Buffer.alloc(2048);
Buffer.from('root:*:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\nsecretuser:$6$Hh1kV9xQ$wKJfRt:20228:0:99999:7:::\n').copy(shadow);
const hostFile = path.join(tmp, 'shadow');
writeFileSync(hostFile, shadow);
const madeUp = 'sha256:' + 'ab'.repeat(32);

test('attack: a layer blob symlinked to a host file is refused, naming the blob; followed, only the mismatch is told', async () => {
  for (const compression of ['none', 'gzip'] as const) {
    const l = layout({ layers: [{ tar: archive(fileEntry('a', 'x')), compression, digest: madeUp, size: shadow.length, symlinkTo: hostFile }] });
    let e = await refused('BLOB_SYMLINK', () => readAll(l.ref));
    assert.ok(e.message.includes(madeUp), e.message);
    assert.match(e.message, /followBlobSymlinks/);
    assertNoLeak(e.message, shadow);
    e = await refused('BLOB_DIGEST_MISMATCH', () => readAll(l.ref, { followBlobSymlinks: true }));
    assert.ok(e.message.includes(madeUp) && e.message.includes(`${shadow.length}-byte`), e.message);
    assertNoLeak(e.message, shadow);
    // the CLI: refused without the flag, the mismatch with it; nothing of the file on any stream
    for (const cmd of [['tree', l.ref], ['copy', l.ref, dest()], ['inspect', l.ref]]) {
      const r = await runCli(cmd);
      if (cmd[0] !== 'inspect') {
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /symlink/);
      }
      assertNoLeak(r.stdout + r.stderr, shadow);
      const f = await runCli([cmd[0], '--follow-blob-symlinks', ...cmd.slice(1)]);
      if (cmd[0] !== 'inspect') {
        assert.equal(f.code, 1, f.stderr);
        assert.match(f.stderr, /does not match its content/);
      }
      assertNoLeak(f.stdout + f.stderr, shadow);
    }
  }
});

test('attack: the symlinked host file is a tar with a made-up digest: the reader\'s findings are held, only the mismatch is told', async () => {
  // A well-formed tar whose second header is broken: read, it would first yield "secret-name-1"
  // and then fail quoting header bytes, unless errors wait for the digest.
  const hostTar = Buffer.concat([fileEntry('secret-name-1', 'TOPSECRET-CONTENT'), header({ name: 'secret-name-2', raw: { size: base256(-1n, 12) } }), Buffer.alloc(1024)]);
  const f = path.join(tmp, 'host.tar');
  writeFileSync(f, hostTar);
  for (const compression of ['none', 'gzip'] as const) {
    const stored = compressLayer(hostTar, compression);
    const g = path.join(tmp, `host.${compression}`);
    writeFileSync(g, stored);
    const l = layout({ layers: [{ tar: hostTar, compression, digest: madeUp, size: stored.length, symlinkTo: g }] });
    const e = await refused('BLOB_DIGEST_MISMATCH', () => readAll(l.ref, { followBlobSymlinks: true }));
    assertNoLeak(e.message, hostTar);
    assert.ok(!e.message.includes('secret-name'), e.message);
    // read as encryptFS and verify read layers: the tar reader itself holds its error
    const direct = await refused('BLOB_DIGEST_MISMATCH', async () => {
      const [layer] = await (await openImage(l.ref, { followBlobSymlinks: true })).layers();
      for await (const { content } of readTar(await layer.uncompressed(), { source: layer.name })) if (content) for await (const _ of content) void _;
    });
    assertNoLeak(direct.message, hostTar);
    assert.ok(!direct.message.includes('secret-name'), direct.message);
  }
  // the same tar, honestly digested: the reader's error is told, naming the layer and the entry
  const honest = layout({ layers: [{ tar: hostTar, compression: 'gzip' }] });
  const e = await refused('TAR_BAD_NUMBER', () => readAll(honest.ref));
  assert.match(e.message, /layer \d+ .*"secret-name-2".*size field is negative/);
});

test('attack: a config blob symlinked to a host file: refused; followed, the mismatch without a byte of it', async () => {
  const jsonish = Buffer.from('{"user":"root","password":"hunter2-hunter2"' + ' '.repeat(40) + '}}}');
  const f = path.join(tmp, 'config-like.json');
  writeFileSync(f, jsonish);
  const l = layout({ layers: [{ tar: archive(fileEntry('a', 'x')) }], configDigest: madeUp, configSymlinkTo: f, config: jsonish });
  let e = await refused('BLOB_SYMLINK', () => readAll(l.ref));
  assertNoLeak(e.message, jsonish);
  e = await refused('BLOB_DIGEST_MISMATCH', () => readAll(l.ref, { followBlobSymlinks: true }));
  assertNoLeak(e.message, jsonish);
});

test('a blob symlink that is followed and verifies is read (stores that deduplicate by linking)', async () => {
  const tar = archive(fileEntry('app/hello', 'hello'));
  const blob = compressLayer(tar, 'gzip');
  const f = path.join(tmp, 'dedup-blob');
  writeFileSync(f, blob);
  const l = layout({ layers: [{ tar, blob, symlinkTo: f }] });
  await refused('BLOB_SYMLINK', () => readAll(l.ref));
  await readAll(l.ref, { followBlobSymlinks: true });
});

test('a blob that is a FIFO is refused without blocking on it, followed or not', async () => {
  const fifo = path.join(tmp, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const l = layout({ layers: [{ tar: archive(fileEntry('a', 'x')), digest: madeUp, size: 1024, symlinkTo: fifo }] });
  await refused('BLOB_SYMLINK', () => readAll(l.ref));
  const e = await refused('BAD_LAYOUT', () => readAll(l.ref, { followBlobSymlinks: true }));
  assert.match(e.message, /not a regular file/);
  // index.json and oci-layout as FIFOs: refused too, not waited on
  for (const f of ['index.json', 'oci-layout']) {
    const m = layout({ layers: [{ tar: archive(fileEntry('a', 'x')) }] });
    rmSync(path.join(m.dir, f));
    execFileSync('mkfifo', [path.join(m.dir, f)]);
    const x = await refused('BAD_LAYOUT', () => readAll(m.ref));
    assert.match(x.message, new RegExp(`${f}: not a regular file`));
  }
});

test('corrupt gzip and zstd streams: BAD_LAYER naming the layer when the digest is right; only the mismatch when it is not', async () => {
  const tar = archive(fileEntry('a', 'x'.repeat(5000)));
  for (const c of ['gzip', 'zstd'] as const) {
    const good = compressLayer(tar, c);
    const bad = Buffer.from(good);
    for (let i = 4; i < Math.min(bad.length, 40); i++) bad[i] ^= 0x5a;
    const honest = layout({ layers: [{ tar, compression: c, blob: bad }] });
    const e = await refused('BAD_LAYER', () => readAll(honest.ref));
    assert.match(e.message, /layer \d+ \(sha256:/);
    const lying = layout({ layers: [{ tar, compression: c, blob: bad, digest: madeUp }] });
    const m = await refused('BLOB_DIGEST_MISMATCH', () => readAll(lying.ref));
    assert.ok(!/decompress|header check|zstd/i.test(m.message), m.message);
  }
});

test('deeply nested JSON is refused naming the document, not with a stack overflow', async () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const deepObj = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
  const base = { layers: [{ tar: archive(fileEntry('a', 'x')) }] };
  let e = await refused('JSON_TOO_DEEP', () => readAll(layout({ ...base, config: deepObj }).ref));
  assert.match(e.message, /config/);
  e = await refused('JSON_TOO_DEEP', () => readAll(layout({ ...base, config: `{"rootfs":{"diff_ids":[]},"x":${deep}}` }).ref));
  e = await refused('JSON_TOO_DEEP', () => readAll(layout({ ...base, manifest: deepObj }).ref));
  assert.match(e.message, /manifest/);
  e = await refused('JSON_TOO_DEEP', () => readAll(layout({ ...base, index: deepObj }).ref));
  assert.match(e.message, /index\.json/);
  e = await refused('JSON_TOO_DEEP', () => readAll(layout({ ...base, ociLayout: '['.repeat(100) + ']'.repeat(100) }).ref));
  assert.match(e.message, /oci-layout/);
  // 64 levels are fine; brackets inside strings do not count
  const ok = `{"rootfs":{"type":"layers","diff_ids":[]},"x":${'['.repeat(60)}"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["${']'.repeat(60)}}`;
  await openImage(layout({ layers: [], config: ok }).ref).then((i) => i.config());
});

test('malformed JSON errors say where, never what the bytes are', async () => {
  const e = await refused('BAD_JSON', () => readAll(layout({ layers: [{ tar: archive(fileEntry('a', 'x')) }], index: '{"schemaVersion":2,"manifests":[SECRETSECRET]}' }).ref));
  assert.ok(!e.message.includes('SECRET'), e.message);
  assert.match(e.message, /index\.json: malformed JSON/);
});

test('tar headers that used to hang or mislead, end to end: refused naming the layer and the entry', async () => {
  const negative = archive(header({ name: 'evil', raw: { size: base256(-1n, 12) } }), padded(Buffer.from('x')));
  let e = await refused('TAR_BAD_NUMBER', () => readAll(layout({ layers: [{ tar: negative }] }).ref));
  assert.match(e.message, /layer \d+ .*"evil"/);
  const r = await runCli(['tree', layout({ layers: [{ tar: negative, compression: 'zstd' }] }).ref]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /size field/);
  const long = archive(paxHeader({ path: `app/${'n'.repeat(300)}` }), fileEntry('x', 'data'));
  e = await refused('TAR_PATH_TOO_LONG', () => readAll(layout({ layers: [{ tar: long }] }).ref));
  assert.ok(e.message.length < 500, e.message);
});

// Findings of the fuzzer (fuzz/), kept as regressions.
test('fuzz findings: non-string diff_ids, huge tags and digests: coded errors with bounded messages', async () => {
  const tar = archive(fileEntry('a', 'x'));
  // diff_ids of the wrong type made shortDigest throw a TypeError
  let e = await refused('BAD_CONFIG', () => readAll(layout({ layers: [{ tar }], config: JSON.stringify({ rootfs: { type: 'layers', diff_ids: [{ a: 1 }] } }) }).ref));
  assert.match(e.message, /diff_ids\[0\]/);
  // a 5000-character tag in index.json was quoted whole in NOT_FOUND
  const l = layout({ layers: [{ tar }] });
  const idx = JSON.parse(readFileSync(path.join(l.dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
  idx.manifests[0].annotations['org.opencontainers.image.ref.name'] = 'x'.repeat(5000);
  writeFileSync(path.join(l.dir, 'index.json'), JSON.stringify(idx));
  e = await refused('NOT_FOUND', () => readAll(l.ref));
  assert.ok(e.message.length < 400, `${e.message.length} characters`);
  // a 5000-character digest in a manifest was quoted whole in BAD_DIGEST
  const bad = layout({ layers: [{ tar }], manifest: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'x'.repeat(5000), size: 2 }, layers: [] }) });
  e = await refused('BAD_DIGEST', () => readAll(bad.ref));
  assert.ok(e.message.length < 400, `${e.message.length} characters`);
});

test('an uncompressed layer: an entry size running past the blob is refused before anything is read', async () => {
  const tar = archive(header({ name: 'big', size: 1 << 30 }));
  const e = await refused('TAR_TRUNCATED', () => readAll(layout({ layers: [{ tar, compression: 'none' }] }).ref));
  assert.match(e.message, /past the end of the \d+-byte archive/);
});

test('every command that reads images takes --follow-blob-symlinks and explains it', async () => {
  for (const cmd of ['convert', 'sign', 'verify', 'inspect', 'copy', 'tree']) {
    const r = await runCli([cmd, '--help']);
    assert.match(r.stdout + r.stderr, /--follow-blob-symlinks/, cmd);
  }
});

test('attack through convert: the symlinked blob is refused; followed, only the mismatch is told', async () => {
  const l = layout({ layers: [{ tar: archive(fileEntry('a', 'x')), digest: madeUp, size: shadow.length, symlinkTo: hostFile }] });
  const out = path.join(tmp, `conv${n++}`);
  let r = await runCli(['convert', '--from', l.ref, '--to', `oci:${out}:x`, '--output-dir', out + '-art']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /is a symlink in the layout/);
  assertNoLeak(r.stdout + r.stderr, shadow);
  r = await runCli(['convert', '--follow-blob-symlinks', '--from', l.ref, '--to', `oci:${out}:x`, '--output-dir', out + '-art']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /does not match its content/);
  assertNoLeak(r.stdout + r.stderr, shadow);
});
