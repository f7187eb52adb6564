/**
 * readTar against hostile headers built byte by byte: every numeric field in octal and base-256
 * with bad signs and ranges (a negative base-256 size once made tree/copy/convert spin forever),
 * sizes past the end of the stream, PAX numbers, and names too long for any Linux file system.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { readTar, MAX_NAME_COMPONENT, MAX_PATH_BYTES } from '../../lib/fs/tar-read.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { archive, base256, FIELDS, fileEntry, header, NUMERIC_FIELDS, padded, paxHeader } from '../../fuzz/tar-build.js';

async function drain(buf: Buffer, options: { length?: number } = {}): Promise<number> {
  let n = 0;
  for await (const { content } of readTar(Readable.from([buf]), { source: 'hostile.tar', ...options })) {
    if (content) for await (const _ of content) void _;
    n++;
  }
  return n;
}

async function refused(buf: Buffer, code: string, options: { length?: number } = {}): Promise<EnclavifyError> {
  try {
    await drain(buf, options);
  } catch (e) {
    assert.ok(e instanceof EnclavifyError, `expected an EnclavifyError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, /hostile\.tar/);
    return e;
  }
  assert.fail(`expected ${code}`);
}

test('a negative base-256 size is refused at once (it used to spin at 100% CPU)', async () => {
  for (const v of [-1n, -512n, -(1n << 40n), -(1n << 94n)]) {
    const tar = archive(header({ name: 'evil', raw: { size: base256(v, 12) } }), padded(Buffer.from('x')));
    const e = await refused(tar, 'TAR_BAD_NUMBER');
    assert.match(e.message, /"evil"\): size field (is negative|\(base-256\) is beyond)/);
  }
});

test('every numeric field: negative and oversized base-256 values, non-octal text', async () => {
  for (const f of NUMERIC_FIELDS) {
    const [, len] = FIELDS[f];
    const type = f === 'devmajor' || f === 'devminor' ? '3' : '0';
    // a value beyond exact integers (2^60), and for all but mtime a negative one
    const values: bigint[] = [1n << 60n, ...(f === 'mtime' ? [] : [-5n])];
    for (const v of values) {
      await refused(archive(header({ name: `f-${f}`, type, raw: { [f]: base256(v, len) } })), 'TAR_BAD_NUMBER');
    }
    const e = await refused(archive(header({ name: `g-${f}`, type, raw: { [f]: Buffer.from('12z9SECRET') } })), 'TAR_BAD_NUMBER');
    assert.ok(!e.message.includes('SECRET'), `the field's bytes are not quoted: ${e.message}`);
  }
});

test('a negative mtime (before 1970) in base-256 is read; a large base-256 uid too', async () => {
  const tar = archive(header({ name: 'old', raw: { mtime: base256(-86400n, 12), uid: base256(5_000_000_000n, 8) } }));
  const got: Array<[number, number]> = [];
  for await (const { entry } of readTar(Readable.from([tar]), { source: 'hostile.tar' })) got.push([entry.mtime, entry.uid]);
  assert.deepEqual(got, [[-86400, 5_000_000_000]]);
});

test('a size that runs past the known end of the stream is refused before reading it', async () => {
  const tar = archive(header({ name: 'big', size: 1 << 30 }));
  const e = await refused(tar, 'TAR_TRUNCATED', { length: tar.length });
  assert.match(e.message, /past the end of the \d+-byte archive/);
  // without a known length, the stream simply ends inside the content
  await refused(tar, 'TAR_TRUNCATED');
  // an extended header too
  await refused(archive(header({ name: 'PaxHeader', type: 'x', size: 4096 })), 'TAR_TRUNCATED', { length: 1536 });
});

test('PAX numbers: negative, fractional, huge or non-numeric sizes and ids are refused', async () => {
  for (const [k, v] of [['size', '-1'], ['size', '1.5'], ['size', '99999999999999999999'], ['size', '1e3'], ['uid', '-3'], ['gid', 'x'], ['mtime', 'NaN'], ['mtime', '1e400']]) {
    const tar = archive(paxHeader({ [k]: v }), fileEntry('f', 'data'));
    await refused(tar, 'TAR_BAD_NUMBER');
  }
});

test('a name component over 255 bytes or a path over 4096 bytes is refused with a shortened path', async () => {
  const comp = 'c'.repeat(MAX_NAME_COMPONENT + 45);
  let e = await refused(archive(paxHeader({ path: `app/${comp}/file` }), fileEntry('x', 'data')), 'TAR_PATH_TOO_LONG');
  assert.match(e.message, /component of 300 bytes/);
  // exactly 255 bytes (multi-byte characters count as bytes) is fine
  assert.equal(await drain(archive(paxHeader({ path: `app/${'é'.repeat(127)}x` }), fileEntry('x', 'data'))), 1);
  await refused(archive(paxHeader({ path: `app/${'é'.repeat(128)}` }), fileEntry('x', 'data')), 'TAR_PATH_TOO_LONG');

  const huge = Array.from({ length: 1000 }, (_, i) => `dir${i}`.padEnd(100, 'x')).join('/'); // 100 KB
  e = await refused(archive(paxHeader({ path: huge }), fileEntry('x', 'data')), 'TAR_PATH_TOO_LONG');
  assert.ok(e.message.length < 400, `message of ${e.message.length} characters`);
  assert.ok(e.message.includes('…'), e.message);
  assert.ok(e.message.includes(huge.slice(0, 60)) && e.message.includes(huge.slice(-40)), e.message);
  assert.match(e.message, new RegExp(`more than the ${MAX_PATH_BYTES}`));

  // link targets too
  const target = '/'.concat('t'.repeat(5000));
  e = await refused(archive(paxHeader({ linkpath: target }), header({ name: 'l', type: '2' })), 'TAR_PATH_TOO_LONG');
  assert.match(e.message, /link target/);
});

test('a bad checksum does not quote the header bytes (they may be anything)', async () => {
  const garbage = Buffer.from('root:*:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n'.repeat(12));
  const e = await refused(Buffer.concat([garbage.subarray(0, 512), Buffer.alloc(1024)]), 'TAR_BAD_CHECKSUM');
  assert.ok(!e.message.includes('root'), e.message);
});
