/**
 * encryptFS on bb-fixture with `--dir /app/data`: no plaintext of the region left in any blob
 * (raw or decompressed, hidden `tiny` included), only the region's layer rewritten, the rest of the
 * tree unchanged (our view and umoci's), files decrypting to the originals with our reader and an
 * independent Python decryptor; deterministic mode, supplied keys, hard links, large files,
 * other source formats, and keys kept out of everything but the keys artifact.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS, refreshProtectionManifest, type ManifestRefresh } from '../../lib/transforms/encrypt-fs.js';
import { PROTECTION, type Protection } from '../../lib/transforms/state.js';
import { formatTree } from '../../lib/fs/tree.js';
import { decryptProtectedFileBytes, verifyProtectedFile } from '../../lib/protect/pf/index.js';
import { MANIFEST_PATH, parseManifest } from '../../lib/protect/manifest.js';
import { protectionSchemaProblems } from '../../lib/protect/schemas.js';
import { verify } from '../../lib/protect/verify.js';
import { nobleBackend } from '../../lib/crypto/index.js';
import { bbArchive, bbZstd, expectedTree, scratch, umociUnpack } from '../helpers/images.js';
import { diskTree } from '../helpers/disk-tree.js';
import { tool } from '../helpers/tools.js';
import { progressTo } from '../helpers/progress.js';
import {
  addLayer,
  bbRef,
  convert,
  fileItem,
  layerEntries,
  pyDecrypt,
  pythonCryptoSkip,
  readImageFiles,
  rootfsOf,
  sha256,
  whiteout,
  type Converted,
} from './encrypt-helpers.js';

const REGION_FILES = ['/app/data/empty', '/app/data/model.bin', '/app/data/secret.txt'];
const MAGIC = Buffer.from('GRAFS_PF');

const disposers: Array<() => Promise<void>> = [];
after(async () => {
  for (const d of disposers) await d();
});

let base: Promise<{ conv: Converted; originals: Map<string, Buffer> }> | undefined;
/** One conversion of bb-fixture shared by the tests that only read it. */
function converted() {
  return (base ??= (async () => {
    const originals = await readImageFiles(await openImage(bbRef), REGION_FILES);
    const conv = await convert();
    disposers.push(() => conv.result.dispose());
    return { conv, originals };
  })());
}

/** Byte windows of a plaintext to search for (a 300 kB file: start, middle, end). */
function needles(b: Buffer): Buffer[] {
  if (b.length <= 64) return b.length ? [b] : [];
  return [0, Math.floor(b.length / 2), b.length - 48].map((o) => b.subarray(o, o + 48));
}

test('bb-fixture: no plaintext of /app/data in any blob of the written layout, raw or decompressed', async () => {
  const { conv, originals } = await converted();
  const s = scratch();
  try {
    await writeImage(conv.image, `oci:${s.dir}/out:enc`);
    const blobsDir = path.join(s.dir, 'out', 'blobs', 'sha256');
    const search = [...originals.entries()].filter(([, b]) => b.length > 0).flatMap(([p, b]) => needles(b).map((n) => ({ p, n })));
    assert.ok(search.length >= 4);
    let decompressed = 0;
    for (const name of readdirSync(blobsDir)) {
      const raw = readFileSync(path.join(blobsDir, name));
      const views = [raw];
      if (raw[0] === 0x1f && raw[1] === 0x8b) {
        views.push(gunzipSync(raw));
        decompressed++;
      }
      for (const v of views) for (const { p, n } of search) assert.equal(v.indexOf(n), -1, `plaintext of ${p} found in blob ${name}`);
    }
    assert.equal(decompressed, 4, 'four gzip layers (three source layers, one manifest layer)');
  } finally {
    s.done();
  }
});

