/**
 * Layer (de)compression streams. gzip comes from node:zlib. zstd (Node 20's zlib has none) comes
 * from zstd-napi, a native addon and an optional dependency, loaded on the first zstd layer; when
 * it does not load (not installed, or installed with `--ignore-scripts` so it was never built),
 * zstd layers are read with fzstd, a pure-JavaScript streaming decoder (loaded on first use too),
 * and zstd *output* fails with `ZSTD_UNAVAILABLE`. `ENCLAVIFY_ZSTD=js` forces that mode.
 */
import type * as Zlib from 'node:zlib';
import { availableParallelism } from 'node:os';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createRequire } from 'node:module';

// node:zlib loads when a layer is first (de)compressed: a push or a `--no-validate` copy of
// stored blobs never needs it.
let zlibModule: typeof Zlib | undefined;
const zlib = (): typeof Zlib => (zlibModule ??= createRequire(import.meta.url)('node:zlib') as typeof Zlib);
import type * as ZstdNapi from 'zstd-napi';
import type * as Fzstd from 'fzstd';
import type { Compression } from './media-types.js';
import { EnclavifyError } from './errors.js';

/** zstd-napi once loaded; `null` when it failed to load (the error is kept for messages). */
let zstdModule: typeof ZstdNapi | null | undefined;
let zstdLoadError: unknown;

/**
 * zstd-napi (a native addon), loaded on the first zstd layer rather than by every command;
 * `undefined` when it cannot be loaded or `ENCLAVIFY_ZSTD=js` asks for the JavaScript decoder.
 */
function nativeZstd(): typeof ZstdNapi | undefined {
  if (process.env.ENCLAVIFY_ZSTD === 'js') return undefined;
  if (zstdModule === undefined) {
    try {
      // A native addon: required at run time from node_modules, never bundled.
      zstdModule = createRequire(import.meta.url)('zstd-napi') as typeof ZstdNapi;
    } catch (e) {
      zstdModule = null;
      zstdLoadError = e;
    }
  }
  return zstdModule ?? undefined;
}

/**
 * Which zstd implementation this process uses now: `native` (zstd-napi) or `js` (fzstd, reading
 * only). Loads the addon if it was not loaded yet. For diagnostics and tests.
 * @internal
 */
export function zstdImplementation(): 'native' | 'js' {
  return nativeZstd() ? 'native' : 'js';
}

let fzstdModule: Promise<typeof Fzstd> | undefined;

/**
 * zstd decompression in JavaScript (fzstd's streaming `Decompress`), for when the addon is missing.
 * fzstd is imported on the first chunk; each decoded block is pushed as it comes (at most 128 KiB).
 */
class JsZstdDecompress extends Transform {
  private decoder: Fzstd.Decompress | undefined;

  private async load(): Promise<Fzstd.Decompress> {
    const { Decompress } = await (fzstdModule ??= import('fzstd'));
    this.decoder ??= new Decompress((data) => {
      if (data.length) this.push(Buffer.from(data.buffer, data.byteOffset, data.length));
    });
    return this.decoder;
  }

  private feed(chunk: Uint8Array, final: boolean, cb: TransformCallback): void {
    const run = (d: Fzstd.Decompress) => {
      try {
        d.push(chunk, final);
      } catch (e) {
        // fzstd's errors are Errors (ZstdError); layer.ts turns them into BAD_LAYER once the blob's digest is known.
        cb(e as Error);
        return;
      }
      cb();
    };
    if (this.decoder) run(this.decoder);
    else this.load().then(run, (e: unknown) => cb(e as Error));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.feed(chunk, false, cb);
  }

  override _flush(cb: TransformCallback): void {
    this.feed(new Uint8Array(0), true, cb);
  }
}

/** A stream that decompresses a layer blob of the given compression. */
export function decompressor(c: Compression): Transform {
  if (c === 'gzip') return zlib().createGunzip({ chunkSize: 256 * 1024 });
  if (c === 'zstd') {
    const z = nativeZstd();
    return z ? (new z.DecompressStream() as unknown as Transform) : new JsZstdDecompress();
  }
  return new PassThrough();
}

/**
 * Throws `ZSTD_UNAVAILABLE` unless zstd output can be written (zstd-napi loads). Called before
 * a zstd layer is built, so that the failure comes before any work.
 */
export function requireZstdOutput(): void {
  if (nativeZstd()) return;
  const why = process.env.ENCLAVIFY_ZSTD === 'js' ? 'ENCLAVIFY_ZSTD=js is set' : 'the zstd-napi addon does not load';
  throw new EnclavifyError(
    'ZSTD_UNAVAILABLE',
    `cannot write zstd layers: ${why}. zstd output needs the optional dependency zstd-napi built for this Node (install it with scripts allowed and a C/C++ compiler: \`npm install zstd-napi\`, or \`npm rebuild zstd-napi\` after an install with --ignore-scripts), or write gzip (the default); zstd layers are read without it`,
    zstdLoadError === undefined || process.env.ENCLAVIFY_ZSTD === 'js' ? undefined : { cause: zstdLoadError },
  );
}

/** Options for compressing new layers. */
export interface CompressionOptions {
  compression: Compression;
  /** gzip 1-9 (default {@link DEFAULT_GZIP_LEVEL}), zstd 1-19 (default {@link DEFAULT_ZSTD_LEVEL}); not for `none`. */
  level?: number | undefined;
}

/**
 * The default gzip level of new layers, chosen by measurement (docs/performance.md, "Compression
 * level"): on the python image's full conversion level 2 takes ~20% less CPU than level 6 for
 * ~4% more bytes; level 1 is no faster and 1% larger. Deflate is the largest single cost of a
 * conversion that rewrites a large layer.
 */
