import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { readFileSync, readdirSync } from 'node:fs';
import { CompressStream } from 'zstd-napi';
import { ParallelGzip, ZSTD_JOB_SIZE, compressor, decompressor, zstdImplementation } from '../../lib/oci/compression.js';
import { buildLayer } from '../../lib/oci/layer.js';
import { RootFs } from '../../lib/fs/merged.js';
import { formatTree } from '../../lib/fs/tree.js';
import { openImage } from '../../lib/index.js';
import { bbZstd, expectedTree, scratch } from '../helpers/images.js';

async function pgzip(data: Buffer, chunk = 64 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  };
  await pipeline(Readable.from(chunks()), new ParallelGzip(6), new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }));
  return Buffer.concat(parts);
}

test('parallel gzip: a valid gzip stream that GNU gzip and Python read back, deterministic, for sizes around the block size', async () => {
  const s = scratch();
  try {
    const B = ParallelGzip.BLOCK;
    for (const size of [0, 1, B - 1, B, B + 1, 3 * B + 12345]) {
      // Half random, half repetitive, so compression does something.
      const data = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1), 'enclavify ')]);
      const gz = await pgzip(data);
      assert.deepEqual(gunzipSync(gz), data, `node, size ${size}`);
      const f = path.join(s.dir, `x-${size}.gz`);
      writeFileSync(f, gz);
      const sha = createHash('sha256').update(data).digest('hex');
      assert.equal(createHash('sha256').update(execFileSync('gzip', ['-dc', f], { maxBuffer: 1 << 26 })).digest('hex'), sha, `gzip -dc, size ${size}`);
      assert.equal(execFileSync('python3', ['-c', `import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())`, f], { encoding: 'utf8' }).trim(), sha, `python, size ${size}`);
      assert.deepEqual(await pgzip(data, 4096), gz, `same bytes whatever the input chunking, size ${size}`);
      // One chunk of many blocks (a large file's content given whole, e.g. the protection manifest).
      assert.deepEqual(await pgzip(data, Math.max(1, size)), gz, `same bytes from one chunk, size ${size}`);
    }
  } finally {
    s.done();
  }
});

/** Runs `fn` with ENCLAVIFY_ZSTD=js: zstd read by fzstd, as when the zstd-napi addon does not load. */
async function withJsZstd<T>(fn: () => Promise<T>): Promise<T> {
  const before = process.env.ENCLAVIFY_ZSTD;
  process.env.ENCLAVIFY_ZSTD = 'js';
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.ENCLAVIFY_ZSTD;
    else process.env.ENCLAVIFY_ZSTD = before;
  }
}

async function through(t: NodeJS.ReadWriteStream, data: Buffer, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks = function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  };
  await pipeline(Readable.from(chunks()), t, new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }));
  return Buffer.concat(parts);
}

test('zstd without the addon (ENCLAVIFY_ZSTD=js): the bb-zstd fixture reads through fzstd to the tree umoci unpacked', async () => {
  const expected = readFileSync(expectedTree, 'utf8');
  const scan = async () => {
    const layers = await (await openImage(`oci:${bbZstd}`)).layers();
    assert.ok(layers.every((l) => l.mediaType.endsWith('+zstd')));
    return formatTree(await RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() }))));
  };
  assert.equal(zstdImplementation(), 'native');
  assert.equal(await scan(), expected, 'zstd-napi');
  await withJsZstd(async () => {
    assert.equal(zstdImplementation(), 'js');
    assert.equal(await scan(), expected, 'fzstd');
  });
});

test('fzstd reads what zstd-napi and the zstd tool write: several frames, any chunking, empty input; a truncated stream fails', async () => {
  const s = scratch();
  try {
    const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 'enclavify '), randomBytes(5)]);
    const native = await through(new CompressStream({ compressionLevel: 3 } as never) as unknown as NodeJS.ReadWriteStream, data, 65536);
    const f = path.join(s.dir, 'x');
    writeFileSync(f, data);
    execFileSync('zstd', ['-q', '-19', f, '-o', `${f}.zst`]);
    const twoFrames = Buffer.concat([native, readFileSync(`${f}.zst`)]);
    const empty = await through(new CompressStream() as unknown as NodeJS.ReadWriteStream, Buffer.alloc(0), 1);
    await withJsZstd(async () => {
      for (const chunk of [1 << 20, 4096, 7]) {
        assert.deepEqual(await through(decompressor('zstd'), native, chunk), data, `one frame, chunks of ${chunk}`);
      }
      assert.deepEqual(await through(decompressor('zstd'), twoFrames, 65536), Buffer.concat([data, data]), 'two frames');
      assert.deepEqual(await through(decompressor('zstd'), empty, 1), Buffer.alloc(0), 'empty');
      await assert.rejects(through(decompressor('zstd'), native.subarray(0, native.length - 100), 65536));
    });
  } finally {
    s.done();
  }
});

test('zstd output (multi-threaded): the same bytes whatever the number of workers and the chunking; the zstd tool, zstd-napi and fzstd read it back', async () => {
  const s = scratch();
  try {
    // Several 2 MiB jobs, some compressible, some not.
    const data = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(4 << 20, 'enclavify '), randomBytes(12345)]);
    const ours = await through(compressor({ compression: 'zstd' }), data, 65536);
    for (const nbWorkers of [1, 3]) {
      for (const chunk of [1 << 20, 1_000_003]) {
        const other = await through(new CompressStream({ compressionLevel: 3, nbWorkers, jobSize: ZSTD_JOB_SIZE }) as unknown as NodeJS.ReadWriteStream, data, chunk);
        assert.ok(other.equals(ours), `${nbWorkers} workers, chunks of ${chunk}: other bytes`);
      }
    }
    // Not zstd's single-threaded output: the workers are really on.
    const single = await through(new CompressStream({ compressionLevel: 3 }) as unknown as NodeJS.ReadWriteStream, data, 65536);
    assert.ok(!single.equals(ours), 'compressed on the main thread');
    const f = path.join(s.dir, 'mt.zst');
    writeFileSync(f, ours);
    assert.ok(execFileSync('zstd', ['-dc', f], { maxBuffer: 64 << 20 }).equals(data), 'the zstd tool');
    assert.ok((await through(decompressor('zstd'), ours, 65536)).equals(data), 'zstd-napi');
    await withJsZstd(async () => assert.ok((await through(decompressor('zstd'), ours, 65536)).equals(data), 'fzstd'));
  } finally {
    s.done();
  }
});

test('zstd output without the addon: ZSTD_UNAVAILABLE naming the fix, and no temporary file left', async () => {
  const s = scratch();
  try {
    await withJsZstd(async () => {
      assert.throws(() => compressor({ compression: 'zstd' }), (e: Error & { code?: string }) => e.code === 'ZSTD_UNAVAILABLE' && /npm install zstd-napi/.test(e.message) && /gzip/.test(e.message));
      await assert.rejects(
        buildLayer({ tar: Readable.from([Buffer.alloc(1024)]), tmpDir: s.dir, name: 'new layer', compression: 'zstd' }),
        (e: Error & { code?: string }) => e.code === 'ZSTD_UNAVAILABLE' && /scripts allowed/.test(e.message),
      );
      assert.deepEqual(readdirSync(s.dir), []);
      // gzip, the default, needs nothing.
      const l = await buildLayer({ tar: Readable.from([Buffer.alloc(1024)]), tmpDir: s.dir, name: 'new layer', compression: 'gzip' });
      assert.match(l.mediaType, /gzip$/);
    });
  } finally {
    s.done();
  }
});
