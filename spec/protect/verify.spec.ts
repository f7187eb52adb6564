/**
 * verify against attacks on a converted bb-fixture: every tampering is reported with its own code
 * and a message naming the file and the reason. Attacks are made both by rewriting the layer that
 * holds a file (what an attacker with write access to the registry does) and by adding a layer on
 * top (what a malicious rebuild does).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { openImage } from '../../lib/index.js';
import { verify, type VerifyResult } from '../../lib/protect/verify.js';
import { formatFindings } from '../../lib/cli/format.js';
import { MANIFEST_PATH } from '../../lib/protect/manifest.js';
import { addLayer, bbRef, convert, editInPlace, fileItem, flip, modify, readImageFiles, whiteout, type Converted } from './encrypt-helpers.js';
import type { Image, Transform } from '../../lib/index.js';

const disposers: Array<() => Promise<void>> = [];
after(async () => {
  for (const d of disposers) await d();
});

let shared: Promise<Converted> | undefined;
const converted = () =>
  (shared ??= convert().then((c) => {
    disposers.push(() => c.result.dispose());
    return c;
  }));

/** Verifies `conv`'s image after applying `attack`. */
async function attacked(...attack: Transform[]): Promise<VerifyResult> {
  const conv = await converted();
  const out = await modify(conv.image, ...attack);
  disposers.push(() => out.dispose());
  return verify(out.image, { keys: conv.keys });
}

/** The single finding of a result (fails with the whole list otherwise). */
function only(r: VerifyResult) {
  assert.equal(r.ok, false);
  assert.equal(r.findings.length, 1, formatFindings(r));
  return r.findings[0];
}

test('an untouched conversion verifies', async () => {
  const conv = await converted();
  const r = await verify(conv.image, { keys: conv.keys, expectedManifestSha256: conv.protection.manifestSha256 });
  assert.deepEqual(r.findings, []);
  assert.equal(r.ok, true);
  assert.deepEqual(r.checked, { encrypted: 3, authenticated: 9, plain: 1, symlinks: 18, entries: 23, hiddenEntries: 0, layers: 4 });
  assert.match(formatFindings(r), /^verified: 3 encrypted, 9 authenticated/);
});

// model.bin is 300000 bytes: node 0 metadata, node 1 root MHT, nodes 2-76 data.
test('a flipped byte in a data node is reported with the node', async () => {
  const f = only(await attacked(editInPlace({ '/app/data/model.bin': flip(5 * 4096 + 100) })));
  assert.equal(f.path, '/app/data/model.bin');
  assert.equal(f.code, 'PF_BAD_MAC');
  assert.match(f.message, /data node 3 \(physical node 5\) MAC mismatch/);
});

test('a flipped byte in an MHT node is reported with the node', async () => {
  const f = only(await attacked(editInPlace({ '/app/data/model.bin': flip(4096 + 7) })));
  assert.deepEqual([f.path, f.code], ['/app/data/model.bin', 'PF_BAD_MAC']);
  assert.match(f.message, /MHT node 0 \(physical node 1\) MAC mismatch/);
});

test('a flipped byte in the metadata (encrypted part, nonce or tag) is reported', async () => {
  for (const off of [200, 20, 50]) {
    const f = only(await attacked(editInPlace({ '/app/data/secret.txt': flip(off) })));
    assert.deepEqual([f.path, f.code], ['/app/data/secret.txt', 'PF_BAD_MAC'], `offset ${off}`);
    assert.match(f.message, /metadata MAC mismatch/);
  }
  // The magic or version: a format error.
  const f = only(await attacked(editInPlace({ '/app/data/secret.txt': flip(8) })));
  assert.deepEqual([f.path, f.code], ['/app/data/secret.txt', 'PF_FORMAT']);
});

test('an encrypted file moved to another path is caught by the path binding', async () => {
  const conv = await converted();
  const secret = (await readImageFiles(conv.image, ['/app/data/secret.txt'])).get('/app/data/secret.txt')!;
  // Moved: the old name deleted, the bytes under a new name.
  const moved = await attacked(addLayer([whiteout('app/data/secret.txt'), fileItem('app/data/moved.txt', secret, 0o600)]));
  assert.deepEqual(moved.findings.map((f) => [f.path, f.code]), [['/app/data/moved.txt', 'PF_PATH_MISMATCH'], ['/app/data/secret.txt', 'MISSING']]);
  assert.match(moved.findings[0].message, /stored path "\/app\/data\/secret\.txt" differs/);
  // Swapped in place: model.bin's name now holds secret.txt's bytes.
  const f = only(await attacked(editInPlace({ '/app/data/model.bin': () => secret })));
  assert.deepEqual([f.path, f.code], ['/app/data/model.bin', 'PF_PATH_MISMATCH']);
});

