/**
 * The scan cache (issue 11): a warm conversion is byte-identical to a cold one and opens no base
 * layer; entries that do not check out (corrupt, truncated, foreign, another version, another
 * layer digest) are ignored and removed; concurrent writers do not break readers; the bound
 * evicts least recently used entries; an unsafe directory is refused with a warning; `--no-cache`
 * neither reads nor writes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { openImage, pipeline, writeImage, type Image, type Layer } from '../../lib/index.js';
import { withLayerObjects } from '../../lib/oci/image.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { ScanCache, SCAN_CACHE_FORMAT, defaultCacheDir, type LayerKey } from '../../lib/store/scan-cache.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import type { LayerEntry } from '../../lib/fs/merged.js';
import { scratch } from '../helpers/images.js';
import { runCli } from '../helpers/cli.js';
import { addLayer, bbRef, fileItem } from '../protect/encrypt-helpers.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';
import { writeVariant } from '../../bench/variant.js';
import { CLASSIFICATION } from '../../lib/transforms/state.js';

const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const tmp = scratch('enclavify-scan-cache-');
after(() => tmp.done());
let n = 0;
const fresh = (name: string) => {
  const d = path.join(tmp.dir, `${name}-${n++}`);
  mkdirSync(d, { mode: 0o700 });
  chmodSync(d, 0o700);
  return d;
};

/** The image with each layer's `uncompressed()` counted (by layer index). */
function counting(image: Image, opens: number[]): Image {
  return withLayerObjects(image, async () =>
    (await image.layers()).map((l, i): Layer => {
      opens[i] = 0;
      return {
        mediaType: l.mediaType,
        compression: l.compression,
        name: l.name,
        annotations: l.annotations,
        digest: () => l.digest(),
        size: () => l.size(),
        diffId: () => l.diffId(),
        compressed: () => l.compressed(),
        uncompressed: () => {
          opens[i]++;
          return l.uncompressed();
        },
      };
    }),
  );
}

const created = new Date('2026-01-01T00:00:00Z');
const masterKey = new Uint8Array(32).fill(5);

/** bb-fixture plus a top layer with /app/extra (the part a reconversion changes; layers 0-2 are the base). */
let plus: Promise<string> | undefined;
function bbPlus(): Promise<string> {
  return (plus ??= (async () => {
    const ref = `oci:${path.join(tmp.dir, 'bb-plus')}:latest`;
    await using out = await pipeline(await openImage(bbRef), [addLayer([fileItem('app/extra/secret.txt', 'extra secret\n')], 'extra')], { created });
    await writeImage(out.image, ref);
    return ref;
  })());
}

/** {@link bbPlus} with /app/extra (layer 3) encrypted, deterministically; returns the manifest digest written and the opens per layer. */
async function convertBb(cache: string | false, warnings: string[] = []): Promise<{ digest: string; opens: number[] }> {
  const opens: number[] = [];
  const src = counting(await openImage(await bbPlus()), opens);
  await using out = await pipeline(src, [fileClassify({ dirs: ['/app/extra'] }), encryptFS({ deterministic: { masterKey } })], {
    created,
    cache,
    onProgress: (e) => {
      if (e.level === 'warning') warnings.push(e.message ?? '');
    },
  });
  const dst = path.join(tmp.dir, `out-${n++}`);
  await writeImage(out.image, `oci:${dst}:c`);
  return { digest: await out.image.digest(), opens };
}

test('a warm conversion writes the same bytes as a cold one and opens no base layer', async () => {
  const dir = fresh('cache');
  const none = await convertBb(false);
  const cold = await convertBb(dir);
  assert.equal(cold.digest, none.digest, 'the cache changes nothing in the output');
  assert.ok(cold.opens.every((k) => k >= 1), `cold: every layer is scanned (${cold.opens})`);
  assert.equal(scanFiles(dir).length, 4);
  const warm = await convertBb(dir);
  assert.equal(warm.digest, cold.digest, 'byte-identical image');
  assert.deepEqual(warm.opens.slice(0, 3), [0, 0, 0], `warm: base layers 0 to 2 are never opened (${warm.opens})`);
  assert.ok(warm.opens[3]! >= 1, 'the layer holding /app/extra is rewritten, hence read');
});

