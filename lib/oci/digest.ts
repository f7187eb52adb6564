/** Content digests: computing them while bytes stream, and refusing blobs that do not match. */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { clip, EnclavifyError, shortDigest } from './errors.js';

const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const HEX = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ } as const;

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/**
 * Checks a digest's grammar and, for the algorithms we can verify, its encoding. Returns
 * [algorithm, encoded]; throws an error naming `what` otherwise.
 */
export function parseDigest(digest: unknown, what: string): ['sha256' | 'sha512', string] {
  const m = typeof digest === 'string' ? DIGEST_RE.exec(digest) : null;
  if (!m) throw new EnclavifyError('BAD_DIGEST', `${what}: ${typeof digest === 'string' ? JSON.stringify(clip(digest)) : `a ${digest === null ? 'null' : typeof digest}`} is not a valid digest`);
  const alg = m[1];
  if (alg !== 'sha256' && alg !== 'sha512') {
    throw new EnclavifyError('UNSUPPORTED_DIGEST', `${what}: digest algorithm ${clip(alg)} is not supported (sha256, sha512)`);
  }
  if (!HEX[alg].test(m[2])) throw new EnclavifyError('BAD_DIGEST', `${what}: ${clip(digest as string)} has a malformed ${alg} encoding`);
  return [alg, m[2]];
}

/** A pass-through stream that counts bytes and hashes them; `digest` is set once it ends. */
export class HashingStream extends Transform {
  private hash: Hash;
  bytes = 0;
  digest?: string;
  constructor(private readonly algorithm: 'sha256' | 'sha512' = 'sha256') {
    super({ highWaterMark: 1 << 20 });
    this.hash = createHash(algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.digest = `${this.algorithm}:${this.hash.digest('hex')}`;
    cb();
  }
}

/**
 * A pass-through stream that fails (instead of ending) when the bytes do not have the expected
 * size and digest. The check on size happens as bytes arrive, so an oversized blob is cut off
 * early; the digest is checked at the end, before the consumer sees the end of the stream.
 */
export class VerifyingStream extends Transform {
  private hash: Hash;
  private bytes = 0;
  /** @param before settles before the stream may end successfully (e.g. another check of the same blob). */
  constructor(
    private readonly expected: { digest: string; size?: number },
    private readonly what: string,
    private before?: Promise<void>,
  ) {
    // Large buffers: chunks of a socket or a file pass without a pause per chunk.
    super({ highWaterMark: 1 << 20 });
    const [alg] = parseDigest(expected.digest, what);
    this.hash = createHash(alg);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expected.size !== undefined && this.bytes > this.expected.size) {
      cb(new EnclavifyError('BLOB_SIZE_MISMATCH', `${this.what}: blob ${shortDigest(this.expected.digest)} is larger than the ${this.expected.size} bytes its descriptor says`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.before) {
      const before = this.before;
      this.before = undefined as never;
      before.then(() => this._flush(cb), (e: Error) => cb(e));
      return;
    }
    if (this.expected.size !== undefined && this.bytes !== this.expected.size) {
      cb(new EnclavifyError('BLOB_SIZE_MISMATCH', `${this.what}: blob ${shortDigest(this.expected.digest)} is truncated: ${this.bytes} of ${this.expected.size} bytes`));
      return;
    }
    const got = `${this.expected.digest.split(':')[0]}:${this.hash.digest('hex')}`;
    if (got !== this.expected.digest) {
      cb(new EnclavifyError('BLOB_DIGEST_MISMATCH', mismatchMessage(this.what, this.expected)));
      return;
    }
    cb();
  }
}

/**
 * The message of a digest mismatch: the expected digest and size only. Never the digest of the
 * bytes found: they may be a host file reached through a symlink, and its digest tells which one.
 */
export function mismatchMessage(what: string, expected: { digest: string; size?: number | undefined }): string {
  const size = expected.size !== undefined ? ` ${expected.size}-byte` : '';
  return `${what}: blob ${expected.digest} does not match its content (the${size} blob is corrupt or was tampered with)`;
}

/** Verifies bytes already in memory against a descriptor. */
export function verifyBytes(data: Uint8Array, expected: { digest: string; size?: number }, what: string): void {
  const [alg] = parseDigest(expected.digest, what);
  if (expected.size !== undefined && data.length !== expected.size) {
    throw new EnclavifyError('BLOB_SIZE_MISMATCH', `${what}: blob ${shortDigest(expected.digest)} has ${data.length} bytes, its descriptor says ${expected.size}`);
  }
  const got = `${alg}:${createHash(alg).update(data).digest('hex')}`;
  if (got !== expected.digest) {
    throw new EnclavifyError('BLOB_DIGEST_MISMATCH', mismatchMessage(what, { digest: expected.digest, size: data.length }));
  }
}

const BLOB_CHECK = Symbol('enclavify.blobCheck');

/**
 * Attaches to a stream of a blob's bytes (or of what they decompress to) the check that the blob
 * matches its digest: resolves once it is verified, rejects with the mismatch. Readers that find a
 * problem before the stream has ended call it through {@link heldError} before saying anything
 * about the bytes, since until then the bytes may be anything (a host file, through a symlink).
 */
export function setBlobCheck<T extends object>(stream: T, check: () => Promise<void>): T {
  (stream as { [BLOB_CHECK]?: () => Promise<void> })[BLOB_CHECK] = check;
  return stream;
}

/** The check {@link setBlobCheck} attached to `stream`, if any. */
export function blobCheckOf(stream: unknown): (() => Promise<void>) | undefined {
  return typeof stream === 'object' && stream !== null ? (stream as { [BLOB_CHECK]?: () => Promise<void> })[BLOB_CHECK] : undefined;
}

/**
 * The error to report for a problem `e` found while reading `stream` before its end: the blob's
 * digest is checked first (finishing or repeating the read of the stored blob), and a mismatch
 * replaces `e`, whose message may quote bytes of the blob. `e` itself when the blob verifies or the
 * stream carries no check.
 */
export async function heldError(stream: unknown, e: unknown): Promise<unknown> {
  const check = blobCheckOf(stream);
  if (!check) return e;
  try {
    await check();
  } catch (mismatch) {
    return mismatch;
  }
  return e;
}

const VERIFIED_DIGEST = Symbol('enclavify.verifiedDigest');

/**
 * Records that `stream` ends only once its bytes hashed to `digest` (a {@link VerifyingStream}):
 * a consumer that would hash them again for the same digest can rely on the end instead.
 */
export function setVerifiedDigest<T extends object>(stream: T, digest: string): T {
  (stream as { [VERIFIED_DIGEST]?: string })[VERIFIED_DIGEST] = digest;
  return stream;
}

/** The digest {@link setVerifiedDigest} recorded, if any. */
export function verifiedDigestOf(stream: unknown): string | undefined {
  return typeof stream === 'object' && stream !== null ? (stream as { [VERIFIED_DIGEST]?: string })[VERIFIED_DIGEST] : undefined;
}

const KNOWN_LENGTH = Symbol('enclavify.knownLength');

/** Records how many bytes `stream` will yield (e.g. an uncompressed layer blob: its size). */
export function setKnownLength<T extends object>(stream: T, length: number): T {
  (stream as { [KNOWN_LENGTH]?: number })[KNOWN_LENGTH] = length;
  return stream;
}

/** The length {@link setKnownLength} recorded, if any. */
export function knownLengthOf(stream: unknown): number | undefined {
  return typeof stream === 'object' && stream !== null ? (stream as { [KNOWN_LENGTH]?: number })[KNOWN_LENGTH] : undefined;
}
