/**
 * The synthetic 2 GB image of issue 11's memory bound: built once (cached in
 * $ENCLAVIFY_BENCH_DIR/synthetic, default /tmp/enclavify-bench/synthetic) with the library's own
 * layer builder from deterministic content, then converted by the CLI as a whole process with
 * `/app/data` encrypted, next to the python image's full conversion, to show that peak RSS does
 * not grow with the image (the bound: at most 10% above the python image's).
 *
 * Layers (about 2.1 GB uncompressed):
 * - 0, "base": 20,000 text-like files of 1–48 KiB under /usr/share/synthetic (~500 MB) and two
 *   256 MiB files of mixed content (half pseudo-random, half text) under /usr/lib/synthetic;
 * - 1, "app": /app/data with two 320 MiB files and 2,000 small ones (encrypted by the bench's
 *   conversion), plus /app/bin.
 *
 * Alone: `npm run build && node --import tsx bench/synthetic.ts [--json]`; in `npm run bench`.
 */
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { writeImage } from '../lib/index.js';
import { assembleImage, buildLayer, type ImageConfig, type Layer } from '../lib/oci/index.js';
import { tarStream, type FsEntry, type TarWriteItem } from '../lib/fs/index.js';
import { timed, type Run } from './process.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(repo, 'bin', 'enclavify.cjs');

/** Deterministic pseudo-random bytes: AES-256-CTR of zeros under a fixed key (fast, incompressible). */
function prng(seed: number): (n: number) => Buffer {
  const key = Buffer.alloc(32, seed & 0xff);
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16, (seed >> 8) & 0xff));
  return (n) => c.update(Buffer.alloc(n));
}

/** A pool of text-like bytes (compresses about 3x, as source code and docs do). */
const WORDS = 'the of and to in is that for it as with was on be by this are or from at an which have not but had they his were can all their there been if more when will would who so no one what out up into than them its only about some could time these two may then do first any like my now over such our man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three'.split(' ');
const textPool = (() => {
  const r = prng(7);
  const parts: string[] = [];
  let len = 0;
  const rnd = r(1 << 20);
  for (let i = 0; len < 4 << 20; i++) {
    const w = WORDS[rnd[i % rnd.length]! % WORDS.length]!;
    parts.push(w);
    len += w.length + 1;
    if (i % 13 === 12) parts.push('\n');
  }
  return Buffer.from(parts.join(' '));
})();

/** `size` bytes of text from the pool, starting at a place that depends on `n`. */
function text(size: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let at = (n * 7919) % (textPool.length - 65536);
  for (let o = 0; o < size; ) {
    const k = Math.min(size - o, 65536, textPool.length - at);
    textPool.copy(out, o, at, at + k);
    o += k;
    at = (at + k * 31) % (textPool.length - 65536);
  }
  return out;
}

/** A large file's content in 1 MiB chunks: every other chunk pseudo-random, the rest text. */
async function* large(size: number, seed: number): AsyncGenerator<Uint8Array> {
  const r = prng(seed);
  for (let o = 0, i = 0; o < size; i++) {
    const k = Math.min(1 << 20, size - o);
    yield i % 2 ? r(k) : text(k, seed * 1000 + i);
    o += k;
  }
}

const meta = (p: string, type: FsEntry['type'], size = 0): FsEntry => ({ path: p, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size });

function* baseItems(): Generator<TarWriteItem> {
  yield { entry: meta('usr', 'dir') };
  yield { entry: meta('usr/share', 'dir') };
  yield { entry: meta('usr/share/synthetic', 'dir') };
  for (let d = 0; d < 100; d++) {
    const dir = `usr/share/synthetic/d${String(d).padStart(3, '0')}`;
    yield { entry: meta(dir, 'dir') };
    for (let f = 0; f < 200; f++) {
      const n = d * 200 + f;
      const size = 1024 + ((n * 2654435761) % (47 * 1024));
      yield { entry: meta(`${dir}/f${String(f).padStart(3, '0')}.txt`, 'file', size), content: text(size, n) };
    }
  }
  yield { entry: meta('usr/lib', 'dir') };
  yield { entry: meta('usr/lib/synthetic', 'dir') };
}

async function* withLarge(items: Iterable<TarWriteItem>, big: Array<{ path: string; size: number; seed: number }>, after: Iterable<TarWriteItem> = []): AsyncGenerator<TarWriteItem> {
  yield* items;
  for (const b of big) yield { entry: meta(b.path, 'file', b.size), content: large(b.size, b.seed) };
  yield* after;
}