test('the startup files read from a cached layer come from the cache, checked against the scan', async () => {
  const dir = fresh('cache');
  const cache = (await ScanCache.open(dir))!;
  const opens: number[] = [];
  const image = counting(await openImage(bbRef), opens);
  const fs1 = await layersRootFs(await image.layers(), { cache });
  const want = ['app/server.sh', 'app/data/secret.txt'];
  const first = await fs1.readFiles(want);
  await cache.settle();
  assert.ok(opens[0]! >= 2, 'cold: scanned and read');
  assert.equal(readdirSync(path.join(dir, 'files')).filter((f) => f.endsWith('.file')).length, 2);
  const opens2: number[] = [];
  const image2 = counting(await openImage(bbRef), opens2);
  const fs2 = await layersRootFs(await image2.layers(), { cache });
  const second = await fs2.readFiles(want);
  assert.deepEqual(opens2, [0, 0, 0], 'warm: nothing opened for the view nor for the reads');
  for (const p of want) assert.deepEqual(Buffer.from(second.get(p)!), Buffer.from(first.get(p)!));
  // A cached content that does not hash to its name is ignored (and removed): the layer is read.
  const secret = fs2.get('app/data/secret.txt')!.sha256!;
  const f = path.join(dir, 'files', `${secret}.file`);
  const raw = readFileSync(f);
  raw[raw.length - 1] ^= 1;
  writeFileSync(f, raw);
  const opens3: number[] = [];
  const image3 = counting(await openImage(bbRef), opens3);
  const fs3 = await layersRootFs(await image3.layers(), { cache });
  const third = await fs3.readFiles(['app/data/secret.txt']);
  assert.deepEqual(Buffer.from(third.get('app/data/secret.txt')!), Buffer.from(first.get('app/data/secret.txt')!));
  assert.equal(opens3[0], 1, 'read from the layer instead');
  // Missing paths still fail as without a cache.
  await assert.rejects(fs3.readFiles(['no/such/file']), { code: 'FS_NOT_FOUND' });
});