test('a truncated (or extended) encrypted file is reported', async () => {
  const f = only(await attacked(editInPlace({ '/app/data/model.bin': (b) => b.subarray(0, 40 * 4096) })));
  assert.deepEqual([f.path, f.code], ['/app/data/model.bin', 'PF_TRUNCATED']);
  assert.match(f.message, /file ends after 163840 bytes; its stored content size 300000 requires 307200 bytes/);
  const g = only(await attacked(editInPlace({ '/app/data/secret.txt': (b) => Buffer.concat([b, Buffer.alloc(4096)]) })));
  assert.deepEqual([g.path, g.code], ['/app/data/secret.txt', 'PF_OVERLONG']);
});

test('a changed authenticated file is reported with both hashes', async () => {
  const r = await attacked(editInPlace({ '/app/server.sh': (b) => Buffer.from(b.toString().replace('httpd', 'nc -l')) }));
  const f = only(r);
  assert.deepEqual([f.path, f.code], ['/app/server.sh', 'HASH_MISMATCH']);
  assert.match(f.message, /authenticated file changed: SHA-256 [0-9a-f]{64} \(\d+ bytes\), the manifest records 318f0d12/);
  // Through a new layer too.
  const g = only(await attacked(addLayer([fileItem('etc/passwd', 'root::0:0::/root:/bin/sh\n')])));
  assert.deepEqual([g.path, g.code], ['/etc/passwd', 'HASH_MISMATCH']);
});

test('a plaintext file added to an encrypted directory is reported as plaintext', async () => {
  const f = only(await attacked(addLayer([fileItem('app/data/config.json', '{"token":"abc"}')])));
  assert.deepEqual([f.path, f.code], ['/app/data/config.json', 'PLAINTEXT_IN_REGION']);
  assert.match(f.message, /plaintext in encrypted region: not a Gramine encrypted file.*not listed/);
  // An encrypted file replaced by its plaintext.
  const g = only(await attacked(editInPlace({ '/app/data/secret.txt': () => Buffer.from('the original secret\n') })));
  assert.deepEqual([g.path, g.code], ['/app/data/secret.txt', 'PLAINTEXT_IN_REGION']);
});

test('plaintext hidden in a lower layer (deleted by a later one) is still found, naming the layer', async () => {
  const r = await attacked(addLayer([fileItem('app/data/leak.txt', 'leaked plaintext')], 'leak'), addLayer([whiteout('app/data/leak.txt')], 'cover'));
  const f = only(r);
  assert.deepEqual([f.path, f.code, f.layer], ['/app/data/leak.txt', 'PLAINTEXT_IN_REGION', 4]);
  assert.match(f.message, /hidden entry .*hidden by a later layer, but its bytes are in the layer blob/);
});

test('a valid but different encryption of a file (rollback to an older version) is reported', async () => {
  const conv = await converted();
  const keyHex = conv.protection.keys[0].keyHex;
  // The same key, another version of secret.txt of the same size: a valid file for this path.
  const older = await convert({ dirs: ['/app/data'] }, { keys: { app_data: keyHex } }, await withSecret('an older secret!!!!\n'));
  disposers.push(() => older.result.dispose());
  const old = (await readImageFiles(older.image, ['/app/data/secret.txt'])).get('/app/data/secret.txt')!;
  const f = only(await attacked(editInPlace({ '/app/data/secret.txt': () => old })));
  assert.deepEqual([f.path, f.code], ['/app/data/secret.txt', 'CIPHERTEXT_CHANGED']);
  // A different size is named as such.
  const longer = await convert({ dirs: ['/app/data'] }, { keys: { app_data: keyHex } }, await withSecret('a secret of another length\n'));
  disposers.push(() => longer.result.dispose());
  const l = (await readImageFiles(longer.image, ['/app/data/secret.txt'])).get('/app/data/secret.txt')!;
  const g = only(await attacked(editInPlace({ '/app/data/secret.txt': () => l })));
  assert.deepEqual([g.path, g.code], ['/app/data/secret.txt', 'SIZE_MISMATCH']);
});

async function withSecret(text: string): Promise<Image> {
  const out = await modify(await openImage(bbRef), editInPlace({ '/app/data/secret.txt': () => Buffer.from(text) }));
  disposers.push(() => out.dispose());
  return out.image;
}

