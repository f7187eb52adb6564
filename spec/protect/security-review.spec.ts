/**
 * Adversarial security review of the protection guarantees (encryptFS, verify, the Gramine
 * manifest, signing, the CLI's handling of keys). Every confirmed problem is a test marked
 * `{ todo: 'security: ...' }`: it states the behaviour we want and fails (as a TODO, so the suite
 * stays green) until the problem is fixed. Tests without `todo` pin properties the review checked
 * and found to hold.
 *
 * Parser differentials (tests 'tar ...') were confirmed during the review against Go's
 * archive/tar (the parser of containerd, Docker, podman and umoci) and with `umoci unpack`, which
 * extracted the backdoored /app/server.sh from layers that `verify` accepted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { openImage, pipeline, type Image, type LayerItem, type Transform } from '../../lib/index.js';
import type { Draft } from '../../lib/transforms/pipeline.js';
import type { CryptoBackend } from '../../lib/crypto/backend.js';
import { nodeBackend } from '../../lib/crypto/node.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import { buildLayer } from '../../lib/oci/layer.js';
import { encryptProtectedFile } from '../../lib/protect/pf/index.js';
import { MANIFEST_PATH } from '../../lib/protect/manifest.js';
import { verify, type VerifyResult } from '../../lib/protect/verify.js';
import { formatFindings } from '../../lib/cli/format.js';
import { fileClassify, type ClassificationReport } from '../../lib/transforms/file-classify.js';
import { encryptFS, type EncryptReport } from '../../lib/transforms/encrypt-fs.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { PROTECTION, type Protection } from '../../lib/transforms/state.js';
import { gramine, signGramineImage, type GramineOptions } from '../../lib/runtimes/gramine/index.js';
import { runCli } from '../helpers/cli.js';
import { bbOci, scratch } from '../helpers/images.js';
import { standInRuntime, testKey, toml } from '../runtimes/gramine-helpers.js';
import { addLayer, bbRef, convert, editInPlace, fileItem, layerEntries, modify, readImageFiles, sha256, whiteout, type Converted } from './encrypt-helpers.js';
import { progressTo } from '../helpers/progress.js';

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let shared: Promise<Converted> | undefined;
/** bb-fixture converted with --dir /app/data (shared, read-only). */
const converted = () =>
  (shared ??= convert().then((c) => {
    cleanup.push(() => c.result.dispose());
    return c;
  }));

/** Applies transforms to an image; disposed at the end. */
async function attacked(image: Image, ...t: Transform[]): Promise<Image> {
  const out = await modify(image, ...t);
  cleanup.push(() => out.dispose());
  return out.image;
}

/** A scratch directory, removed at the end. */
function tmp(): string {
  const s = scratch('enclavify-secrev-');
  cleanup.push(s.done);
  return s.dir;
}

/** Whether verify reports something or refuses the image outright. */
async function detected(run: () => Promise<VerifyResult>): Promise<boolean> {
  try {
    return !(await run()).ok;
  } catch {
    return true; // refusing to read the image is fine too
  }
}

const link = (p: string, target: string): LayerItem => ({ entry: { path: p, type: 'symlink', linkname: target, mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0 } });

/** A layer built from raw tar bytes, added on top. */
const rawLayer = (name: string, tar: Buffer): Transform => ({
  name,
  async apply(d: Draft) {
    d.addLayer(await buildLayer({ tar: Readable.from([tar]), tmpDir: d.tmpDir, name, compression: 'gzip' }), { createdBy: name });
  },
});

/** A layer of exactly these items (no parent directories added). */
const exactLayer = (name: string, items: LayerItem[]): Transform => ({
  name,
  async apply(d: Draft) {
    d.addLayer(await d.buildLayer(items, name), { createdBy: name });
  },
});

/** Edits the image config. */
const configEdit = (fn: (d: Draft) => void): Transform => ({ name: 'config', apply: async (d: Draft) => fn(d) });

// ---- raw tar, for entries our writer would never produce ----