test('bb-fixture: every file entry under app/data in every layer is an encrypted file; the hidden tiny is gone', async () => {
  const { conv } = await converted();
  const layers = await layerEntries(conv.image);
  let files = 0;
  layers.forEach((entries, i) => {
    for (const { entry, content } of entries) {
      if (!entry.path.startsWith('app/data/')) continue;
      const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
      if (base.startsWith('.wh.')) continue; // whiteouts carry no content
      assert.notEqual(entry.path, 'app/data/tiny', `layer ${i} still has app/data/tiny`);
      assert.ok(entry.type === 'file' || entry.type === 'dir', `${entry.path} is a ${entry.type}`);
      if (entry.type !== 'file') continue;
      files++;
      assert.equal(entry.size % 4096, 0, `${entry.path} size`);
      assert.ok(content!.subarray(0, 8).equals(MAGIC), `${entry.path} in layer ${i} starts with GRAFS_PF`);
    }
  });
  assert.equal(files, 3);
  const report = conv.result.report.encryptFS as { dropped: Array<{ layer: number; path: string }> };
  assert.deepEqual(report.dropped.map((d) => [d.layer, d.path]), [[0, '/app/data/tiny']]);
});

test('bb-fixture: only the region layer is rewritten; the others keep their digests', async () => {
  const { conv } = await converted();
  const src = await (await openImage(bbRef)).layers();
  const out = await conv.image.layers();
  assert.equal(out.length, 4);
  assert.notEqual(await out[0].digest(), await src[0].digest());
  for (const i of [1, 2]) assert.equal(await out[i].digest(), await src[i].digest(), `layer ${i} digest`);
  const cfg = await conv.image.config();
  assert.equal(cfg.rootfs.diff_ids.length, 4);
  const hist = cfg.history!.filter((h) => !h.empty_layer);
  assert.match(hist[0].comment ?? '', /encryptFS: 3 file\(s\) encrypted/);
  assert.equal(hist[3].created_by, 'enclavify encryptFS');
  assert.deepEqual(cfg.config, (await (await openImage(bbRef)).config()).config, 'the container config is unchanged');
});

test('bb-fixture: the merged tree equals the source tree except encrypted sizes/hashes and the manifest', async () => {
  const { conv } = await converted();
  const before = formatTree(await rootfsOf(await openImage(bbRef))).trimEnd().split('\n');
  const after = formatTree(await rootfsOf(conv.image)).trimEnd().split('\n');
  const meta = after.filter((l) => l.startsWith('.enclavify'));
  assert.deepEqual(meta.map((l) => l.split(' ').slice(0, 4).join(' ')), ['.enclavify dir 755 0:0', '.enclavify/protection.json file 444 0:0']);
  const rest = after.filter((l) => !l.startsWith('.enclavify'));
  assert.equal(rest.length, before.length);
  const mask = (l: string) => {
    const f = l.split(' ');
    return REGION_FILES.includes('/' + f[0]) ? [...f.slice(0, 4), 'SIZE', 'SHA', f[6]].join(' ') : l;
  };
  assert.deepEqual(rest.map(mask), before.map(mask));
  // The encrypted files' sizes are the format's on-disk sizes.
  const size = (p: string) => Number(after.find((l) => l.startsWith(p + ' '))!.split(' ')[4]);
  assert.deepEqual([size('app/data/empty'), size('app/data/secret.txt'), size('app/data/model.bin')], [4096, 4096, 307200]);
});

test('bb-fixture: the encrypted files decrypt with the keys to the originals, bound to their paths', async () => {
  const { conv, originals } = await converted();
  const key = conv.keys.get('app_data')!;
  assert.deepEqual([...conv.keys.keys()], ['app_data']);
  const enc = await readImageFiles(conv.image, REGION_FILES);
  for (const p of REGION_FILES) {
    const plain = await decryptProtectedFileBytes({ source: enc.get(p)!, wrapKey: key, path: p });
    assert.ok(Buffer.from(plain).equals(originals.get(p)!), `${p} decrypts to the original`);
  }
  // Bound to the path: the same bytes opened as another file are refused.
  await assert.rejects(verifyProtectedFile({ source: enc.get('/app/data/secret.txt')!, wrapKey: key, path: '/app/data/model.bin' }), { code: 'PF_PATH_MISMATCH' });
});