export const DEFAULT_GZIP_LEVEL = 2;
/** The default zstd level of new layers (zstd's own default). */
export const DEFAULT_ZSTD_LEVEL = 3;

/**
 * Throws `BAD_OPTIONS` unless `c` names a compression and a level it has (gzip 1-9, zstd 1-19,
 * none without a level), and `ZSTD_UNAVAILABLE` for zstd output without the addon: called before
 * any work, so that a bad option fails first.
 */
export function checkCompression(c: CompressionOptions): void {
  if (c === null || typeof c !== 'object' || (c.compression !== 'gzip' && c.compression !== 'zstd' && c.compression !== 'none')) {
    throw new EnclavifyError('BAD_OPTIONS', `compression: ${JSON.stringify((c as { compression?: unknown } | null)?.compression)} is not gzip, zstd or none`);
  }
  if (c.level !== undefined) {
    if (c.compression === 'none') throw new EnclavifyError('BAD_OPTIONS', 'compression: no level for compression none');
    const max = c.compression === 'gzip' ? 9 : 19;
    if (!Number.isInteger(c.level) || c.level < 1 || c.level > max) throw new EnclavifyError('BAD_OPTIONS', `compression: level ${String(c.level)} is not a ${c.compression} level (1-${max})`);
  }
  if (c.compression === 'zstd') requireZstdOutput();
}

/**
 * zstd layers are compressed by zstd's own worker threads (its multi-threaded mode), so the main
 * thread only hands them input instead of compressing on the event loop: the python image's full
 * conversion with `--compression zstd` 2.72 → 2.38 s (docs/performance.md). That mode's output
 * depends on the job size and never on the number of workers (one or more) nor on how the input
 * is chunked, so a layer's bytes are the same on every machine (spec/oci/compression.spec.ts):
 * the job size is fixed, and there is always at least one worker. 2 MiB jobs cost ~0.6% in size
 * against one single-threaded frame; the workers hold a few jobs' buffers (peak RSS +20 MB with
 * one), so at most two, leaving a core to the rest of the conversion.
 */
export const ZSTD_JOB_SIZE = 2 << 20;
const zstdWorkers = (): number => Math.max(1, Math.min(2, availableParallelism() - 1));

/** A stream that compresses a layer tar. */
export function compressor({ compression, level }: CompressionOptions): Transform {
  if (compression === 'gzip') return new ParallelGzip(level ?? DEFAULT_GZIP_LEVEL);
  if (compression === 'zstd') {
    requireZstdOutput();
    return new (nativeZstd()!.CompressStream)({ compressionLevel: level ?? DEFAULT_ZSTD_LEVEL, nbWorkers: zstdWorkers(), jobSize: ZSTD_JOB_SIZE }) as unknown as Transform;
  }
  return new PassThrough();
}

/** Guess a blob's compression from its first bytes (docker archives do not say). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * gzip on every core: the input is cut into fixed 1 MiB blocks, each compressed as a complete gzip
 * member on libuv's thread pool, and the members are written in order. A concatenation of gzip
 * members is one valid gzip stream (RFC 1952; Go's, Python's, Node's and pigz's readers read it
 * whole), the output is deterministic for a given input and level, and the ratio loss is tiny
 * (each block restarts the 32 KiB window). Recompressing a large rewritten layer is the slowest
 * step of a conversion, and a single zlib stream uses one core.
 */
export class ParallelGzip extends Transform {
  static readonly BLOCK = 1 << 20;
  // The block being filled: every input byte is copied once, into it. (Concatenating what was
  // buffered with each new chunk copied a large chunk again for every block cut from it:
  // quadratic, a 175 MB protection manifest was copied gigabytes over.)
  private block: Buffer | undefined;
  private filled = 0;
  private queue: Array<Promise<Buffer>> = [];
  private readonly maxInFlight = Math.max(2, availableParallelism() + 1);

  constructor(private readonly level: number) {
    super();
  }

  private submit(block: Buffer): void {
    // An output buffer that holds a whole member (deflate can grow incompressible input a little):
    // zlib's default of 16 KiB costs a thread-pool round trip and a callback on the main thread
    // per 16 KiB (~0.5 s of main thread on a 233 MB layer). The bytes are the same either way.
    const chunkSize = block.length + (block.length >> 3) + 1024;
    const p = new Promise<Buffer>((resolve, reject) => zlib().gzip(block, { level: this.level, chunkSize }, (e, out) => (e ? reject(e) : resolve(out))));
    p.catch(() => undefined);
    this.queue.push(p);
  }

  /** Push finished members in order; wait while too many are in flight. */
  private async drain(all: boolean): Promise<void> {
    while (this.queue.length > (all ? 0 : this.maxInFlight - 1)) this.push(await this.queue.shift()!);
  }

  override _transform(chunk: Uint8Array, _enc: BufferEncoding, cb: TransformCallback): void {
    const work = async () => {
      let off = 0;
      while (off < chunk.length) {
        this.block ??= Buffer.allocUnsafe(ParallelGzip.BLOCK);
        const n = Math.min(chunk.length - off, ParallelGzip.BLOCK - this.filled);
        this.block.set(chunk.subarray(off, off + n), this.filled);
        off += n;
        this.filled += n;
        if (this.filled === ParallelGzip.BLOCK) {
          this.submit(this.block);
          this.block = undefined;
          this.filled = 0;
          await this.drain(false);
        }
      }
    };
    work().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    // An empty input still gives one (empty) member, as a plain gzip stream would.
    if (this.filled > 0 || this.queue.length === 0) this.submit((this.block ?? Buffer.alloc(0)).subarray(0, this.filled));
    this.block = undefined;
    this.filled = 0;
    this.drain(true).then(() => cb(), cb);
  }
}
