/** Layer (de)compression streams: gzip from node:zlib, zstd from zstd-napi (Node 20's zlib has none). */
import { createGunzip, createGzip, constants as zc } from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';
import { CompressStream, DecompressStream } from 'zstd-napi';
import type { Compression } from './media-types.js';

/** A stream that decompresses a layer blob of the given compression. */
export function decompressor(c: Compression): Transform {
  if (c === 'gzip') return createGunzip({ chunkSize: 256 * 1024 });
  if (c === 'zstd') return new DecompressStream() as unknown as Transform;
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
  if (compression === 'gzip') {
    return createGzip({ level: level ?? zc.Z_DEFAULT_COMPRESSION, chunkSize: 256 * 1024 });
  }
  if (compression === 'zstd') {
    return new CompressStream({ compressionLevel: level ?? 3 } as never) as unknown as Transform;
  }
  return new PassThrough();
}

/** Guess a blob's compression from its first bytes (docker archives do not say). */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