test('bb-fixture: an independent Python decryptor (cryptography package) reads the encrypted files', { skip: pythonCryptoSkip() }, async () => {
  const { conv, originals } = await converted();
  const keyHex = conv.protection.keys[0].keyHex;
  const enc = await readImageFiles(conv.image, REGION_FILES);
  const s = scratch();
  try {
    for (const p of REGION_FILES) {
      const f = path.join(s.dir, path.basename(p));
      writeFileSync(f, enc.get(p)!);
      assert.deepEqual(pyDecrypt(f, keyHex, p), [sha256(originals.get(p)!), originals.get(p)!.length], p);
    }
  } finally {
    s.done();
  }
});

test('bb-fixture: umoci unpacks the output; its tree is the expected tree but for encrypted content and the manifest', { skip: tool('umoci').skip }, async () => {
  const { conv } = await converted();
  const s = scratch();
  try {
    await writeImage(conv.image, `oci:${s.dir}/out:enc`);
    const rootfs = umociUnpack(`${s.dir}/out:enc`, path.join(s.dir, 'bundle'));
    const got = diskTree(rootfs).trimEnd().split('\n').filter((l) => !l.startsWith('.enclavify'));
    const want = readFileSync(expectedTree, 'utf8').trimEnd().split('\n');
    const mask = (l: string) => {
      const f = l.split(' ');
      return REGION_FILES.includes('/' + f[0]) ? [...f.slice(0, 4), f[6]].join(' ') : l;
    };
    assert.deepEqual(got.map(mask), want.map(mask));
    const secret = readFileSync(path.join(rootfs, 'app/data/secret.txt'));
    assert.ok(secret.subarray(0, 8).equals(MAGIC));
    assert.equal(parseManifest(readFileSync(path.join(rootfs, MANIFEST_PATH.slice(1)))).files.length, 13);
  } finally {
    s.done();
  }
});

test('bb-fixture: the protection manifest is in the image, matches its schema and the state digest', async () => {
  const { conv, originals } = await converted();
  const bytes = (await readImageFiles(conv.image, [MANIFEST_PATH])).get(MANIFEST_PATH)!;
  assert.equal(sha256(bytes), conv.protection.manifestSha256);
  assert.equal(conv.protection.manifestPath, MANIFEST_PATH);
  assert.equal(conv.protection.manifestLayer, 3);
  const doc = JSON.parse(bytes.toString('utf8'));
  assert.deepEqual(protectionSchemaProblems('protectionManifest', doc), []);
  const m = parseManifest(bytes);
  assert.deepEqual(m.regions, [{ name: 'app_data', path: '/app/data' }]);
  const rec = (p: string) => m.files.find((f) => f.path === p)!;
  assert.deepEqual(rec('/app/data/secret.txt'), { ...rec('/app/data/secret.txt'), class: 'encrypted', region: 'app_data', size: 20, diskSize: 4096 });
  assert.deepEqual(rec('/app/data/model.bin'), { ...rec('/app/data/model.bin'), size: 300000, diskSize: 307200 });
  const src = await rootfsOf(await openImage(bbRef));
  const root = { uid: 0, gid: 0 };
  assert.deepEqual(rec('/bin/busybox'), { path: '/bin/busybox', class: 'authenticated', size: 1982256, sha256: src.get('bin/busybox')!.sha256, startup: true, mode: 0o755, ...root });
  assert.deepEqual(rec('/app/server.sh'), { path: '/app/server.sh', class: 'authenticated', size: 190, sha256: src.get('app/server.sh')!.sha256, startup: true, mode: 0o755, ...root });
  assert.deepEqual(rec('/var/cache/old/c'), { path: '/var/cache/old/c', class: 'plain', mode: 0o644, ...root });
  assert.deepEqual(rec('/app/setuid-tool'), { ...rec('/app/setuid-tool'), mode: 0o4755 });
  assert.equal(rec('/app/data/secret.txt').mode, 0o600, 'an encrypted file keeps its mode');
  assert.deepEqual(m.symlinks.find((l) => l.path === '/app/static/secret-link'), { path: '/app/static/secret-link', target: '../data/secret.txt', mode: 0o777, ...root });
  // Directories (the root, /tmp with its sticky bit, the manifest's own) are pinned too.
  const entry = (p: string) => m.entries.find((e) => e.path === p);
  assert.deepEqual(entry('/'), { path: '/', type: 'dir', mode: 0o755, ...root });
  assert.deepEqual(entry('/tmp'), { path: '/tmp', type: 'dir', mode: 0o1777, ...root });
  assert.deepEqual(entry('/app/data'), { path: '/app/data', type: 'dir', mode: 0o755, ...root });
  assert.deepEqual(entry('/.enclavify'), { path: '/.enclavify', type: 'dir', mode: 0o755, ...root });
  assert.equal(m.amendments, undefined);
  // No plaintext hash of an encrypted file anywhere in the manifest.
  for (const p of REGION_FILES) if (originals.get(p)!.length) assert.ok(!bytes.toString().includes(sha256(originals.get(p)!)), `plaintext hash of ${p}`);
});