function tarHeader(o: { name: string; flag: string; size?: number; mode?: number; linkname?: string; gnu?: boolean }): Buffer {
  const h = Buffer.alloc(512);
  h.write(o.name, 0, 100, 'utf8');
  h.write((o.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100, 8, 'latin1');
  h.write('0000000\0', 108, 8, 'latin1');
  h.write('0000000\0', 116, 8, 'latin1');
  h.write((o.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 12, 'latin1');
  h.write('00000000000\0', 136, 12, 'latin1');
  h.write('        ', 148, 8, 'latin1');
  h.write(o.flag, 156, 1, 'latin1');
  if (o.linkname) h.write(o.linkname, 157, 100, 'utf8');
  if (o.gnu) h.write('ustar  \0', 257, 8, 'latin1');
  else h.write('ustar\x0000', 257, 8, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}
const padded = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
function paxHeader(records: Record<string, string>, flag: 'x' | 'g' = 'x'): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const base = Buffer.byteLength(`${k}=${v}\n`) + 1;
    let len = base + String(base).length;
    if (String(len).length !== String(base).length) len = base + String(len).length;
    body += `${len} ${k}=${v}\n`;
  }
  const b = Buffer.from(body);
  return Buffer.concat([tarHeader({ name: 'PaxHeaders/0', flag, size: b.length }), padded(b)]);
}
function gnuLongName(name: string): Buffer {
  const b = Buffer.from(name + '\0');
  return Buffer.concat([tarHeader({ name: '././@LongLink', flag: 'L', size: b.length, gnu: true }), padded(b)]);
}
function tarFile(name: string, content: string, mode = 0o644): Buffer {
  const c = Buffer.from(content);
  return Buffer.concat([tarHeader({ name, flag: '0', size: c.length, mode }), padded(c)]);
}
const tarEnd = () => Buffer.alloc(1024);

const EVIL = '#!/bin/sh\necho PWNED\n';

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

test('verify --keys FILE checks the manifest against the digest recorded in the keys file', async () => {
  // lib/protect/verify.ts only compares with expectedManifestSha256; parseKeysFile drops
  // keys.json's manifest.sha256, and `enclavify verify` passes none by default. An attacker who
  // rewrites the manifest consistently passes verify.
  const conv = await converted();
  const keysText = String(conv.result.artifacts.get('keys.json')!.data);
  assert.equal(JSON.parse(keysText).manifest.sha256, conv.protection.manifestSha256);
  const blessed = await attacked(
    conv.image,
    addLayer([fileItem('app/server.sh', EVIL, 0o755)]),
    editInPlace({
      [MANIFEST_PATH]: (b) => {
        const m = JSON.parse(b.toString());
        const f = m.files.find((x: { path: string }) => x.path === '/app/server.sh');
        f.sha256 = sha256(Buffer.from(EVIL));
        f.size = EVIL.length;
        return Buffer.from(JSON.stringify(m));
      },
    }),
  );
  const missed: string[] = [];
  if (!(await detected(() => verify(blessed, { keys: keysText })))) missed.push('backdoored entrypoint blessed in the manifest');
  // The region removed from the manifest and its file replaced by plaintext: "verified: 0 encrypted".
  const unencrypted = await attacked(
    conv.image,
    editInPlace({ '/app/data/secret.txt': () => Buffer.from('the original secret\n') }),
    editInPlace({
      [MANIFEST_PATH]: (b) => {
        const m = JSON.parse(b.toString());
        m.regions = [];
        m.rules = m.rules.filter((r: { class: string }) => r.class !== 'encrypted');
        m.files = m.files.map((f: { path: string; class: string }) => (f.class === 'encrypted' ? { path: f.path, class: 'plain' } : f));
        return Buffer.from(JSON.stringify(m));
      },
    }),
  );
  if (!(await detected(() => verify(unencrypted, { keys: keysText })))) missed.push('region removed from the manifest, its file now plaintext');
  assert.deepEqual(missed, [], 'verify --keys keys.json accepted');
  // What the findings say: the digest the keys file records, and the key no region uses.
  const codes = async (image: Image, keys: NonNullable<Parameters<typeof verify>[1]>['keys']) => (await verify(image, { keys })).findings.map((f) => f.code);
  assert.ok((await verify(blessed, { keys: keysText })).findings.some((f) => f.code === 'MANIFEST_DIGEST' && /the keys file records/.test(f.message)));
  assert.ok((await codes(unencrypted, keysText)).includes('MANIFEST_DIGEST'));
  const noRegion = await attacked(
    conv.image,
    editInPlace({
      [MANIFEST_PATH]: (b) => {
        const m = JSON.parse(b.toString());
        m.regions = [];
        m.rules = m.rules.filter((r: { class: string }) => r.class !== 'encrypted');
        m.files = m.files.map((f: { class: string; region?: string }) => (f.class === 'encrypted' ? { ...f, class: 'authenticated', region: undefined, sha256: '0'.repeat(64) } : f));
        return Buffer.from(JSON.stringify(m));
      },
    }),
  );
  assert.deepEqual((await codes(noRegion, keysText)).filter((c) => c === 'MANIFEST_DIGEST' || c.startsWith('KEY_')).sort(), ['KEY_UNUSED', 'MANIFEST_DIGEST']);
  // The untouched image verifies with the keys file alone, pinned by it; an explicit digest wins.
  const clean = await verify(conv.image, { keys: keysText });
  assert.deepEqual(clean.findings, []);
  assert.deepEqual(clean.pin, { sha256: conv.protection.manifestSha256, source: 'keys file', matched: true, amended: [] });
  assert.deepEqual((await verify(conv.image, { keys: keysText, expectedManifestSha256: '0'.repeat(64) })).findings.map((f) => f.code), ['MANIFEST_DIGEST']);
  // Keys and regions must agree both ways, with or without a keys file.
  const hex = conv.protection.keys[0].keyHex;
  assert.deepEqual(await codes(conv.image, { app_data: hex, other: '00'.repeat(16) }), ['KEY_UNUSED']);
  const moved = JSON.parse(keysText);
  moved.keys[0].regions = moved.keys[0].region = undefined;
  moved.keys[0].regions = ['/app/other'];
  assert.deepEqual(await codes(conv.image, moved), ['KEY_REGION_MISMATCH']);
});

test('tar: entries the container runtime sees are the entries verify checks', {}, async () => {
  // lib/fs/tar-read.ts:301 prefers a PAX path over a GNU long name (Go: the long name wins),
  // :342 the same for link targets, :372 skips `size` bytes behind symlinks/dirs/hard links
  // (Go: header-only types have no data, the bytes are the next headers), and applies global
  // PAX `path` records to later entries (Go returns them as an entry; containerd and Docker
  // ignore it). Each case hides a new /app/server.sh from verify, even with the manifest pinned.
  const conv = await converted();
  const hidden = tarFile('app/server.sh', EVIL, 0o755);
  const cases: Record<string, Buffer> = {
    'GNU long name over PAX path': Buffer.concat([paxHeader({ path: 'var/cache/old/c' }), gnuLongName('app/server.sh'), tarFile('var/cache/old/c', EVIL, 0o755), tarEnd()]),
    'entry hidden behind a listed symlink': Buffer.concat([tarHeader({ name: 'bin/sh', flag: '2', size: hidden.length, mode: 0o777, linkname: 'busybox' }), hidden, tarEnd()]),
    'entry hidden behind a directory': Buffer.concat([tarHeader({ name: 'app/', flag: '5', size: hidden.length, mode: 0o755 }), hidden, tarEnd()]),
    'global PAX path': Buffer.concat([paxHeader({ path: 'var/cache/old/c' }, 'g'), tarFile('app/server.sh', EVIL, 0o755), tarEnd()]),
  };
  const missed: string[] = [];
  for (const [name, tar] of Object.entries(cases)) {
    const image = await attacked(conv.image, rawLayer(name, tar));
    if (!(await detected(() => verify(image, { keys: conv.keys, expectedManifestSha256: conv.protection.manifestSha256 })))) missed.push(name);
  }
  // The same trick in a source image leaves plaintext of the region in the output blob (the
  // layer looks region-free, so it is kept byte-identical) and at /app/data at run time.
  const secret = tarFile('app/data/hidden.txt', 'TOPSECRET-hidden-behind-a-dir');
  const src = await attacked(await openImage(bbRef), rawLayer('source', Buffer.concat([tarHeader({ name: 'opt/', flag: '5', size: secret.length, mode: 0o755 }), secret, tarEnd()])));
  let c: Converted | undefined;
  try {
    c = await convert({ dirs: ['/app/data'] }, {}, src);
  } catch {
    // refusing such a layer is fine
  }
  if (c) {
    const out = c;
    cleanup.push(() => out.result.dispose());
    for (const l of await out.image.layers()) {
      const raw = Buffer.concat(await Readable.from(await l.uncompressed()).toArray());
      if (raw.includes('TOPSECRET-hidden-behind-a-dir')) missed.push(`source plaintext behind a directory entry kept in ${l.name}`);
    }
  }
  assert.deepEqual(missed, [], 'verify accepted these layers, or encryptFS kept plaintext');
});

test('verify pins modes, owners, xattrs and non-regular entries', async () => {
  // The protection manifest records no metadata (lib/protect/manifest.ts FileRecord), so verify
  // accepts a setuid or capability-carrying binary, a world-writable region, device nodes.
  const conv = await converted();
  const bb = (await readImageFiles(conv.image, ['/bin/busybox'])).get('/bin/busybox')!;
  const file = (mode: number, extra: Partial<FsEntry> = {}): LayerItem => ({ entry: { path: 'bin/busybox', type: 'file', mode, uid: 0, gid: 0, mtime: 0, size: bb.length, ...extra }, content: bb });
  const attacks: Record<string, LayerItem[]> = {
    'setuid, world-writable, other owner (same bytes)': [file(0o6777, { uid: 1000, gid: 1000 })],
    'file capability xattr (same bytes)': [file(0o755, { pax: { 'SCHILY.xattr.security.capability': Buffer.from('0100000201000000000000000000000000000000', 'hex') } })],
    'a device node and a fifo in the region': [
      { entry: { path: 'app/data/mem', type: 'chardev', mode: 0o666, uid: 0, gid: 0, mtime: 0, size: 0, devmajor: 1, devminor: 1 } },
      { entry: { path: 'app/data/pipe', type: 'fifo', mode: 0o666, uid: 0, gid: 0, mtime: 0, size: 0 } },
    ],
    'region directory made world-writable': [{ entry: { path: 'app/data', type: 'dir', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0 } }],
  };
  const missed: string[] = [];
  const found: Record<string, string[]> = {};
  for (const [name, items] of Object.entries(attacks)) {
    const image = await attacked(conv.image, addLayer(items, name));
    if (!(await detected(() => verify(image, { keys: conv.keys, expectedManifestSha256: conv.protection.manifestSha256 })))) missed.push(name);
    else found[name] = (await verify(image, { keys: conv.keys })).findings.map((f) => `${f.path}: ${f.code}: ${f.message}`);
  }
  assert.deepEqual(missed, [], 'verify accepted these changes');
  // Each finding names the path and what changed.
  assert.deepEqual(found, {
    'setuid, world-writable, other owner (same bytes)': ['/bin/busybox: METADATA_CHANGED: file metadata differs from the protection manifest: mode 0755 -> 6777, uid 0 -> 1000, gid 0 -> 1000'],
    'file capability xattr (same bytes)': ['/bin/busybox: METADATA_CHANGED: file metadata differs from the protection manifest: xattr security.capability added'],
    'a device node and a fifo in the region': [
      `/app/data/mem: UNLISTED: chardev 1,1 (mode 0666) not listed in the protection manifest (added by ${found['a device node and a fifo in the region']?.[0]?.match(/\(added by (.*)\)$/)?.[1]})`,
      `/app/data/pipe: UNLISTED: fifo (mode 0666) not listed in the protection manifest (added by ${found['a device node and a fifo in the region']?.[1]?.match(/\(added by (.*)\)$/)?.[1]})`,
    ],
    'region directory made world-writable': ['/app/data: METADATA_CHANGED: dir metadata differs from the protection manifest: mode 0755 -> 0777'],
  });
  // Symlink owners and removed directories too.
  const more = await attacked(conv.image, addLayer([{ ...link('bin/sh', 'busybox'), entry: { ...link('bin/sh', 'busybox').entry, uid: 1000 } }, whiteout('app/empty-dir')], 'more'));
  assert.deepEqual((await verify(more, { keys: conv.keys })).findings.map((f) => [f.path, f.code]), [['/app/empty-dir', 'MISSING'], ['/bin/sh', 'METADATA_CHANGED']]);
});

test('verify fails closed on writes through symlinked directories and flags duplicate paths either way', async () => {
  const conv = await converted();
  const through = await attacked(conv.image, addLayer([link('app/d2', 'data')], 'link'), exactLayer('through', [fileItem('app/d2/evil.txt', 'plaintext')]));
  await assert.rejects(verify(through, { keys: conv.keys }), { code: 'LAYER_WRITE_THROUGH_SYMLINK' });
  const sec = (await readImageFiles(conv.image, ['/app/data/secret.txt'])).get('/app/data/secret.txt')!;
  for (const order of [['plain', 'enc'], ['enc', 'plain']]) {
    const items = order.map((o) => fileItem('app/data/secret.txt', o === 'plain' ? 'the original secret\n' : sec, 0o600));
    const r = await verify(await attacked(conv.image, addLayer(items, 'dup')), { keys: conv.keys });
    assert.deepEqual(r.findings.map((f) => [f.path, f.code]), [['/app/data/secret.txt', 'PLAINTEXT_IN_REGION']], order.join(' then '));
  }
});

// ---------------------------------------------------------------------------------------------
// plaintext in the output
// ---------------------------------------------------------------------------------------------

const SECRET = 'TOPSECRET-PLAINTEXT-1234567890';

/** Layers (by index) whose entries hold SECRET in content, and whether the config does. */
async function secretHits(image: Image): Promise<{ layers: string[]; config: boolean }> {
  const layers: string[] = [];
  (await layerEntries(image)).forEach((l, i) => l.forEach(({ entry, content }) => content?.includes(SECRET) && layers.push(`layer ${i}: ${entry.path}`)));
  return { layers, config: JSON.stringify(await image.config()).includes(SECRET) };
}

test('no plaintext of a region file survives elsewhere in the layers', async () => {
  const base = await openImage(bbRef);
  // `RUN mv /build/secret.txt /app/data/`: the lower layer keeps the bytes under the old path.
  const moved = await attacked(base, addLayer([fileItem('build/secret.txt', SECRET)], 'copy'), addLayer([fileItem('app/data/moved.txt', SECRET), whiteout('build/secret.txt')], 'mv'));
  const c1 = await convert({ dirs: ['/app/data'] }, {}, moved);
  cleanup.push(() => c1.result.dispose());
  const warned = JSON.stringify(c1.result.report).includes('/build/secret.txt');
  const kept = warned ? [] : (await secretHits(c1.image)).layers;
  // Regular files named like whiteouts (aufs `.wh..wh.*`, `.wh.NAME` with content) under a region
  // are skipped by planEncryption and by verify (lib/protect/encrypt-layers.ts:87, verify.ts:224).
  const named = await attacked(base, addLayer([fileItem('app/data/.wh..wh.notes', SECRET), fileItem('app/data/.wh.gone', SECRET)]));
  const c2 = await convert({ dirs: ['/app/data'] }, {}, named);
  cleanup.push(() => c2.result.dispose());
  assert.deepEqual([...kept, ...(await secretHits(c2.image)).layers], [], 'plaintext left in these layer entries');
  // Both: the hidden copy is dropped (and said so), the whiteouts emptied; the results verify.
  assert.deepEqual((await secretHits(c1.image)).layers, []);
  const dropped = (c: Converted) => (c.result.report.encryptFS as EncryptReport).dropped.map((d) => `${d.path}: ${d.why}`);
  assert.deepEqual(dropped(c1).filter((d) => d.startsWith('/build')), ['/build/secret.txt: hidden copy of the plaintext of encrypted /app/data/moved.txt']);
  assert.deepEqual(dropped(c2).filter((d) => d.includes('.wh.')), ['/app/data/.wh..wh.notes: whiteout entry carried 30 bytes inside encrypted region /app/data', '/app/data/.wh.gone: whiteout entry carried 30 bytes inside encrypted region /app/data']);
  for (const c of [c1, c2]) assert.deepEqual((await verify(c.image, { keys: c.keys })).findings, []);
  // A visible copy outside the regions is kept, with a warning.
  const visible = await attacked(base, addLayer([fileItem('app/data/pw', SECRET), fileItem('etc/pw-copy', SECRET)]));
  const c3 = await convert({ dirs: ['/app/data'] }, {}, visible);
  cleanup.push(() => c3.result.dispose());
  assert.match((c3.result.report.encryptFS as EncryptReport).warnings.join('\n'), /\/etc\/pw-copy holds the same bytes as encrypted \/app\/data\/pw/);
  // verify reports such entries when someone else put them there.
  const c4 = await convert({ dirs: ['/app/data'] }, {}, await attacked(base, addLayer([fileItem('app/data/pw', SECRET)])));
  cleanup.push(() => c4.result.dispose());
  const planted = await attacked(
    c4.image,
    addLayer([fileItem('opt/stash', SECRET), fileItem('app/data/.wh.x', SECRET)], 'stash'),
    addLayer([whiteout('opt/stash')], 'hide'),
  );
  assert.deepEqual((await verify(planted, { keys: c4.keys })).findings.map((f) => [f.path, f.code]), [
    ['/app/data/.wh.x', 'PLAINTEXT_IN_REGION'],
    ['/opt', 'UNLISTED'],
    ['/opt/stash', 'PLAINTEXT_COPY'],
  ]);
});

test('build history that wrote region plaintext is flagged', async () => {
  const src = await attacked(
    await openImage(bbRef),
    addLayer([fileItem('app/data/pw', SECRET)]),
    configEdit((d) => {
      const h = d.config.history!;
      h[h.length - 1].created_by = `/bin/sh -c echo ${SECRET} > /app/data/pw`;
    }),
  );
  const progress: string[] = [];
  const c = await convert({ dirs: ['/app/data'] }, {}, src, { onProgress: progressTo(progress) });
  cleanup.push(() => c.result.dispose());
  const warnings = (c.result.report.fileClassify as ClassificationReport).warnings.join('\n');
  assert.ok(!(await secretHits(c.image)).config || /history/.test(warnings), 'history mentioning /app/data is neither scrubbed nor warned about');
  // Loud (stderr), and the warning never quotes the command (it may be the secret).
  assert.match(progress.join('\n'), /warning: image history entry 5 .* name encrypted region \/app\/data/);
  assert.ok(!warnings.includes(SECRET) && !progress.join('\n').includes(SECRET));
  // scrubHistory replaces the entry's text; the layers are unchanged.
  const s = await convert({ dirs: ['/app/data'] }, { scrubHistory: true }, src);
  cleanup.push(() => s.result.dispose());
  assert.equal((await secretHits(s.image)).config, false);
  assert.deepEqual((s.result.report.encryptFS as EncryptReport).historyScrubbed, [4]);
  assert.equal((await s.image.config()).history![4].created_by, 'enclavify: build step text removed (it named encrypted region /app/data)');
  const rest = (h: Array<{ created_by?: string }>) => h.filter((_, i) => i !== 4).map((e) => e.created_by);
  assert.deepEqual(rest((await s.image.config()).history!), rest((await c.image.config()).history!));
});

// ---------------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------------

test('--insecure-dev-keys warns even with --quiet, and never claims the keys are not in the image', {}, async () => {
  const dir = tmp();
  const rt = standInRuntime(path.join(dir, 'rt'));
  const common = ['convert', '--from', `oci:${bbOci}:latest`, '--dir', '/app/data', '--runtime-image', rt, '--insecure-dev-keys'];
  const quiet = await runCli([...common, '--to', `oci:${dir}/q:x`, '--output-dir', `${dir}/q-out`, '--quiet']);
  assert.equal(quiet.code, 0, quiet.stderr);
  const loud = await runCli([...common, '--to', `oci:${dir}/l:x`, '--output-dir', `${dir}/l-out`]);
  assert.equal(loud.code, 0, loud.stderr);
  const problems = [
    ...(/INSECURE/.test(quiet.stderr) ? [] : ['--quiet: no warning on stderr']),
    ...(/it is not in the image/.test(loud.stderr) ? ['stderr says the keys are not in the image'] : []),
  ];
  assert.deepEqual(problems, []);
});

test('a malformed keys file is reported without echoing key digits', async () => {
  const dir = tmp();
  // (outside the output directory: convert refuses to overwrite a keys file it was not told to)
  const file = path.join(dir, 'in-keys.json');
  const texts = [
    '{"kind":"enclavify.keys","version":1,"keys":[{"name":"app_data","key": a1b2c3d4e5f60718293a4b5c6d7e8f90}]}',
    '{"kind":"enclavify.keys","version":1,"keys":[{"name":"app_data","key":"a1b2c3d4e5f60718293a4b5c6d7e8f90"}',
    '{"kind":"enclavify.keys","version":1,"keys":[{"name":"a1b2c3d4e5f60718293a4b5c6d7e8f90!","key":"a1b2c3d4e5f60718293a4b5c6d7e8f90"}]}',
    '{"kind":"enclavify.keys","version":"a1b2c3d4e5f60718293a4b5c6d7e8f90","keys":[]}',
  ];
  for (const text of texts) {
    writeFileSync(file, text);
    for (const args of [['verify', `oci:${bbOci}:latest`, '--keys', file], ['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${dir}/o:x`, '--dir', '/app/data', '--reuse-keys', file, '--output-dir', path.join(dir, 'out')]]) {
      const r = await runCli(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /KEYS_FILE_INVALID|in-keys\.json/);
      assert.doesNotMatch(r.stderr + r.stdout, /a1b2c3/, `${args[0]} printed part of the key`);
    }
  }
});

test('keys are never written into the destination OCI layout', {}, async () => {
  const dir = tmp();
  cpSync(bbOci, `${dir}/layout`, { recursive: true });
  const r = await runCli(['convert', '--from', `oci:${dir}/layout:latest`, '--to', `oci:${dir}/layout:sgx`, '--dir', '/app/data', '--output-dir', `${dir}/layout`, '-q']);
  assert.ok(r.code !== 0 || !readdirSync(`${dir}/layout`).includes('keys.json'), 'keys.json was written inside the image layout');
});

test('keys file: mode 0600, keys in no stdout/stderr/report (also with --insecure-dev-keys --json)', async () => {
  const dir = tmp();
  const rt = standInRuntime(path.join(dir, 'rt'));
  const r = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${dir}/o:x`, '--dir', '/app/data', '--runtime-image', rt, '--insecure-dev-keys', '--output-dir', `${dir}/out`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(`${dir}/out/keys.json`).mode & 0o777, 0o600);
  const key = JSON.parse(readFileSync(`${dir}/out/keys.json`, 'utf8')).keys[0].key as string;
  assert.ok(!r.stdout.includes(key) && !r.stderr.includes(key));
  assert.ok(!readFileSync(`${dir}/out/report.json`, 'utf8').includes(key));
});

// ---------------------------------------------------------------------------------------------
// Gramine manifest
// ---------------------------------------------------------------------------------------------

/** Converts bb-fixture (plus `extra` transforms first) with the stand-in Gramine runtime. */
async function gramineConvert(opts: Partial<GramineOptions>, ...extra: Transform[]) {
  const dir = tmp();
  const rt = standInRuntime(path.join(dir, 'rt'));
  const progress: string[] = [];
  const src = extra.length ? await attacked(await openImage(bbRef), ...extra) : await openImage(bbRef);
  const out = await pipeline(src, [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt, ...opts }))], { tmpDir: dir, onProgress: progressTo(progress) });
  cleanup.push(() => out.dispose());
  return { out, progress };
}

test('--production refuses every insecure__ key and host-controlled input, not only fs.insecure__keys and loader.insecure__*', async () => {
  // lib/runtimes/gramine/runtime.ts:412 checks sgx.debug, fs.insecure__keys, allow_all_but_log and
  // "insecure__" inside loader only.
  const cases: Record<string, Partial<GramineOptions>> = {
    'sgx.insecure__allow_memfaults_without_exinfo': { manifestFragment: 'sgx.insecure__allow_memfaults_without_exinfo = true' },
    'sgx.insecure__rpc_thread_num': { manifestFragment: 'sgx.insecure__rpc_thread_num = 4' },
    'sys.insecure__allow_eventfd': { manifestFragment: 'sys.insecure__allow_eventfd = true' },
    'LD_PRELOAD from the host (fragment)': { manifestFragment: 'loader.env.LD_PRELOAD = { passthrough = true }' },
    'LD_LIBRARY_PATH from the host (passthroughEnv)': { passthroughEnv: ['LD_LIBRARY_PATH'] },
    'argv from a host-writable file': { manifestFragment: 'loader.argv_src_file = "file:/var/argv"' },
    'env from a host-writable file': { manifestFragment: 'loader.env_src_file = "file:/var/env"' },
    'untrusted_shm mount over application files': { manifestFragment: '[[fs.mounts]]\npath = "/app/static"\nuri = "dev:/dev/shm"\ntype = "untrusted_shm"' },
    'Entrypoint without SGX (gramine-direct)': { loader: 'direct' },
    'allow_all_but_log (fragment)': { manifestFragment: 'sgx.file_check_policy = "allow_all_but_log"' },
    'debug enclave (fragment)': { manifestFragment: 'sgx.debug = true' },
  };
  // Each refusal names what it refuses (the manifest key or option).
  const names: Record<string, RegExp> = {
    'sgx.insecure__allow_memfaults_without_exinfo': /sgx\.insecure__allow_memfaults_without_exinfo/,
    'sgx.insecure__rpc_thread_num': /sgx\.insecure__rpc_thread_num/,
    'sys.insecure__allow_eventfd': /sys\.insecure__allow_eventfd/,
    'LD_PRELOAD from the host (fragment)': /loader\.env\.LD_PRELOAD/,
    'LD_LIBRARY_PATH from the host (passthroughEnv)': /LD_LIBRARY_PATH/,
    'argv from a host-writable file': /loader\.argv_src_file/,
    'env from a host-writable file': /loader\.env_src_file/,
    'untrusted_shm mount over application files': /untrusted_shm/,
    'Entrypoint without SGX (gramine-direct)': /gramine-direct/,
    'allow_all_but_log (fragment)': /sgx\.file_check_policy/,
    'debug enclave (fragment)': /sgx\.debug/,
  };
  const accepted: string[] = [];
  const unclear: string[] = [];
  for (const [name, o] of Object.entries(cases)) {
    try {
      await gramineConvert({ production: true, ...o });
      accepted.push(name);
    } catch (e) {
      // refused: good
      const err = e as Error & { code?: string };
      if (err.code !== 'GRAMINE_INSECURE_IN_PRODUCTION' || !names[name].test(err.message)) unclear.push(`${name}: ${err.code}: ${err.message}`);
    }
  }
  assert.deepEqual(accepted, []);
  assert.deepEqual(unclear, []);
  // Without --production the same manifests convert, with a warning naming the key.
  const { progress } = await gramineConvert({ manifestFragment: 'sgx.insecure__rpc_thread_num = 4\nloader.env.LD_PRELOAD = { passthrough = true }' });
  assert.match(progress.join('\n'), /warning: sgx\.insecure__rpc_thread_num/);
  assert.match(progress.join('\n'), /warning: loader\.env\.LD_PRELOAD = \{ passthrough = true \}/);
});

test('code and trust anchors are never loaded from host-writable (allowed) directories', async () => {
  // /var is plain by default and becomes sgx.allowed_files "file:/var/" (host-writable,
  // unchecked). An image Env LD_LIBRARY_PATH=/var/lib/app lets the host plant libraries the
  // enclave loads; a secret-provisioning CA chain under /var lets the host impersonate the key
  // server and provision a key it knows.
  const env = configEdit((d) => {
    d.config.config!.Env = [...(d.config.config!.Env ?? []), 'LD_LIBRARY_PATH=/var/lib/app'];
  });
  const accepted: string[] = [];
  const unclear: string[] = [];
  const tryIt = async (name: string, code: string, says: RegExp, run: () => Promise<unknown>) => {
    try {
      await run();
      accepted.push(name);
    } catch (e) {
      // refused: good
      const err = e as Error & { code?: string };
      if (err.code !== code || !says.test(err.message)) unclear.push(`${name}: ${err.code}: ${err.message}`);
    }
  };
  await tryIt('LD_LIBRARY_PATH into an allowed directory', 'GRAMINE_UNTRUSTED_CODE', /LD_LIBRARY_PATH directory \/var\/lib\/app/, () => gramineConvert({ production: true }, env));
  await tryIt('CA chain in an allowed directory', 'GRAMINE_BAD_OPTIONS', /\/var\/lib\/ca\.pem/, () => gramineConvert({ production: true, secretProvisioning: { servers: 'kms:4433', caChainPath: '/var/lib/ca.pem' } }, addLayer([fileItem('var/lib/ca.pem', 'CA')])));
  // Not only in production builds: a development enclave loading the host's code protects nothing either.
  await tryIt('LD_LIBRARY_PATH into an allowed directory (no --production)', 'GRAMINE_UNTRUSTED_CODE', /\/var\/lib\/app/, () => gramineConvert({}, env));
  const preload = configEdit((d) => {
    d.config.config!.Env = [...(d.config.config!.Env ?? []), 'LD_PRELOAD=/var/lib/app/hook.so'];
  });
  await tryIt('LD_PRELOAD of a file in an allowed directory', 'GRAMINE_UNTRUSTED_CODE', /LD_PRELOAD entry \/var\/lib\/app\/hook\.so/, () => gramineConvert({}, preload));
  await tryIt('CA chain path changed to an allowed file by a fragment', 'GRAMINE_UNTRUSTED_CODE', /SECRET_PROVISION_CA_CHAIN_PATH/,
    () => gramineConvert({ secretProvisioning: { servers: 'kms:4433', caChainPath: '/etc/ca.pem' }, manifestFragment: 'loader.env.SECRET_PROVISION_CA_CHAIN_PATH = "/var/lib/ca.pem"' }, addLayer([fileItem('etc/ca.pem', 'CA'), fileItem('var/lib/ca.pem', 'CA')])));
  await tryIt('ld.so.conf directory in an allowed directory', 'GRAMINE_UNTRUSTED_CODE', /\/etc\/ld\.so\.conf directory \/var\/lib\/app/, () => gramineConvert({}, addLayer([fileItem('etc/ld.so.conf', '/var/lib/app\n')])));
  assert.deepEqual(accepted, []);
  assert.deepEqual(unclear, []);
});

test('files shipped under the default plain directories are not left unprotected silently', {}, async () => {
  const src = await attacked(await openImage(bbRef), addLayer([fileItem('var/www/html/index.php', '<?php system($_GET["c"]); ?>'), fileItem('var/lib/app/plugin.so', 'ELF')]));
  const c = await convert({ dirs: ['/app/data'] }, {}, src);
  cleanup.push(() => c.result.dispose());
  const warnings = (c.result.report.fileClassify as ClassificationReport).warnings.join('\n');
  assert.match(warnings, /\/var\/(www|lib\/app)/);
});

test('image Env and file names cannot inject manifest keys through TOML strings', async () => {
  const nasty = 'x"\n[sgx]\nfile_check_policy = "allow_all_but_log"\n#';
  const { out } = await gramineConvert(
    {},
    configEdit((d) => {
      d.config.config!.Env = [...(d.config.config!.Env ?? []), `INJECT=${nasty}`, `${nasty}=1`];
    }),
    addLayer([fileItem('etc/line\nbreak"]', 'y')]),
  );
  const m = toml((await readImageFiles(out.image, ['/gramine/app/entrypoint.manifest'])).get('/gramine/app/entrypoint.manifest')!);
  const sgx = m.sgx as Record<string, unknown>;
  assert.equal(sgx.file_check_policy, undefined);
  assert.equal((m.loader as { env: Record<string, string> }).env.INJECT, nasty);
  assert.ok((sgx.trusted_files as Array<{ uri: string }>).some((t) => t.uri === 'file:/etc/line\nbreak"]'));
});

// ---------------------------------------------------------------------------------------------
// signing
// ---------------------------------------------------------------------------------------------

test('enclavify sign does not bless tampered authenticated files', async () => {
  const { out } = await gramineConvert({});
  const protection = out.state.get(PROTECTION) as Protection;
  const keys = new Map(protection.keys.map((k) => [k.name, Buffer.from(k.keyHex, 'hex')]));
  const M = '/gramine/app/entrypoint.manifest';
  // The unsigned image in a registry: entrypoint swapped and re-pinned in the Gramine manifest.
  const tampered = await attacked(
    out.image,
    addLayer([fileItem('app/server.sh', EVIL, 0o755)]),
    editInPlace({ [M]: (b) => Buffer.from(b.toString().replace(/(uri = "file:\/app\/server\.sh"\nsha256 = ")[0-9a-f]+/, `$1${sha256(Buffer.from(EVIL))}`)) }),
  );
  const before = await verify(tampered, { keys, expectedManifestSha256: protection.manifestSha256 });
  assert.ok(before.findings.some((f) => f.path === '/app/server.sh' && f.code === 'HASH_MISMATCH'));
  let signed: Awaited<ReturnType<typeof pipeline>>;
  try {
    signed = await pipeline(tampered, [signGramineImage({ signKey: readFileSync(testKey), signDate: '2026-01-01' })]);
  } catch (e) {
    // refusing to sign a tampered image is the fix; the refusal lists what changed
    assert.equal((e as { code?: string }).code, 'GRAMINE_SIGN_REFUSED', String(e));
    assert.match((e as Error).message, /\/app\/server\.sh: HASH_MISMATCH/);
    assert.match((e as Error).message, /\/app\/server\.sh: TRUSTED_NOT_PROTECTED/);
    return;
  }
  cleanup.push(() => signed.dispose());
  const pinned = (signed.report.signGramine as { protectionManifestSha256: string }).protectionManifestSha256;
  const after = await verify(signed.image, { keys, expectedManifestSha256: pinned });
  assert.ok(after.findings.some((f) => f.path === '/app/server.sh'), `sign re-pinned the backdoor: ${formatFindings(after)}`);
});

test('enclavify sign flags what it signs: debug, allow_all_but_log, insecure__ keys', async () => {
  const { out } = await gramineConvert({});
  const M = '/gramine/app/entrypoint.manifest';
  const weakened = await attacked(out.image, editInPlace({ [M]: (b) => Buffer.from(b.toString().replace('[sgx]', '[sgx]\nfile_check_policy = "allow_all_but_log"')) }));
  const progress: string[] = [];
  let signed: Awaited<ReturnType<typeof pipeline>>;
  try {
    signed = await pipeline(weakened, [signGramineImage({ signKey: readFileSync(testKey), signDate: '2026-01-01' })], { onProgress: progressTo(progress) });
    const first = signed;
    cleanup.push(() => first.dispose());
    assert.fail('a manifest edited after conversion was signed');
  } catch (e) {
    // The manifest was edited after conversion: refused outright (its hash is in the protection manifest).
    assert.equal((e as { code?: string }).code, 'GRAMINE_SIGN_REFUSED', String(e));
    assert.match((e as Error).message, /\/gramine\/app\/entrypoint\.manifest: HASH_MISMATCH/);
  }
  // The same settings chosen at conversion (no --production): signed, with a warning per setting;
  // refused with production.
  const frag = 'sgx.file_check_policy = "allow_all_but_log"\nsgx.debug = true\nsys.insecure__allow_eventfd = true';
  const chosen = (await gramineConvert({ manifestFragment: frag })).out.image;
  progress.length = 0;
  signed = await pipeline(chosen, [signGramineImage({ signKey: readFileSync(testKey), signDate: '2026-01-01' })], { onProgress: progressTo(progress) });
  cleanup.push(() => signed.dispose());
  assert.match(progress.join('\n') + JSON.stringify(signed.report), /allow_all_but_log/);
  const warnings = (signed.report.signGramine as { warnings: string[] }).warnings.join('\n');
  for (const k of [/sgx\.file_check_policy = "allow_all_but_log"/, /sgx\.debug = true/, /sys\.insecure__allow_eventfd/]) assert.match(warnings, k);
  await assert.rejects(pipeline(chosen, [signGramineImage({ signKey: readFileSync(testKey), production: true })]), (e: Error & { code?: string }) => e.code === 'GRAMINE_INSECURE_IN_PRODUCTION' && /allow_all_but_log/.test(e.message));
});

// ---------------------------------------------------------------------------------------------
// what held
// ---------------------------------------------------------------------------------------------

test('deterministic mode never uses one (key, IV) pair for two plaintexts', async () => {
  const uses = new Map<string, string>();
  let reused = 0;
  const recording: CryptoBackend = {
    ...nodeBackend,
    aesGcmEncrypt(key, iv, plaintext, aad) {
      const k = `${Buffer.from(key).toString('hex')}/${Buffer.from(iv).toString('hex')}`;
      const h = createHash('sha256').update(plaintext).digest('hex');
      if (uses.has(k) && uses.get(k) !== h) reused++;
      uses.set(k, h);
      return nodeBackend.aesGcmEncrypt(key, iv, plaintext, aad);
    },
  };
  const masterKey = Buffer.alloc(32, 7);
  for (const wrapKey of [Buffer.alloc(16, 1), Buffer.alloc(16, 2)]) {
    for (const p of ['/a/x', '/a/y']) {
      for (const n of [0, 1, 3072, 3073, 4096 * 96 + 3072, 4096 * 96 + 3073, 600000]) {
        const a = Buffer.alloc(n, 0x41);
        const last = Buffer.from(a);
        if (n) last[n - 1] ^= 1;
        const mid = Buffer.from(a);
        if (n > 4000) mid[4000] ^= 1;
        for (const pt of [a, last, mid]) {
          const f = await encryptProtectedFile({ wrapKey, path: p, size: n, plaintext: [pt], backend: recording, deterministic: { masterKey } });
          await f.dispose();
        }
      }
    }
  }
  assert.ok(uses.size > 100);
  assert.equal(reused, 0);
});

test('startup files stay authenticated through PATH symlinks, #! interpreters and env lookups into a region', async () => {
  const base = await openImage(bbRef);
  const tricks: Record<string, Transform[]> = {
    'PATH entry symlinked into the region': [
      addLayer([fileItem('app/data/tool.sh', '#!/bin/sh\necho hi\n', 0o755), link('usr/bin/tool', '/app/data/tool.sh')]),
      configEdit((d) => Object.assign(d.config.config!, { Entrypoint: ['tool'], Env: ['PATH=/usr/bin:/bin'] })),
    ],
    '#! interpreter in the region': [
      addLayer([fileItem('app/data/sh', '#!/bin/busybox sh\n', 0o755), fileItem('app/run.sh', '#!/app/data/sh\necho\n', 0o755)]),
      configEdit((d) => Object.assign(d.config.config!, { Entrypoint: ['/app/run.sh'] })),
    ],
    '#!/usr/bin/env found in the region': [
      addLayer([fileItem('app/data/bin/python3', '#!/bin/busybox sh\n', 0o755), fileItem('app/run.py', '#!/usr/bin/env python3\n', 0o755), fileItem('usr/bin/env', '#!/bin/busybox sh\n', 0o755)]),
      configEdit((d) => Object.assign(d.config.config!, { Entrypoint: ['/app/run.py'], Env: ['PATH=/app/data/bin:/usr/bin:/bin'] })),
    ],
  };
  for (const [name, t] of Object.entries(tricks)) {
    const src = await attacked(base, ...t);
    await assert.rejects(convert({ dirs: ['/app/data'] }, {}, src), { code: 'CLASSIFY_STARTUP_ENCRYPTED' }, name);
  }
  await assert.rejects(convert({ dirs: ['/bin'] }), { code: 'CLASSIFY_STARTUP_ENCRYPTED' });
});

