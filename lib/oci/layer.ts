/** Layer implementations: blobs from a store (verified while streaming) and newly built layers. */
import { noSpaceError } from '../store/space.js';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline as pipe } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { compressor, decompressor, type CompressionOptions } from './compression.js';
import { HashingStream, VerifyingStream } from './digest.js';
import { shortDigest } from './errors.js';
import { lazy, type Layer } from './image.js';
import { ociLayerType, type Compression } from './media-types.js';
import { ByteProgress, progressTap, type ProgressEvent, type ProgressListener } from './progress.js';
import { withSignal } from './abort.js';

/** Opens a raw blob's bytes (unverified) and names it for errors. */
export type BlobOpener = () => Promise<Readable>;

/**
 * A layer whose stored blob is known by descriptor (digest and size) and whose diff_id comes from
 * the config. Both the compressed and the uncompressed streams are verified.
 */
export class BlobLayer implements Layer {
  readonly digest: () => Promise<string>;
  readonly size: () => Promise<number>;
  readonly diffId: () => Promise<string>;
  constructor(
    readonly mediaType: string,
    readonly compression: Compression,
    readonly name: string,
    private readonly open: BlobOpener,
    desc: { digest: string | (() => Promise<string>); size: number | (() => Promise<number>); diffId: string },
    readonly annotations?: Record<string, string>,
  ) {
    const d = desc.digest, s = desc.size;
    this.digest = typeof d === 'string' ? async () => d : lazy(d);
    this.size = typeof s === 'number' ? async () => s : lazy(s);
    this.diffId = async () => desc.diffId;
  }
  /**
   * The stored blob's bytes, **unverified**: for a consumer that checks the digest itself (a
   * registry verifies every upload against the digest it is pushed as, so a push need not hash
   * it again). Everyone else reads {@link compressed}.
   */
  async stored(): Promise<Readable> {
    return this.open();
  }
  async compressed(): Promise<Readable> {
    const raw = await this.open();
    const v = new VerifyingStream({ digest: await this.digest(), size: await this.size() }, this.name);
    return chain(raw, v);
  }
  async uncompressed(): Promise<Readable> {
    const diffId = await this.diffId();
    const comp = await this.compressed();
    // The stored blob is verified only once all of it has been read. A decompressor may stop
    // early (bytes after the end of a gzip stream): the rest is then drained, and the stream the
    // consumer reads ends only when the blob's digest has been checked too.
    const compDone = new Promise<void>((resolve, reject) => {
      comp.once('end', resolve);
      comp.once('error', reject);
    });
    compDone.catch(() => undefined);
    const dec = decompressor(this.compression);
    dec.on('error', (e: Error) => {
      if (!e.message.includes(this.name)) e.message = `${this.name}: ${e.message}`;
    });
    comp.on('error', (e) => dec.destroy(e));
    comp.pipe(dec);
    dec.once('end', () => {
      if (!comp.readableEnded) {
        comp.unpipe(dec);
        comp.resume();
      }
    });
    // The uncompressed bytes must hash to the config's diff_id: a layer that lies is refused.
    const out = new VerifyingStream({ digest: diffId }, `${this.name} (uncompressed, diff_id ${shortDigest(diffId)})`, compDone);
    dec.on('error', (e) => out.destroy(e));
    out.on('close', () => {
      if (!comp.readableEnded) comp.destroy();
      dec.destroy();
    });
    dec.pipe(out);
    return out;
  }
}

/**
 * Pipe `src` into `dst`, forwarding `src`'s errors so the consumer of `dst` sees them. With
 * `what`, errors of `dst` itself (e.g. zlib's "incorrect header check") are prefixed with it, so
 * a corrupt blob is named.
 */
export function chain<T extends NodeJS.ReadWriteStream & Readable>(src: Readable, dst: T, what?: string): T {
  if (what) {
    dst.on('error', (e: Error) => {
      if (!e.message.includes(what)) e.message = `${what}: ${e.message}`;
    });
  }
  src.on('error', (e) => dst.destroy(e));
  dst.on('close', () => src.destroy());
  src.pipe(dst);
  return dst;
}

/** What owns a staged layer's file: reading the layer after its owner is disposed fails with `DISPOSED`. */
export interface LayerScope {
  /** Throws `DISPOSED` (naming `what`) once the owner is disposed. */
  check(what: string): void;
}

/** A newly built layer held in a temporary file, with all digests computed while it was written. */
export class FileLayer implements Layer {
  constructor(
    readonly file: string,
    readonly compression: Compression,
    readonly name: string,
    private readonly digests: { digest: string; size: number; diffId: string },
    readonly mediaType: string = ociLayerType(compression),
    readonly annotations?: Record<string, string>,
    private readonly scope?: LayerScope,
  ) {}
  async digest(): Promise<string> { return this.digests.digest; }
  async size(): Promise<number> { return this.digests.size; }
  async diffId(): Promise<string> { return this.digests.diffId; }
  async compressed(): Promise<Readable> {
    this.scope?.check(this.name);
    return createReadStream(this.file, { highWaterMark: 1 << 20 });
  }
  async uncompressed(): Promise<Readable> { return chain(await this.compressed(), decompressor(this.compression)); }
  /** Remove the backing file. */
  async dispose(): Promise<void> { await rm(this.file, { force: true }); }
}

/** Options of {@link buildLayer}. */
export type BuildLayerOptions = {
  /** The uncompressed tar. */
  tar: Readable;
  /** Where the layer's temporary file goes. */
  tmpDir: string;
  /** A name for messages. */
  name: string;
  annotations?: Record<string, string> | undefined;
  /** Byte progress (phase `layer`, the compressed bytes written). */
  onProgress?: ProgressListener | undefined;
  /** Fields every progress event carries (e.g. the transform). */
  progressEvent?: Partial<ProgressEvent> | undefined;
  /** Cancels the build (the temporary file is removed). */
  signal?: AbortSignal | undefined;
  /** The owner of `tmpDir`: the layer refuses to be read once it is disposed. */
  scope?: LayerScope | undefined;
} & CompressionOptions;

/**
 * Builds a layer from an uncompressed tar stream: compresses it into a temporary file under
 * `tmpDir`, computing diff_id, compressed digest and size in the same single pass.
 */
export async function buildLayer(opts: BuildLayerOptions): Promise<FileLayer> {
  const file = path.join(opts.tmpDir, `layer-${randomBytes(8).toString('hex')}.tmp`);
  const diff = new HashingStream();
  const comp = new HashingStream();
  const progress = opts.onProgress && new ByteProgress(opts.onProgress, { phase: 'layer', message: `building ${opts.name}`, ...opts.progressEvent });
  try {
    progress?.start();
    if (progress) await pipe(opts.tar, diff, compressor(opts), comp, progressTap(progress), createWriteStream(file), withSignal(opts.signal));
    else await pipe(opts.tar, diff, compressor(opts), comp, createWriteStream(file), withSignal(opts.signal));
    progress?.finish();
  } catch (e) {
    await rm(file, { force: true });
    throw (await noSpaceError(e, file, `building ${opts.name} in the temporary directory`)) ?? e;
  }
  return new FileLayer(file, opts.compression, opts.name, { digest: comp.digest!, size: comp.bytes, diffId: diff.digest! }, ociLayerType(opts.compression), opts.annotations, opts.scope);
}