test('keys appear only in the keys artifact: not in the image, the report, progress or the state report', async () => {
  const progress: string[] = [];
  const s = scratch();
  try {
    const conv = await convert({ dirs: ['/app/data'] }, {}, undefined, { onProgress: progressTo(progress) });
    disposers.push(() => conv.result.dispose());
    const keyHex = conv.protection.keys[0].keyHex;
    const keyRaw = Buffer.from(keyHex, 'hex');
    const art = conv.result.artifacts.get('keys.json')!;
    assert.equal(art.secret, true);
    const doc = JSON.parse(String(art.data));
    assert.deepEqual(protectionSchemaProblems('keys', doc), []);
    assert.deepEqual(doc.keys, [{ name: 'app_data', region: '/app/data', regions: ['/app/data'], key: keyHex }]);
    assert.equal(doc.manifest.sha256, conv.protection.manifestSha256);
    assert.ok(!JSON.stringify(conv.result.report).includes(keyHex));
    assert.ok(!progress.join('\n').includes(keyHex));
    await writeImage(conv.image, `oci:${s.dir}/out:enc`);
    const blobsDir = path.join(s.dir, 'out', 'blobs', 'sha256');
    for (const name of readdirSync(blobsDir)) {
      const raw = readFileSync(path.join(blobsDir, name));
      const views = raw[0] === 0x1f && raw[1] === 0x8b ? [raw, gunzipSync(raw)] : [raw];
      for (const v of views) {
        assert.equal(v.indexOf(keyRaw), -1, `raw key in blob ${name}`);
        assert.equal(v.indexOf(Buffer.from(keyHex)), -1, `hex key in blob ${name}`);
      }
    }
  } finally {
    s.done();
  }
});

