/**
 * Symlinks inside encrypted regions. Gramine's encrypted mounts cannot hold symlinks (the enclave
 * gets EACCES), so a link to a regular file of the same region becomes an encrypted copy of its
 * target at the link's own path, and every other link is refused with a message that says why and
 * what to do. Attacks: the copies are decrypted with the reader (they equal their targets), are
 * bound to their own paths (a copy moved onto its target's path does not open), and verify checks
 * them like any encrypted file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { openImage, pipeline, type Image } from '../../lib/index.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import type { LayerItem } from '../../lib/transforms/pipeline.js';
import type { ClassificationReport } from '../../lib/protect/classify.js';
import { decryptProtectedFileBytes } from '../../lib/protect/pf/index.js';
import { verify } from '../../lib/protect/verify.js';
import { formatClassificationReport } from '../../lib/cli/format.js';
import { addLayer, bbRef, convert, editInPlace, modify, readImageFiles, rootfsOf, sha256 } from './encrypt-helpers.js';

const disposers: Array<() => Promise<void>> = [];
after(async () => {
  for (const d of disposers) await d();
});

const link = (path: string, target: string): LayerItem => ({ entry: { path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkname: target } as FsEntry });

/** bb-fixture plus a layer with `items`. */
async function withLinks(items: LayerItem[]): Promise<Image> {
  const out = await pipeline(await openImage(bbRef), [addLayer(items, 'links')]);
  disposers.push(() => out.dispose());
  return out.image;
}

const SECRET_SHA = 'a81d87fcee567c9365a5354ae95ca03a661bb4e7a2d4acc9a10fda6af1886bb9';
const MODEL_SHA = 'f53b35d87eba21213b3ed71230b999015341da491cb5a456c897f471bde7b4a0';

test('a symlink to a file of the region becomes an encrypted copy of its target at its own path; the report lists the copies and sizes', async () => {
  const src = await withLinks([
    link('app/data/link-secret', 'secret.txt'),
    link('app/data/abs-secret', '/app/data/secret.txt'),
    link('app/data/chain', 'link-secret'),
    link('app/data/sub/deep', '../model.bin'),
  ]);
  const conv = await convert({ dirs: ['/app/data'] }, {}, src);
  disposers.push(() => conv.result.dispose());
  const report = conv.result.report.fileClassify as ClassificationReport;
  assert.deepEqual(report.symlinkCopies, [
    { path: '/app/data/abs-secret', target: '/app/data/secret.txt', size: 20 },
    { path: '/app/data/chain', target: '/app/data/secret.txt', size: 20 },
    { path: '/app/data/link-secret', target: '/app/data/secret.txt', size: 20 },
    { path: '/app/data/sub/deep', target: '/app/data/model.bin', size: 300000 },
  ]);
  assert.match(formatClassificationReport(report), /Symlinks in encrypted regions, written as encrypted copies[^\n]*\n\s+\/app\/data\/abs-secret\s+copy of \/app\/data\/secret\.txt, 20 bytes/);
  assert.equal(report.files.find((f) => f.path === '/app/data/sub/deep')?.symlinkTo, '/app/data/model.bin');

  // In the converted image the links are regular files: Gramine ciphertext bound to their paths.
  const fs = await rootfsOf(conv.image);
  for (const p of ['app/data/link-secret', 'app/data/abs-secret', 'app/data/chain', 'app/data/sub/deep']) assert.equal(fs.get(p)?.type, 'file', p);
  assert.equal(fs.get('app/data/link-secret')!.mode, fs.get('app/data/secret.txt')!.mode, 'the copy has its target\'s metadata');
  // a link outside the region (into it) is untouched
  assert.equal(fs.get('app/static/secret-link')?.type, 'symlink');
  const key = conv.keys.get('app_data')!;
  const files = await readImageFiles(conv.image, ['/app/data/link-secret', '/app/data/abs-secret', '/app/data/chain', '/app/data/sub/deep', '/app/data/secret.txt']);
  for (const [p, want] of [['/app/data/link-secret', SECRET_SHA], ['/app/data/abs-secret', SECRET_SHA], ['/app/data/chain', SECRET_SHA], ['/app/data/sub/deep', MODEL_SHA]] as const) {
    const bytes = files.get(p)!;
    assert.ok(!bytes.includes(Buffer.from('secret')), `${p} holds no plaintext`);
    assert.equal(sha256(await decryptProtectedFileBytes({ source: bytes, wrapKey: key, path: p })), want, p);
    // bound to its own path: opened as its target (or anything else) it is refused
    await assert.rejects(decryptProtectedFileBytes({ source: bytes, wrapKey: key, path: '/app/data/secret.txt' }), (e: Error & { code?: string }) => e.code === 'PF_PATH_MISMATCH');
  }
  // each copy is its own ciphertext, not the target's bytes
  assert.notEqual(sha256(files.get('/app/data/link-secret')!), sha256(files.get('/app/data/secret.txt')!));

  // verify: the copies are recorded and checked as encrypted files
  const r = await verify(conv.image, { keys: conv.keys });
  assert.deepEqual(r.findings, []);
  assert.equal(r.checked.encrypted, 3 + 4);
  // a copy swapped for its target's ciphertext is found (path binding)
  const swapped = await modify(conv.image, editInPlace({ '/app/data/link-secret': () => files.get('/app/data/secret.txt')! }));
  disposers.push(() => swapped.dispose());
  const bad = await verify(swapped.image, { keys: conv.keys });
  assert.deepEqual(bad.findings.map((f) => [f.path, f.code]), [['/app/data/link-secret', 'PF_PATH_MISMATCH']]);
});

test('symlinks to a directory, out of the region or to nothing are refused, saying why and what to do', async () => {
  const cases: Array<[LayerItem[], RegExp]> = [
    [[link('app/data/dirlink', '.')], /\/app\/data\/dirlink -> \.: points to the directory \/app\/data/],
    [[link('app/data/passwd', '/etc/passwd')], /\/app\/data\/passwd -> \/etc\/passwd: points out of the encrypted region \/app\/data, to \/etc\/passwd \(authenticated\)/],
    [[link('app/data/gone', 'nothing-here')], /\/app\/data\/gone -> nothing-here: dangling/],
  ];
  for (const [items, why] of cases) {
    await assert.rejects(convert({ dirs: ['/app/data'] }, {}, await withLinks(items)), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CLASSIFY_SYMLINK');
      assert.match(e.message, why);
      assert.match(e.message, /encrypted mounts cannot hold symlinks/);
      assert.match(e.message, /Remove the link from the image, point it at a file of the region, or move it out of the encrypted directory/);
      return true;
    });
  }
  // a link into another encrypted region becomes a copy under this region's key
  const two = await convert({ dirs: ['/app/data', '/app/static'] }, {}, await withLinks([link('app/data/idx', '/app/static/index.html')]));
  disposers.push(() => two.result.dispose());
  assert.deepEqual((two.result.report.fileClassify as ClassificationReport).symlinkCopies, [
    { path: '/app/data/idx', target: '/app/static/index.html', size: 15 },
    { path: '/app/static/secret-link', target: '/app/data/secret.txt', size: 20 },
  ]);
  assert.deepEqual((await verify(two.image, { keys: two.keys })).findings, []);
});
