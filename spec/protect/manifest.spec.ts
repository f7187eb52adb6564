/**
 * The protection manifest's serialization: records made on the fly (a ManifestSource, as
 * encryptFS writes a large image's manifest) give the same bytes as the held document, and a
 * list out of order is refused instead of written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildManifest, manifestPieces, parseManifest, serializeManifest, type FileRecord, type ManifestSource } from '../../lib/protect/manifest.js';

const file = (path: string): FileRecord => ({ path, class: 'authenticated', size: 1, sha256: 'a'.repeat(64), mode: 0o644, uid: 0, gid: 0 });
// More records than one serialization batch (4096), so batches and pieces join.
const paths = Array.from({ length: 10_000 }, (_, i) => `/d/${String(i).padStart(5, '0')}`);
const base = { regions: [], hostPaths: [], rules: [], symlinks: [], entries: [{ path: '/', type: 'dir' as const, mode: 0o755, uid: 0, gid: 0 }] };

test('records made as they are read serialize to the bytes of the held manifest', () => {
  const held = buildManifest({ ...base, files: paths.map(file) });
  let made = 0;
  const source: ManifestSource = {
    ...held,
    files: {
      *[Symbol.iterator]() {
        for (const p of paths) {
          made++;
          yield file(p);
        }
      },
    },
  };
  const bytes = serializeManifest(held);
  assert.ok(bytes.equals(serializeManifest(source)));
  assert.equal(made, paths.length);
  // Twice from the same source (a hash pass, then the write): the same bytes again.
  assert.ok(bytes.equals(Buffer.concat([...manifestPieces(source)])));
  assert.equal(parseManifest(bytes).files.length, paths.length);
});

test('a list made out of order, or repeating a path, is refused, naming both paths', () => {
  const held = buildManifest({ ...base, files: [] });
  for (const order of [['/b', '/a'], ['/a', '/a'], ['/a/b', '/a']]) {
    const source: ManifestSource = { ...held, files: order.map(file) };
    assert.throws(() => serializeManifest(source), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'MANIFEST_INVALID');
      assert.match(e.message, new RegExp(`files not sorted bytewise by path \\(${order[0]} before ${order[1]}\\)`));
      return true;
    });
  }
  // Bytewise, not by locale: '/a-b' (0x2d) sorts before '/a/b' (0x2f).
  assert.doesNotThrow(() => serializeManifest({ ...held, files: ['/a-b', '/a/b'].map(file) }));
});

test('a large manifest is spooled to a temporary file once, given back byte for byte, and a changed spool is refused', async () => {
  const { mkdtemp, readdir, rm, writeFile } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const { spoolManifest } = await import('../../lib/transforms/encrypt-fs.js');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'enclavify-spool-'));
  try {
    const held = buildManifest({ ...base, files: paths.map(file) });
    const want = serializeManifest(held);
    let made = 0;
    const source: ManifestSource = { ...held, files: { *[Symbol.iterator]() { for (const p of paths) { made++; yield file(p); } } } };
    const collect = async (it: AsyncIterable<Buffer>) => { const out: Buffer[] = []; for await (const c of it) out.push(c); return Buffer.concat(out); };
    // In memory below the limit: no file.
    const small = await spoolManifest(held, dir, '/m.json');
    assert.ok((await collect(small.bytes())).equals(want));
    assert.deepEqual(await readdir(dir), []);
    // Above it (a 1 KiB limit here): one serialization, a 0600 file, removed by dispose.
    const spool = await spoolManifest(source, dir, '/m.json', 1024);
    assert.equal(made, paths.length);
    assert.equal(spool.size, want.length);
    assert.equal(spool.sha256, createHash('sha256').update(want).digest('hex'));
    const [name] = await readdir(dir);
    assert.match(name, /^protection-manifest-[0-9a-f]{12}\.json$/);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(path.join(dir, name)).mode & 0o777, 0o600);
    assert.ok((await collect(spool.bytes())).equals(want));
    // A spool changed on disk before the layer is written is refused, not written.
    await writeFile(path.join(dir, name), Buffer.concat([want.subarray(0, 100), Buffer.from('X'), want.subarray(101)]));
    await assert.rejects(collect(spool.bytes()), (e: Error & { code?: string }) => e.code === 'ENCRYPT_INTERNAL' && /changed before it was written/.test(e.message));
    await spool.dispose();
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the held manifest read back from its bytes (buffer or spooled file): the same records, re-iterable, line markers inside paths harmless, a changed file refused', async () => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const { manifestFromLines } = await import('../../lib/protect/manifest-lines.js');
  // Paths that look like the serialization's own lines once escaped: newlines, a list opener, a closer.
  const odd = ['/d/\n"symlinks":[', '/d/]', '/d/"entries":[],', '/d/é\u2028x'].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const m = buildManifest({
    ...base,
    files: [...paths.slice(0, 5000), ...odd].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map(file),
    symlinks: [{ path: '/l', target: '"files":[', mode: 0o777, uid: 0, gid: 0 }],
  });
  const bytes = serializeManifest(m);
  const { files: _f, symlinks: _s, entries: _e, ...head } = m;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'enclavify-lines-'));
  try {
    const f = path.join(dir, 'm.json');
    await writeFile(f, bytes);
    const sha = createHash('sha256').update(bytes).digest('hex');
    for (const src of [{ buffer: bytes }, { file: f, sha256: sha }]) {
      const back = manifestFromLines(head, src, '/m.json');
      for (let round = 0; round < 2; round++) {
        assert.deepEqual([...back.files], m.files);
        assert.deepEqual([...back.symlinks], m.symlinks);
        assert.deepEqual([...back.entries], m.entries);
      }
      assert.ok(serializeManifest(back).equals(bytes), 'serializes to the same bytes');
    }
    // Empty lists, each in its own position.
    const empty = buildManifest({ ...base, files: [], entries: [] });
    const eBack = manifestFromLines(head, { buffer: serializeManifest(empty) }, '/m.json');
    assert.deepEqual([[...eBack.files], [...eBack.symlinks], [...eBack.entries]], [[], [], []]);
    // The file changed after it was written into the image: refused before any record is used.
    await writeFile(f, Buffer.concat([bytes.subarray(0, 200), Buffer.from('Y'), bytes.subarray(201)]));
    const changed = manifestFromLines(head, { file: f, sha256: sha }, '/m.json');
    assert.throws(() => [...changed.files], (e: Error & { code?: string }) => e.code === 'ENCRYPT_INTERNAL' && /changed since it was written into the image/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