test('deterministic mode: the same master key gives byte-identical layers and image; another key does not', async () => {
  const created = new Date('2026-01-01T00:00:00Z');
  const masterKey = new Uint8Array(32).fill(7);
  const a = await convert({ dirs: ['/app/data'] }, { deterministic: { masterKey } }, undefined, { created });
  const b = await convert({ dirs: ['/app/data'] }, { deterministic: { masterKey } }, undefined, { created });
  const c = await convert({ dirs: ['/app/data'] }, { deterministic: { masterKey: new Uint8Array(32).fill(8) } }, undefined, { created });
  disposers.push(() => a.result.dispose(), () => b.result.dispose(), () => c.result.dispose());
  assert.equal(await a.image.digest(), await b.image.digest());
  assert.equal(a.protection.keys[0].keyHex, b.protection.keys[0].keyHex, 'derived region key');
  assert.notEqual(a.protection.keys[0].keyHex, c.protection.keys[0].keyHex);
  const la = await a.image.layers(), lc = await c.image.layers();
  assert.notEqual(await la[0].digest(), await lc[0].digest());
  assert.equal((a.result.report.encryptFS as { deterministic: boolean }).deterministic, true);
  assert.equal((await verify(a.image, { keys: a.keys })).ok, true);
  // Random mode differs every time.
  const r1 = await convert(), r2 = await convert();
  disposers.push(() => r1.result.dispose(), () => r2.result.dispose());
  assert.notEqual(await (await r1.image.layers())[0].digest(), await (await r2.image.layers())[0].digest());
});

test('the portable backend (@noble) gives the same bytes as node:crypto in deterministic mode', async () => {
  const created = new Date('2026-01-01T00:00:00Z');
  const masterKey = new Uint8Array(32).fill(9);
  const n = await convert({ dirs: ['/app/data'] }, { deterministic: { masterKey } }, undefined, { created });
  const p = await convert({ dirs: ['/app/data'] }, { deterministic: { masterKey }, backend: nobleBackend }, undefined, { created });
  disposers.push(() => n.result.dispose(), () => p.result.dispose());
  assert.equal(await p.image.digest(), await n.image.digest());
  assert.deepEqual((await verify(n.image, { keys: n.keys, backend: nobleBackend })).findings, []);
});

test('supplied keys are used; a key for a region that does not exist is refused', async () => {
  const key = '00112233445566778899aabbccddeeff';
  const conv = await convert({ dirs: ['/app/data'] }, { keys: { app_data: key } });
  disposers.push(() => conv.result.dispose());
  assert.equal(conv.protection.keys[0].keyHex, key);
  assert.equal((await verify(conv.image, { keys: { app_data: key } })).ok, true);
  await assert.rejects(convert({ dirs: ['/app/data'] }, { keys: { app_dta: key } }), { code: 'KEY_UNKNOWN', message: /app_dta.*no encrypted region uses that name/ });
  await assert.rejects(convert({ dirs: ['/app/data'] }, { keys: { app_data: 'zz' } }), (e: Error) => (e as { code?: string }).code === 'KEY_INVALID' && !e.message.includes('zz'));
});

test('one key per region with derived unique names, or one key for the image', async () => {
  const two = await convert({ dirs: ['/app/data', '/app/static'] });
  disposers.push(() => two.result.dispose());
  assert.deepEqual(two.protection.keys.map((k) => [k.name, k.region]), [['app_data', '/app/data'], ['app_static', '/app/static']]);
  assert.notEqual(two.protection.keys[0].keyHex, two.protection.keys[1].keyHex);
  const one = await convert({ dirs: ['/app/data', '/app/static'], singleKey: 'image' });
  disposers.push(() => one.result.dispose());
  assert.deepEqual(one.protection.keys.map((k) => [k.name, k.regions]), [['image', ['/app/data', '/app/static']]]);
  assert.equal((await verify(one.image, { keys: one.keys })).ok, true);
  // Hard-linked index.html / index-hardlink.html are both in /app/static: each becomes its own encrypted file.
  const enc = await readImageFiles(two.image, ['/app/static/index.html', '/app/static/index-hardlink.html']);
  const k = two.keys.get('app_static')!;
  const orig = (await readImageFiles(await openImage(bbRef), ['/app/static/index.html'])).get('/app/static/index.html')!;
  for (const p of enc.keys()) assert.ok(Buffer.from(await decryptProtectedFileBytes({ source: enc.get(p)!, wrapKey: k, path: p })).equals(orig), p);
  const fs = await rootfsOf(two.image);
  assert.equal(fs.get('app/static/index.html')!.nlink, 1, 'the hard link became a separate file');
});

