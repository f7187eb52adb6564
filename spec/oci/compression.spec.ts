import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { ParallelGzip } from '../../lib/oci/compression.js';
import { scratch } from '../helpers/images.js';

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
    }
  } finally {
    s.done();
  }
});
