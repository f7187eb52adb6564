/**
 * A layout blob written into another layout is copied in the kernel and verified where it will
 * stay (lib/store/oci-layout.ts, copyLayoutBlob): the bytes renamed into place are the bytes that
 * were hashed. Attacked here: blobs whose content, length or nature (a symlink to a host file)
 * does not match their descriptor never land in the destination, and the messages tell only the
 * mismatch. The copies are checked byte for byte and read back by umoci when it is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { copyImage, openImage } from '../../lib/store/index.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { archive, fileEntry } from '../../fuzz/tar-build.js';
import { compressLayer, sha256, writeLayout, type LayoutSpec } from '../../fuzz/layout-build.js';
import { tool } from '../helpers/tools.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-layout-copy-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const layout = (spec: LayoutSpec) => writeLayout(path.join(tmp, `l${n++}`), spec);
const destDir = () => path.join(tmp, `out${n++}`);

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

/** Nothing of a failed copy in the destination: no tag, no blob of the bad digest, no temporaries. */
function assertNothingLanded(dir: string, digest: string): void {
  assert.ok(!existsSync(path.join(dir, 'index.json')), 'index.json was written');
  const blobs = path.join(dir, 'blobs', 'sha256');
  const left = existsSync(blobs) ? readdirSync(blobs) : [];
  assert.ok(!left.includes(digest.slice(7)), `the blob ${digest} landed`);
  assert.deepEqual(left.filter((f) => f.includes('.tmp')), [], 'temporaries left');
}

const tarA = archive(fileEntry('etc/hello', 'hello\n'), fileEntry('app/data.bin', Buffer.alloc(300_000, 7)));
const tarB = archive(fileEntry('app/more', 'more\n'));

test('layout → layout: every blob copied byte for byte, whatever its compression', async () => {
  const src = layout({ layers: [{ tar: tarA, compression: 'gzip' }, { tar: tarB, compression: 'none' }, { tar: tarB, compression: 'zstd' }] });
  for (const validate of [false, true]) {
    const dir = destDir();
    const res = await copyImage(src.ref, `oci:${dir}:x`, { validate });
    assert.equal(res.digest, src.manifestDigest);
    for (const d of src.layerDigests) {
      assert.deepEqual(readFileSync(path.join(dir, 'blobs', 'sha256', d.slice(7))), readFileSync(path.join(src.dir, 'blobs', 'sha256', d.slice(7))));
    }
    const img = await openImage(`oci:${dir}:x`);
    assert.equal(await img.digest(), src.manifestDigest);
  }
});

test('umoci unpacks a layout written by the in-kernel copy', { skip: tool('umoci').skip }, async () => {
  // umoci 0.4 reads no zstd: gzip and uncompressed layers.
  const src = layout({ layers: [{ tar: tarA, compression: 'gzip' }, { tar: tarB, compression: 'none' }] });
  const dir = destDir();
  await copyImage(src.ref, `oci:${dir}:x`, { validate: false });
  const bundle = path.join(tmp, `bundle${n++}`);
  execFileSync(tool('umoci').path!, ['raw', 'unpack', '--rootless', '--image', `${dir}:x`, bundle], { stdio: 'pipe' });
  assert.equal(readFileSync(path.join(bundle, 'etc', 'hello'), 'utf8'), 'hello\n');
  assert.equal(readFileSync(path.join(bundle, 'app', 'more'), 'utf8'), 'more\n');
  assert.equal(readFileSync(path.join(bundle, 'app', 'data.bin')).length, 300_000);
});

test('attack: a source blob with one byte changed (same size) never lands; only the mismatch is told', async () => {
  const blob = compressLayer(tarA, 'gzip');
  const forged = Buffer.from(blob);
  forged[forged.length >> 1] ^= 0x55;
  const src = layout({ layers: [{ tar: tarA, compression: 'gzip', blob: forged, digest: sha256(blob), size: blob.length }] });
  const dir = destDir();
  const e = await refused('BLOB_DIGEST_MISMATCH', () => copyImage(src.ref, `oci:${dir}:x`, { validate: false }));
  assert.ok(e.message.includes(sha256(blob)), e.message);
  assert.ok(!e.message.includes(sha256(forged).slice(7, 19)), `the message shows the digest of the bytes found: ${e.message}`);
  assertNothingLanded(dir, sha256(blob));
});

test('attack: a source blob shorter or longer than its descriptor never lands', async () => {
  const blob = compressLayer(tarA, 'gzip');
  for (const [bytes, size] of [[blob.subarray(0, blob.length - 10), blob.length], [Buffer.concat([blob, Buffer.alloc(10)]), blob.length]] as const) {
    const src = layout({ layers: [{ tar: tarA, compression: 'gzip', blob: Buffer.from(bytes), digest: sha256(blob), size }] });
    const dir = destDir();
    const e = await refused('BLOB_SIZE_MISMATCH', () => copyImage(src.ref, `oci:${dir}:x`, { validate: false }));
    assert.ok(e.message.includes(sha256(blob).slice(0, 19)), e.message);
    assertNothingLanded(dir, sha256(blob));
  }
});

test('attack: a source blob symlinked to a host file: refused; followed, the mismatch without a byte of it; nothing lands', async () => {
  const secret = Buffer.from('root:*:20228:0:99999:7:::\nsecretuser:$6$Hh1kV9xQ$wKJfRt:20228:0:99999:7:::\n');
  const host = path.join(tmp, 'shadow');
  writeFileSync(host, secret);
  const madeUp = 'sha256:' + 'cd'.repeat(32);
  const src = layout({ layers: [{ tar: tarA, compression: 'gzip', digest: madeUp, size: secret.length, symlinkTo: host }] });
  let dir = destDir();
  await refused('BLOB_SYMLINK', () => copyImage(src.ref, `oci:${dir}:x`, { validate: false }));
  assertNothingLanded(dir, madeUp);
  dir = destDir();
  const e = await refused('BLOB_DIGEST_MISMATCH', () => copyImage(src.ref, `oci:${dir}:x`, { validate: false, followBlobSymlinks: true }));
  assert.ok(!e.message.includes(sha256(secret).slice(7, 19)) && !e.message.includes('secretuser') && !e.message.includes('root:'), e.message);
  assertNothingLanded(dir, madeUp);
});

test('a followed blob symlink that verifies is copied as a regular file, not as a link', async () => {
  const blob = compressLayer(tarA, 'gzip');
  const real = path.join(tmp, 'dedup-store-blob');
  writeFileSync(real, blob);
  const src = layout({ layers: [{ tar: tarA, compression: 'gzip', digest: sha256(blob), size: blob.length, symlinkTo: real }] });
  const dir = destDir();
  await copyImage(src.ref, `oci:${dir}:x`, { validate: false, followBlobSymlinks: true });
  const out = path.join(dir, 'blobs', 'sha256', sha256(blob).slice(7));
  assert.deepEqual(readFileSync(out), blob);
  assert.ok(!execFileSync('stat', ['-c', '%F', out], { encoding: 'utf8' }).includes('link'));
});