test('hard links inside a region: each name gets its own encrypted copy, even when the target name is deleted later', async () => {
  const src = await openImage(bbRef);
  const prep = await pipeline(
    src,
    [
      addLayer([fileItem('app/data/a', 'linked secret content'), { entry: { path: 'app/data/b', type: 'hardlink', linkname: 'app/data/a', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 } }], 'links'),
      addLayer([{ entry: { path: 'app/data/c', type: 'hardlink', linkname: 'app/data/a', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 } }], 'late link'),
      addLayer([whiteout('app/data/a')], 'delete a'),
    ],
  );
  disposers.push(() => prep.dispose());
  const conv = await convert({ dirs: ['/app/data'] }, {}, prep.image);
  disposers.push(() => conv.result.dispose());
  const key = conv.keys.get('app_data')!;
  const enc = await readImageFiles(conv.image, ['/app/data/b', '/app/data/c']);
  for (const p of ['/app/data/b', '/app/data/c']) {
    assert.equal(Buffer.from(await decryptProtectedFileBytes({ source: enc.get(p)!, wrapKey: key, path: p })).toString(), 'linked secret content', p);
  }
  // No plaintext, and no hard link, under app/data in any layer.
  for (const [i, entries] of (await layerEntries(conv.image)).entries()) {
    for (const { entry, content } of entries) {
      if (!entry.path.startsWith('app/data/') || entry.path.includes('/.wh.')) continue;
      assert.notEqual(entry.type, 'hardlink', `layer ${i}: ${entry.path}`);
      if (content) assert.ok(content.subarray(0, 8).equals(MAGIC), `layer ${i}: ${entry.path}`);
    }
  }
  const r = await verify(conv.image, { keys: conv.keys });
  assert.deepEqual(r.findings, []);
});

test('a hard link across the region boundary is refused with an explanation', async () => {
  const src = await openImage(bbRef);
  const prep = await pipeline(src, [addLayer([{ entry: { path: 'app/data/copy.html', type: 'hardlink', linkname: 'app/static/index.html', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 } }], 'cross link')]);
  disposers.push(() => prep.dispose());
  await assert.rejects(convert({ dirs: ['/app/data'] }, {}, prep.image), { code: 'CLASSIFY_HARDLINK', message: /hard link \/app\/data\/copy\.html -> \/app\/static\/index\.html.*share one content/ });
});

test('a large encrypted file is staged in a temporary file and streams through', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 12345);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 17) & 0xff;
  const prep = await pipeline(await openImage(bbRef), [addLayer([fileItem('app/data/big.bin', big)], 'big')]);
  disposers.push(() => prep.dispose());
  const conv = await convert({ dirs: ['/app/data'] }, {}, prep.image);
  disposers.push(() => conv.result.dispose());
  const enc = (await readImageFiles(conv.image, ['/app/data/big.bin'])).get('/app/data/big.bin')!;
  const info = await verifyProtectedFile({ source: enc, wrapKey: conv.keys.get('app_data')!, path: '/app/data/big.bin' });
  assert.equal(info.sha256, sha256(big));
  const rewritten = (conv.result.report.encryptFS as { rewrittenLayers: number[] }).rewrittenLayers;
  assert.deepEqual(rewritten, [0, 3], 'the base layer and the layer adding big.bin');
});

test('zstd and docker-archive sources convert and verify', async () => {
  for (const ref of [`oci:${bbZstd}:latest`, `docker-archive:${bbArchive}`]) {
    const conv = await convert({ dirs: ['/app/data'] }, {}, await openImage(ref));
    disposers.push(() => conv.result.dispose());
    const r = await verify(conv.image, { keys: conv.keys });
    assert.deepEqual(r.findings, [], ref);
    assert.equal(r.checked.encrypted, 3);
    const secret = (await readImageFiles(conv.image, ['/app/data/secret.txt'])).get('/app/data/secret.txt')!;
    assert.ok(secret.subarray(0, 8).equals(MAGIC), ref);
  }
});

