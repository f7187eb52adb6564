/**
 * Shared helpers for the encrypted-files specs: the fixtures' plaintext pattern, chunked sources
 * and stream collection.
 */
import type { Readable } from 'node:stream';

/** Byte i of the fixtures' pattern plaintext: (i * 31 + 7) mod 251. */
export function patternBytes(start: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let v = (((start % 251) * 31) + 7) % 251;
  for (let i = 0; i < length; i++) {
    out[i] = v;
    v = (v + 31) % 251;
  }
  return out;
}

/** The pattern of `size` bytes as an async source with varying chunk sizes (exercises node seams). */
export async function* patternSource(size: number, chunkSizes = [1, 4095, 4097, 65536, 3071, 200000, 13]): AsyncGenerator<Uint8Array> {
  let off = 0;
  let k = 0;
  while (off < size) {
    const n = Math.min(chunkSizes[k++ % chunkSizes.length], size - off);
    yield patternBytes(off, n);
    off += n;
  }
}

/** Reads a whole Readable into one Buffer. */
export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Lowercase hex. */
export const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The fixtures' wrap key. */
export const fixtureKey = new Uint8Array(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'));