test('unlisted files and symlinks, changed symlinks and removed files are reported', async () => {
  const conv = await converted();
  const r = await attacked(
    addLayer([
      fileItem('usr/bin/backdoor', '#!/bin/sh\n', 0o755),
      { entry: { path: 'app/static/secret-link', type: 'symlink', linkname: '/etc/passwd', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0 } },
      { entry: { path: 'app/new-link', type: 'symlink', linkname: 'data/secret.txt', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0 } },
      whiteout('etc/group'),
    ]),
  );
  assert.deepEqual(r.findings.map((f) => [f.path, f.code]), [
    ['/app/new-link', 'UNLISTED'],
    ['/app/static/secret-link', 'SYMLINK_CHANGED'],
    ['/etc/group', 'MISSING'],
    ['/usr/bin/backdoor', 'UNLISTED'],
  ]);
  assert.match(r.findings[3].message, /not listed in the protection manifest \(added by /);
  // A valid encrypted file that the manifest does not list.
  const secret = (await readImageFiles(conv.image, ['/app/data/secret.txt'])).get('/app/data/secret.txt')!;
  const copy = await attacked(addLayer([fileItem('app/data/secret.txt', secret, 0o600), fileItem('app/data/secret2.txt', secret)]));
  assert.deepEqual(copy.findings.map((f) => [f.path, f.code]), [['/app/data/secret2.txt', 'PF_PATH_MISMATCH']]);
});

test('wrong or missing keys, a removed or changed manifest', async () => {
  const conv = await converted();
  const wrong = await verify(conv.image, { keys: { app_data: '000102030405060708090a0b0c0d0e0f' } });
  assert.deepEqual(wrong.findings.map((f) => f.code), ['PF_BAD_MAC', 'PF_BAD_MAC', 'PF_BAD_MAC']);
  const none = await verify(conv.image, { keys: {} });
  assert.deepEqual(none.findings.map((f) => [f.path, f.code]), [['/app/data', 'KEY_MISSING']]);
  assert.equal((await verify(await openImage(bbRef), { keys: {} })).findings[0].code, 'MANIFEST_MISSING');
  const r = await attacked(addLayer([whiteout(MANIFEST_PATH.slice(1))]));
  assert.deepEqual(r.findings.map((f) => f.code), ['MANIFEST_MISSING']);
  // A manifest rewritten to bless a change: the policy's digest catches it.
  const edited = await modify(conv.image, editInPlace({ [MANIFEST_PATH]: (b) => Buffer.from(b.toString().replace('"/var/cache/old/c","class":"plain"', '"/var/cache/old/c","class":"plain","hostPath":true')) }));
  disposers.push(() => edited.dispose());
  const d = await verify(edited.image, { keys: conv.keys, expectedManifestSha256: conv.protection.manifestSha256 });
  assert.deepEqual(d.findings.map((f) => [f.path, f.code]), [[MANIFEST_PATH, 'MANIFEST_DIGEST']]);
  const bad = await modify(conv.image, editInPlace({ [MANIFEST_PATH]: () => Buffer.from('{"kind":"x"}') }));
  disposers.push(() => bad.dispose());
  assert.deepEqual((await verify(bad.image, { keys: conv.keys })).findings.map((f) => f.code), ['MANIFEST_INVALID']);
});

test('findings never print keys', async () => {
  const conv = await converted();
  const keyHex = conv.protection.keys[0].keyHex;
  const r = await attacked(editInPlace({ '/app/data/model.bin': flip(4096 * 10) }), addLayer([fileItem('app/data/x', 'plain')]));
  assert.ok(!JSON.stringify(r).includes(keyHex));
  assert.ok(!formatFindings(r).includes(keyHex));
});

test('a whole-image region (--dir /, startup files authenticated) converts and verifies', async () => {
  const conv = await convert({ dirs: ['/'], authenticated: ['/app/server.sh', '/bin/busybox'] });
  disposers.push(() => conv.result.dispose());
  const r = await verify(conv.image, { keys: conv.keys });
  assert.deepEqual(r.findings, []);
  // 10 files, and /app/static/secret-link as an encrypted copy of /app/data/secret.txt (the
  // links to the authenticated busybox stay links: startup files)
  assert.equal(r.checked.encrypted, 11);
  const added = await modify(conv.image, addLayer([fileItem('etc/new', 'x')]));
  disposers.push(() => added.dispose());
  const f = only(await verify(added.image, { keys: conv.keys }));
  assert.deepEqual([f.path, f.code], ['/etc/new', 'PLAINTEXT_IN_REGION']);
});