const entries: LayerEntry[] = [
  { path: 'a', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 0, uname: 'root' },
  { path: 'a/f', type: 'file', mode: 0o4755, uid: 1, gid: 2, mtime: 1.5, size: 3, offset: 1536, sha256: 'ab'.repeat(32), pax: { 'SCHILY.xattr.user.x': Buffer.from([0, 1, 255]) } },
  { path: 'a/l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkname: '../x' },
  { path: 'a/h', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0, linkname: 'a/f' },
  { path: 'dev/c', type: 'chardev', mode: 0o600, uid: 0, gid: 0, mtime: 0, size: 0, devmajor: 1, devminor: 3 },
  { path: 'a/.wh.gone', type: 'file', mode: 0, uid: 0, gid: 0, mtime: 0, size: 0, whiteout: { kind: 'file', target: 'a/gone' }, sha256: 'cd'.repeat(32) },
];
const keyA: LayerKey = { digest: `sha256:${'1'.repeat(64)}`, diffId: `sha256:${'2'.repeat(64)}` };
const keyB: LayerKey = { digest: `sha256:${'3'.repeat(64)}`, diffId: `sha256:${'2'.repeat(64)}` };

/** The one scan entry file of a cache directory. */
function scanFiles(dir: string): string[] {
  return readdirSync(path.join(dir, 'scan')).filter((f) => f.endsWith('.scan')).map((f) => path.join(dir, 'scan', f));
}

test('entries round-trip exactly', async () => {
  const cache = (await ScanCache.open(fresh('cache')))!;
  await cache.saveScan(keyA, entries);
  assert.deepEqual(await cache.loadScan(keyA), entries);
  assert.equal(await cache.loadScan(keyB), undefined, 'another layer digest: another entry');
});

for (const [what, damage] of [
  ['a corrupt body', (raw: Buffer) => { raw[raw.length - 10] ^= 0x20; return raw; }],
  ['a truncated entry', (raw: Buffer) => raw.subarray(0, raw.length - 7)],
  ['a truncated header', (raw: Buffer) => raw.subarray(0, 20)],
  ['an empty file', () => Buffer.alloc(0)],
  ['another format version', (raw: Buffer) => Buffer.from(raw.toString('latin1').replace(`"format":${SCAN_CACHE_FORMAT}`, `"format":${SCAN_CACHE_FORMAT + 1}`), 'latin1')],
  ['a body with a row longer than 16 MiB (never joined chunk by chunk to the end)', (raw: Buffer) => {
    const nl = raw.indexOf(10);
    const body = Buffer.concat([raw.subarray(nl + 1), Buffer.from('["'), Buffer.alloc(17 << 20, 0x61), Buffer.from('"]\n')]);
    const h = JSON.parse(raw.subarray(0, nl).toString()) as Record<string, unknown>;
    h.bodyBytes = body.length;
    h.bodySha256 = sha256hex(body);
    return Buffer.concat([Buffer.from(JSON.stringify(h) + '\n'), body]);
  }],
  ['a body of rows with one that is not a row', (raw: Buffer) => {
    const nl = raw.indexOf(10);
    const body = Buffer.concat([raw.subarray(nl + 1), Buffer.from('["x"]\n')]);
    const h = JSON.parse(raw.subarray(0, nl).toString()) as Record<string, unknown>;
    h.bodyBytes = body.length;
    h.bodySha256 = sha256hex(body);
    return Buffer.concat([Buffer.from(JSON.stringify(h) + '\n'), body]);
  }],
  ['another tool version', (raw: Buffer) => Buffer.from(raw.toString('latin1').replace(/"tool":"[^"]*"/, '"tool":"0.0.0-other"'), 'latin1')],
  ['a body with a recomputed digest but garbage inside', (raw: Buffer) => {
    const nl = raw.indexOf(10);
    const body = Buffer.from('{"not":"rows"}');
    const h = JSON.parse(raw.subarray(0, nl).toString()) as Record<string, unknown>;
    h.bodyBytes = body.length;
    h.bodySha256 = sha256hex(body);
    return Buffer.concat([Buffer.from(JSON.stringify(h) + '\n'), body]);
  }],
] as const) {
  test(`${what} is ignored and removed, with a warning`, async () => {
    const warnings: string[] = [];
    const dir = fresh('cache');
    const cache = (await ScanCache.open(dir, { onWarning: (m) => warnings.push(m) }))!;
    await cache.saveScan(keyA, entries);
    const [file] = scanFiles(dir);
    writeFileSync(file!, damage(readFileSync(file!)));
    assert.equal(await cache.loadScan(keyA), undefined);
    assert.equal(cache.stats.ignored, 1);
    assert.equal(existsSync(file!), false, 'removed');
    assert.match(warnings.join('\n'), /ignored and removed/);
    // And the next save makes a good one again.
    await cache.saveScan(keyA, entries);
    assert.deepEqual(await cache.loadScan(keyA), entries);
  });
}

test('a foreign entry (another layer digest, copied under this key) is ignored, never trusted', async () => {
  const dir = fresh('cache');
  const cache = (await ScanCache.open(dir))!;
  await cache.saveScan(keyB, entries.slice(0, 2));
  const [fileB] = scanFiles(dir);
  await cache.saveScan(keyA, entries);
  const fileA = scanFiles(dir).find((f) => f !== fileB)!;
  copyFileSync(fileB!, fileA); // intact body, header of keyB
  assert.equal(await cache.loadScan(keyA), undefined);
  assert.equal(cache.stats.ignored, 1);
  assert.deepEqual(await cache.loadScan(keyB), entries.slice(0, 2), 'the real entry of B is fine');
  // A file entry copied under another content digest is foreign too.
  const data = Buffer.from('hello');
  const sha = sha256hex(data);
  await cache.saveFile(sha, data);
  const other = sha256hex(Buffer.from('other'));
  copyFileSync(path.join(dir, 'files', `${sha}.file`), path.join(dir, 'files', `${other}.file`));
  assert.equal(await cache.loadFile(other), undefined);
  assert.deepEqual(await cache.loadFile(sha), data);
  await cache.saveFile(other, data); // a wrong digest is not stored
  assert.equal(existsSync(path.join(dir, 'files', `${other}.file`)), false);
});

test('concurrent writers of one entry never break readers', async () => {
  const dir = fresh('cache');
  const caches = await Promise.all([0, 1, 2].map(() => ScanCache.open(dir)));
  const big: LayerEntry[] = Array.from({ length: 5000 }, (_, i) => ({ path: `d/f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: i, size: i, sha256: sha256hex(Buffer.from(String(i))) }));
  const ops: Array<Promise<unknown>> = [];
  const seen: Array<LayerEntry[] | undefined> = [];
  for (let round = 0; round < 8; round++) {
    for (const c of caches) {
      ops.push(c!.saveScan(keyA, big));
      ops.push(c!.loadScan(keyA).then((r) => seen.push(r)));
    }
  }
  await Promise.all(ops);
  for (const c of caches) await c!.settle();
  for (const r of seen) if (r) assert.deepEqual(r, big);
  assert.equal(caches.reduce((a, c) => a + c!.stats.ignored, 0), 0, 'no reader saw a torn entry');
  assert.deepEqual(await caches[0]!.loadScan(keyA), big);
  assert.deepEqual(readdirSync(path.join(dir, 'scan')).filter((f) => f.includes('.tmp-')), [], 'no temporaries left');
});

test('the bound evicts the least recently used entries; a hit makes an entry young', async () => {
  const dir = fresh('cache');
  const cache = (await ScanCache.open(dir, { maxBytes: 4000 }))!;
  const blobs = [0, 1, 2].map((i) => Buffer.alloc(1000, i));
  const shas = blobs.map(sha256hex);
  for (let i = 0; i < 3; i++) {
    await cache.saveFile(shas[i]!, blobs[i]!);
    await cache.settle();
    const t = new Date(Date.now() - (10 - i) * 60_000); // 0 oldest
    utimesSync(path.join(dir, 'files', `${shas[i]}.file`), t, t);
  }
  assert.ok(await cache.loadFile(shas[0]!), 'a hit on the oldest one');
  const fourth = Buffer.alloc(1000, 3);
  await cache.saveFile(sha256hex(fourth), fourth);
  await cache.settle();
  const left = readdirSync(path.join(dir, 'files')).filter((f) => f.endsWith('.file'));
  assert.equal(left.length, 3, `one evicted (${left})`);
  assert.ok(!left.includes(`${shas[1]}.file`), 'the least recently used (1) went, not the one just hit (0)');
  assert.ok(left.includes(`${shas[0]}.file`));
  assert.ok(cache.stats.evicted >= 1);
  const total = left.reduce((a, f) => a + statSync(path.join(dir, 'files', f)).size, 0);
  assert.ok(total <= 4000);
});

test('a group- or other-writable cache directory is refused with a warning; the conversion goes on without it', async () => {
  for (const mode of [0o770, 0o707]) {
    const dir = fresh('unsafe');
    chmodSync(dir, mode);
    const warnings: string[] = [];
    assert.equal(await ScanCache.open(dir, { onWarning: (m) => warnings.push(m) }), undefined);
    assert.match(warnings.join('\n'), /writable by (its group|others).*not using the cache/);
    const conv: string[] = [];
    await convertBb(dir, conv);
    assert.match(conv.join('\n'), /not using the cache/);
    assert.equal(existsSync(path.join(dir, 'scan')), false, 'nothing written there');
  }
  if (process.getuid?.() === 0) {
    const dir = fresh('foreign');
    const { chownSync } = await import('node:fs');
    chownSync(dir, 4321, 4321);
    const warnings: string[] = [];
    assert.equal(await ScanCache.open(dir, { onWarning: (m) => warnings.push(m) }), undefined);
    assert.match(warnings.join('\n'), /belongs to uid 4321/);
  }
});

test('convert: the default directory is $XDG_CACHE_HOME/enclavify; --no-cache reads nothing and writes nothing; --dry-run writes nothing', async () => {
  const xdg = fresh('xdg');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: xdg }), path.join(xdg, 'enclavify'));
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: 'relative', HOME: '/h' }).endsWith(path.join('.cache', 'enclavify')), true);
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = xdg;
  try {
    const cli = async (...extra: string[]) => {
      const out = fresh('out');
      return runCli(['convert', '-q', '--from', await bbPlus(), '--to', `oci:${out}/img:c`, '--dir', '/app/extra', '--output-dir', path.join(out, 'art'), ...extra]);
    };
    const r0 = await cli('--no-cache');
    assert.equal(r0.code, 0, r0.stderr);
    assert.equal(existsSync(path.join(xdg, 'enclavify')), false, '--no-cache creates nothing');
    const d0 = await cli('--dry-run');
    assert.equal(d0.code, 0, d0.stderr);
    assert.equal(existsSync(path.join(xdg, 'enclavify')), false, 'a dry run writes nothing, the cache included');
    const r1 = await cli();
    assert.equal(r1.code, 0, r1.stderr);
    const dir = path.join(xdg, 'enclavify');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const written = scanFiles(dir);
    assert.ok(written.length >= 3);
    // Poison every entry: a run that reads the cache removes them (and warns); --no-cache leaves them.
    for (const f of written) writeFileSync(f, 'garbage\n');
    const r2 = await cli('--no-cache');
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(scanFiles(dir).sort(), written.sort());
    for (const f of written) assert.equal(readFileSync(f, 'utf8'), 'garbage\n', 'not rewritten either');
    const d1 = await cli('--dry-run');
    assert.equal(d1.code, 0, d1.stderr);
    assert.match(d1.stderr, /ignored:/, 'a dry run reads the cache, ignores bad entries...');
    for (const f of written) assert.equal(readFileSync(f, 'utf8'), 'garbage\n', '...and leaves them');
    const r3 = await cli();
    assert.equal(r3.code, 0, r3.stderr);
    assert.match(r3.stderr, /ignored and removed/);
    for (const f of scanFiles(dir)) assert.notEqual(readFileSync(f, 'utf8'), 'garbage\n');
    const other = fresh('cache-dir');
    const r4 = await cli('--cache-dir', other, '--cache-max-size', '64M');
    assert.equal(r4.code, 0, r4.stderr);
    assert.ok(scanFiles(other).length >= 3);
    const bad = await cli('--cache-dir', other, '--no-cache');
    assert.equal(bad.code, 2);
    const badSize = await cli('--cache-max-size', '12X');
    assert.equal(badSize.code, 2);
    assert.match(badSize.stderr, /--cache-max-size/);
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
});

test('python image: a warm /app-only reconversion of a changed /app opens no base layer, and is what a cold one makes', { skip: pythonImageSkip }, async () => {
  const variant = `oci:${path.join(tmp.dir, 'py-variant')}:py`;
  await writeVariant(pythonImageRef, variant, 'app/app.py', 'print("changed")\n');
  const dir = fresh('py-cache');
  const run = async (ref: string, cache: string | false) => {
    const opens: number[] = [];
    const src = counting(await openImage(ref), opens);
    await using out = await pipeline(src, [fileClassify({ dirs: ['/app'] }), encryptFS({ deterministic: { masterKey } })], { created, cache });
    const files = out.state.get(CLASSIFICATION)!.startup;
    return { digest: await out.image.digest(), opens, files };
  };
  const cold = await run(pythonImageRef, dir);
  assert.ok(cold.opens[0]! >= 1, `cold: the base layer is scanned (${cold.opens}); staged, it is not opened again for the startup files`);
  const warm = await run(variant, dir);
  assert.equal(warm.opens[0], 0, `warm: the base layer is not opened (${warm.opens})`);
  assert.ok(cold.files.length >= 3, `startup files found (${cold.files})`);
  assert.deepEqual(warm.files, cold.files, 'the same startup files, found through cached contents');
  const plain = await run(variant, false);
  assert.equal(warm.digest, plain.digest, 'byte-identical to a conversion without the cache');
});
