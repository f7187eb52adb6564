/** Layer implementations: blobs from a store (verified while streaming) and newly built layers. */
import { noSpaceError } from '../store/space.js';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline as pipe } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { compressor, decompressor, type CompressionOptions } from './compression.js';
import { blobCheckOf, HashingStream, heldError, setBlobCheck, setKnownLength, setVerifiedDigest, VerifyingStream } from './digest.js';
import { EnclavifyError, isAbortError, shortDigest } from './errors.js';
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
    // An uncompressed blob's length is its size: the tar reader refuses entries running past it at once.
    const length = this.compression === 'none' ? await this.size() : undefined;
    return uncompressedFrom(comp, this.compression, diffId, this.name, {
      // read the stored blob again to learn whether it matches (only on error paths)
      recheck: async () => {
        await pipe(await this.compressed(), new Writable({ write: (_c, _e, cb) => cb() }));
      },
      length,
    });
  }
}

/**
 * The uncompressed tar of a layer from its (verifying) compressed stream `comp`, checked against
 * the diff_id. The stored blob is verified only once all of it has been read: a decompressor may
 * stop early (bytes after the end of a gzip stream), the rest is then drained, and the stream
 * the consumer reads ends only when the blob's digest has been checked too.
 */
export function uncompressedFrom(
  comp: Readable,
  compression: Compression,
  diffId: string,
  name: string,
  options: { recheck?: (() => Promise<void>) | undefined; length?: number | undefined } = {},
): Readable {
  let compState: 'pending' | 'ok' | { error: unknown } = 'pending';
  const compDone = new Promise<void>((resolve, reject) => {
    comp.once('end', () => {
      compState = 'ok';
      resolve();
    });
    comp.once('error', (e) => {
      compState = { error: e };
      reject(e);
    });
  });
  compDone.catch(() => undefined);
  const dec = decompressor(compression);
  // Whether the stored blob matches its digest: known once it was read to the end; otherwise
  // found out by reading it again (`recheck`) or by draining the rest of it. Used only on error
  // paths: a problem found mid-stream is reported once the bytes it is about are the blob's.
  const check = async (): Promise<void> => {
    const st = compState as typeof compState;
    if (st === 'ok') return;
    if (typeof st === 'object') throw st.error;
    if (options.recheck) return options.recheck();
    if (comp.destroyed) throw new EnclavifyError('BAD_LAYER', `${name}: the blob was not read to its end, so its digest is unknown`);
    comp.unpipe(dec);
    comp.once('close', () => {
      if (compState === 'pending') compState = { error: new EnclavifyError('BAD_LAYER', `${name}: the blob was not read to its end, so its digest is unknown`) };
    });
    comp.resume();
    await new Promise<void>((resolve, reject) => {
      compDone.then(resolve, reject);
      comp.once('close', () => (compState === 'ok' ? resolve() : typeof compState === 'object' ? reject(compState.error) : undefined));
    });
  };
  comp.on('error', (e) => dec.destroy(e));
  comp.pipe(dec);
  dec.once('end', () => {
    if (!comp.readableEnded) {
      comp.unpipe(dec);
      comp.resume();
    }
  });
  // The uncompressed bytes must hash to the config's diff_id: a layer that lies is refused.
  const out = new VerifyingStream({ digest: diffId }, `${name} (uncompressed, diff_id ${shortDigest(diffId)})`, compDone);
  // A decompression error is held until the blob's digest is known: a blob that does not match
  // is reported as that, and nothing about what its bytes decompress to.
  dec.on('error', (e: Error) => {
    if (e instanceof EnclavifyError) {
      out.destroy(e);
      return;
    }
    // A stream stopped by a signal is cancelled, not corrupt: reported at once, as that.
    if (isAbortError(e)) {
      out.destroy(new EnclavifyError('ABORTED', `${name}: cancelled`, { cause: e }));
      return;
    }
    heldError(out, e).then((r) => {
      if (r === e) {
        out.destroy(new EnclavifyError('BAD_LAYER', `${name}: cannot decompress the ${compression} blob (${e.message}): the blob is corrupt or not what its media type says`, { cause: e }));
      } else out.destroy(r as Error);
    }, (x: unknown) => out.destroy(x as Error));
  });
  out.on('close', () => {
    if (!comp.readableEnded) comp.destroy();
    dec.destroy();
  });
  dec.pipe(out);
  if (options.length !== undefined) setKnownLength(out, options.length);
  setVerifiedDigest(out, diffId);
  return setBlobCheck(out, check);
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
  const check = blobCheckOf(src);
  return check ? setBlobCheck(dst, check) : dst;
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
