/**
 * Throughput of the Gramine encrypted-files writer and reader, for both crypto backends.
 * Usage: node --import tsx bench/pf.ts [sizeMiB=64] [backend...]
 * Prints MB/s (10^6 bytes of content per second). The writer figure includes staging in a
 * temporary file and reading the result out; the reader verifies every MAC.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nobleBackend, nodeBackend } from '../lib/crypto/index.js';
import type { CryptoBackend } from '../lib/crypto/index.js';
import { encryptProtectedFile, verifyProtectedFile } from '../lib/protect/pf/index.js';

const sizeMiB = Number(process.argv[2] ?? 64);
const wanted = process.argv.slice(3);
const backends = [nodeBackend, nobleBackend].filter((b) => wanted.length === 0 || wanted.includes(b.name));
const size = sizeMiB * 1024 * 1024;
const block = randomBytes(1 << 20);
const wrapKey = randomBytes(16);
const filePath = '/bench/data.bin';

function* content(): Generator<Uint8Array> {
  for (let off = 0; off < size; off += block.length) yield block.subarray(0, Math.min(block.length, size - off));
}

const mbps = (bytes: number, ms: number) => ((bytes / 1e6) / (ms / 1e3)).toFixed(1);

async function run(backend: CryptoBackend, dir: string): Promise<void> {
  const encrypted = path.join(dir, `${backend.name}.pf`);
  let t = performance.now();
  const pf = await encryptProtectedFile({ wrapKey, path: filePath, size, plaintext: content(), backend, tmpDir: dir });
  const chunks: Buffer[] = [];
  for await (const c of pf.stream()) chunks.push(c as Buffer);
  const writeMs = performance.now() - t;
  await pf.dispose();
  await writeFile(encrypted, Buffer.concat(chunks));
  chunks.length = 0;

  t = performance.now();
  await verifyProtectedFile({ source: createReadStream(encrypted, { highWaterMark: 1 << 20 }), wrapKey, path: filePath, backend });
  const readMs = performance.now() - t;
  console.log(`${backend.name.padEnd(6)} ${sizeMiB} MiB  write ${mbps(size, writeMs).padStart(7)} MB/s  read+verify ${mbps(size, readMs).padStart(7)} MB/s`);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'enclavify-bench-pf-'));
try {
  for (const b of backends) await run(b, dir);
} finally {
  await rm(dir, { recursive: true, force: true });
}