function* appItems(): Generator<TarWriteItem> {
  yield { entry: meta('app', 'dir') };
  yield { entry: meta('app/bin', 'dir') };
  yield { entry: { ...meta('app/bin/run.sh', 'file', 22), mode: 0o755 }, content: Buffer.from('#!/bin/sh\nexec cat "$@"\n'.slice(0, 22)) };
  yield { entry: meta('app/data', 'dir') };
}
function* appSmall(): Generator<TarWriteItem> {
  yield { entry: meta('app/data/small', 'dir') };
  for (let f = 0; f < 2000; f++) {
    const size = 512 + ((f * 40503) % 16384);
    yield { entry: meta(`app/data/small/s${String(f).padStart(4, '0')}.json`, 'file', size), content: text(size, 100_000 + f) };
  }
}

const MiB = 1 << 20;

/** Builds the synthetic image into `dir` (tag `s`) unless it is there; returns the reference. */
export async function syntheticImage(dir: string, log: (s: string) => void = (s) => console.error(s)): Promise<string> {
  const ref = `oci:${dir}:s`;
  if (existsSync(path.join(dir, 'index.json'))) return ref;
  log(`synthetic: building the 2 GB image into ${dir} (once; a minute or two)...`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'enclavify-synthetic-'));
  try {
    const layers: Layer[] = [];
    layers.push(await buildLayer({
      tar: tarStream(withLarge(baseItems(), [{ path: 'usr/lib/synthetic/blob-a.bin', size: 256 * MiB, seed: 1 }, { path: 'usr/lib/synthetic/blob-b.bin', size: 256 * MiB, seed: 2 }])) as Readable,
      tmpDir: tmp, name: 'synthetic base', compression: 'gzip',
    }));
    layers.push(await buildLayer({
      tar: tarStream(withLarge(appItems(), [{ path: 'app/data/model-a.bin', size: 320 * MiB, seed: 3 }, { path: 'app/data/model-b.bin', size: 320 * MiB, seed: 4 }], appSmall())) as Readable,
      tmpDir: tmp, name: 'synthetic app', compression: 'gzip',
    }));
    const config: ImageConfig = {
      architecture: 'amd64', os: 'linux',
      config: { Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/app' },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'synthetic base' }, { created: '2026-01-01T00:00:00Z', created_by: 'synthetic app' }],
    };
    const image = await assembleImage({ name: 'synthetic', config, layers });
    mkdirSync(path.dirname(dir), { recursive: true });
    await writeImage(image, `oci:${dir}.tmp:s`);
    rmSync(dir, { recursive: true, force: true });
    (await import('node:fs')).renameSync(`${dir}.tmp`, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return ref;
}

function blobBytes(dir: string): number {
  const b = path.join(dir, 'blobs', 'sha256');
  return readdirSync(b).reduce((a, f) => a + statSync(path.join(b, f)).size, 0);
}

/** What {@link syntheticBench} measured. */
export interface SyntheticBenchResult {
  inputMB: number;
  outputMB: number;
  convert: Run;
  verify: Run;
  loadAverage: [number, number];
}

/** Converts the synthetic image (`--dir /app/data`) and verifies it, as whole processes. */
export async function syntheticBench(opts: { log?: (s: string) => void } = {}): Promise<SyntheticBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  if (!existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) throw new Error('synthetic bench: run `npm run build` first (the CLI runs from dist/)');
  const dir = path.join(process.env.ENCLAVIFY_BENCH_DIR ?? '/tmp/enclavify-bench', 'synthetic');
  const ref = await syntheticImage(dir, log);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-synth-'));
  const load0 = +os.loadavg()[0].toFixed(2);
  try {
    const out = path.join(tmp, 'out');
    const art = path.join(tmp, 'art');
    mkdirSync(art);
    const convert = timed(cli, ['convert', '-q', '--from', ref, '--to', `oci:${out}:c`, '--dir', '/app/data', '--output-dir', art], tmp);
    log(`synthetic convert: ${convert.seconds.toFixed(2)} s (CPU ${convert.cpuSeconds.toFixed(2)} s), ${convert.peakRssMB.toFixed(0)} MB`);
    const verify = timed(cli, ['verify', '-q', '--keys', path.join(art, 'keys.json'), `oci:${out}:c`], tmp);
    log(`synthetic verify: ${verify.seconds.toFixed(2)} s (CPU ${verify.cpuSeconds.toFixed(2)} s), ${verify.peakRssMB.toFixed(0)} MB`);
    return { inputMB: +(blobBytes(dir) / 1e6).toFixed(1), outputMB: +(blobBytes(out) / 1e6).toFixed(1), convert, verify, loadAverage: [load0, +os.loadavg()[0].toFixed(2)] };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await syntheticBench();
  if (process.argv.includes('--json')) console.log(JSON.stringify(r, null, 2));
  else console.log(`synthetic 2 GB image (${r.inputMB} MB of blobs): convert --dir /app/data ${r.convert.seconds} s wall, ${r.convert.cpuSeconds} s CPU, ${r.convert.peakRssMB} MB peak RSS; verify ${r.verify.seconds} s, ${r.verify.peakRssMB} MB; output ${r.outputMB} MB; load ${r.loadAverage.join(' → ')}`);
}
