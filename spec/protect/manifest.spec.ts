/**
 * The protection manifest's serialization: records made on the fly (a ManifestSource, as
 * encryptFS writes a large image's manifest) give the same bytes as the held document, and a
 * list out of order is refused instead of written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
