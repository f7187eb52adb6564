/** Layer (de)compression streams: gzip from node:zlib, zstd from zstd-napi (Node 20's zlib has none). */
import { createGunzip, gzip, constants as zc } from 'node:zlib';
import { availableParallelism } from 'node:os';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createRequire } from 'node:module';
import type * as ZstdNapi from 'zstd-napi';
import type { Compression } from './media-types.js';

let zstdModule: typeof ZstdNapi | undefined;
/** zstd-napi (a native addon), loaded on the first zstd layer rather than by every command. */
const zstd = (): typeof ZstdNapi => (zstdModule ??= createRequire(import.meta.url)('zstd-napi') as typeof ZstdNapi);

/** A stream that decompresses a layer blob of the given compression. */
export function decompressor(c: Compression): Transform {
  if (c === 'gzip') return createGunzip({ chunkSize: 256 * 1024 });
  if (c === 'zstd') return new (zstd().DecompressStream)() as unknown as Transform;
  return new PassThrough();
}

/** Options for compressing new layers. */
export interface CompressionOptions {
  compression: Compression;
  /** gzip 1-9 (default 6, as Go's and skopeo's default), zstd 1-19 (default 3). */
  level?: number;
}

/** A stream that compresses a layer tar. */
export function compressor({ compression, level }: CompressionOptions): Transform {
  if (compression === 'gzip') return new ParallelGzip(level ?? zc.Z_DEFAULT_COMPRESSION);
  if (compression === 'zstd') {
    return new (zstd().CompressStream)({ compressionLevel: level ?? 3 } as never) as unknown as Transform;
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
  private buf: Buffer[] = [];
  private bufLen = 0;
  private queue: Array<Promise<Buffer>> = [];
  private readonly maxInFlight = Math.max(2, availableParallelism() + 1);

  constructor(private readonly level: number) {
    super();
  }

  private submit(block: Buffer): void {
    const p = new Promise<Buffer>((resolve, reject) => gzip(block, { level: this.level }, (e, out) => (e ? reject(e) : resolve(out))));
    p.catch(() => undefined);
    this.queue.push(p);
  }

  /** Push finished members in order; wait while too many are in flight. */
  private async drain(all: boolean): Promise<void> {
    while (this.queue.length > (all ? 0 : this.maxInFlight - 1)) this.push(await this.queue.shift()!);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.buf.push(chunk);
    this.bufLen += chunk.length;
    const work = async () => {
      while (this.bufLen >= ParallelGzip.BLOCK) {
        const all = Buffer.concat(this.buf, this.bufLen);
        this.submit(all.subarray(0, ParallelGzip.BLOCK));
        const rest = all.subarray(ParallelGzip.BLOCK);
        this.buf = rest.length ? [rest] : [];
        this.bufLen = rest.length;
        await this.drain(false);
      }
    };
    work().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    // An empty input still gives one (empty) member, as a plain gzip stream would.
    if (this.bufLen > 0 || this.queue.length === 0) this.submit(Buffer.concat(this.buf, this.bufLen));
    this.buf = [];
    this.bufLen = 0;
    this.drain(true).then(() => cb(), cb);
  }
}