test('an image without encrypted regions gets a manifest but no keys artifact', async () => {
  const source = await openImage(bbRef);
  const conv = await convert({}, {}, source);
  disposers.push(() => conv.result.dispose());
  assert.equal(conv.result.artifacts.size, 0);
  assert.deepEqual(conv.protection.keys, []);
  const layers = await conv.image.layers();
  const src = await source.layers();
  for (let i = 0; i < 3; i++) assert.equal(layers[i], src[i], `layer ${i} is the source's Layer object`);
  assert.equal((await verify(conv.image, { keys: {} })).ok, true);
});

test('refreshProtectionManifest: files a later transform adds are recorded, changed ones are not re-pinned, verify accepts the additions', async () => {
  const runtime = (items: ReturnType<typeof fileItem>[]): Transform => ({
    name: 'fake runtime',
    async apply(draft) {
      await addLayer(items, 'runtime files').apply(draft);
      const r = await refreshProtectionManifest(draft);
      draft.report.refresh = r;
    },
  });
  const progress: string[] = [];
  const out = await pipeline(await openImage(bbRef), [fileClassify({ dirs: ['/app/data'] }), encryptFS(), runtime([fileItem('gramine/lib/libsysdb.so', 'loader'), fileItem('etc/passwd', 'root:x:0:0::/root:/bin/sh\n'), fileItem('var/run.pid', '1')])], { onProgress: progressTo(progress) });
  disposers.push(() => out.dispose());
  const r = out.report.refresh as ManifestRefresh;
  assert.deepEqual(r.added, ['/gramine/lib/libsysdb.so', '/var/run.pid']);
  assert.deepEqual(r.addedEntries, ['/gramine', '/gramine/lib']);
  assert.deepEqual(r.changed, ['/etc/passwd']);
  assert.equal(r.mode, 'merged');
  assert.match(progress.join('\n'), /warning: protection manifest: 1 recorded entry changed since it was made, not re-recorded \(verify reports them\): \/etc\/passwd/);
  const p = out.state.get(PROTECTION) as Protection;
  assert.equal(p.manifestSha256, r.manifestSha256);
  const bytes = (await readImageFiles(out.image, [MANIFEST_PATH])).get(MANIFEST_PATH)!;
  assert.equal(sha256(bytes), r.manifestSha256);
  const m = parseManifest(bytes);
  assert.deepEqual(m.files.find((f) => f.path === '/var/run.pid'), { path: '/var/run.pid', class: 'plain', mode: 0o644, uid: 0, gid: 0 });
  const src = await rootfsOf(await openImage(bbRef));
  assert.equal((m.files.find((f) => f.path === '/etc/passwd') as { sha256: string }).sha256, src.get('etc/passwd')!.sha256, 'the changed file keeps its original record');
  assert.equal(m.amendments, undefined, 'merged into the manifest made in this pipeline');
  assert.equal(JSON.parse(String(out.artifacts.get('keys.json')!.data)).manifest.sha256, r.manifestSha256);
  assert.equal((await out.image.layers()).length, 5, 'the manifest layer was rebuilt in place');
  const v = await verify(out.image, { keys: new Map(p.keys.map((k) => [k.name, Buffer.from(k.keyHex, 'hex')])), expectedManifestSha256: r.manifestSha256 });
  assert.deepEqual(v.findings.map((f) => [f.path, f.code]), [['/etc/passwd', 'HASH_MISMATCH']]);
  // Plaintext under an encrypted region cannot be blessed this way.
  await assert.rejects(pipeline(await openImage(bbRef), [fileClassify({ dirs: ['/app/data'] }), encryptFS(), runtime([fileItem('app/data/late.txt', 'plain')])]), {
    code: 'MANIFEST_REFRESH_ENCRYPTED',
    message: /adds \/app\/data\/late\.txt under encrypted region \/app\/data/,
  });
});
