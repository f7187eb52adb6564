/**
 * Staged layers: one decompression per layer and pipeline (issue 11). While the scan reads a
 * layer, its uncompressed tar is also written to a file in the pipeline's temporary directory;
 * later reads of that layer (file reads, the rewrite of layers with encrypted files, a rescan)
 * read the file instead of decompressing the blob again, and reads of a few files read only
 * their byte ranges (the scan records where each file's data starts, `LayerEntry.offset`).
 *
 * - A staged file counts only once the scan's stream ended and its bytes hashed to the layer's
 *   diff_id (hashed here too: not every layer's stream verifies itself, e.g. a built layer's).
 * - A whole read of it is hashed again and fails with `LAYER_CHANGED` unless it still matches the
 *   diff_id (errors the tar reader finds in it are held until then, as for a blob); a ranged read
 *   is checked by the reader against the scan's SHA-256 of the file. So a staged file changed on
 *   disk is caught like a layer that changed between reads.
 * - Staging is an optimisation and never fails anything: without room for it in the directory
 *   (checked first, and again as it grows), or when a write fails (ENOSPC, EACCES, ...), the
 *   staged file is dropped and the layer is read from its blob as before.
 * - Only reads use it: a layer's compressed blob is never touched, unchanged layers stay
 *   byte-identical.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import type { LayerSource } from '../fs/merged.js';
import { fileSystemOf } from '../store/space.js';
import { abortable } from './abort.js';
import { knownLengthOf, setBlobCheck, setKnownLength, verifiedDigestOf } from './digest.js';
import { EnclavifyError, shortDigest } from './errors.js';
import type { Layer } from './image.js';
import { chain } from './layer.js';

/** Options of {@link LayerStage}. */
export interface LayerStageOptions {
  /** Opens the file a layer is staged in (default `fs.createWriteStream`; tests inject failing writers). */
  openFile?: ((file: string) => Writable) | undefined;
  /** Free bytes staging leaves in the directory on top of room for a rewritten copy of the layer (default 256 MiB). */
  reserve?: number | undefined;
}

/** A layer's staged tar, complete and verified. */
interface StagedFile {
  file: string;
  size: number;
  diffId: string;
}

/** How much larger than its blob a compressed layer's tar is assumed to be, before staging it. */
const RATIO = 4;
/** Free space is checked again each time this many more bytes were staged. */
const RECHECK = 256 << 20;

/**
 * The staged layers of one owner (a pipeline), in its directory `dir`. Layers are known by object:
 * a layer a transform replaced is a new object, staged anew when it is scanned.
 */
export class LayerStage {
  private readonly done = new WeakMap<Layer, StagedFile>();
  private readonly writing = new Map<Layer, number>(); // layer -> estimated size
  private readonly files = new Set<string>();
  private n = 0;
  private closed = false;

  constructor(
    /** Where staged files go (the owner removes the directory, with whatever is left in it). */
    readonly dir: string,
    private readonly options: LayerStageOptions = {},
  ) {}

  /** The staged file of `layer`, when it is complete and usable (for tests and diagnostics). */
  stagedFile(layer: Layer): string | undefined {
    return this.usable(layer)?.file;
  }

  private usable(layer: Layer): StagedFile | undefined {
    return this.closed ? undefined : this.done.get(layer);
  }

  /**
   * The sources of `layer` for a {@link RootFs}: `scan` reads `base` and stages what it reads (or
   * reads the staged file, when an earlier scan staged it); `read` reads the staged file when
   * there is one (whole, or by byte range), else `base`.
   */
  sources(layer: Layer, base: LayerSource, signal?: AbortSignal): { scan: LayerSource; read: LayerSource } {
    const read: LayerSource = {
      name: base.name,
      open: async () => {
        const s = this.usable(layer);
        return s ? abortable(this.openWhole(s, base.name), signal) : base.open();
      },
      openRange: (offset: number, length: number) => {
        const s = this.usable(layer);
        if (!s || offset < 0 || offset + length > s.size) return undefined;
        if (length === 0) return Readable.from([]);
        return abortable(createReadStream(s.file, { start: offset, end: offset + length - 1, highWaterMark: 1 << 20 }), signal);
      },
    };
    const scan: LayerSource = {
      name: base.name,
      open: async () => {
        if (this.usable(layer)) return read.open();
        // The file is reserved before the stream exists: an await between opening a stream and
        // piping it would leave an early error (an aborted image) with no listener.
        const file = this.writing.has(layer) || this.closed ? undefined : await this.begin(layer);
        let input: Readable;
        try {
          input = await base.open();
        } catch (e) {
          if (file) {
            this.writing.delete(layer);
            void this.remove(file);
          }
          throw e;
        }
        return file ? this.tee(layer, input, file) : input;
      },
    };
    return { scan, read };
  }

  /** Reserves a file for `layer` when the directory has room for it; undefined otherwise. */
  private async begin(layer: Layer): Promise<string | undefined> {
    let estimate: number;
    try {
      const size = await layer.size();
      estimate = layer.compression === 'none' ? size : size * RATIO;
    } catch {
      return undefined;
    }
    const pending = [...this.writing.values()].reduce((a, b) => a + b, 0);
    // Room for the staged tar and for a rewritten copy of it (the layer a transform builds from
    // it goes to the same directory): staging must not be what fills the disk.
    if (!(await this.room(2 * estimate + pending))) return undefined;
    if (this.writing.has(layer) || this.closed) return undefined;
    this.writing.set(layer, estimate);
    const file = path.join(this.dir, `staged-${this.n++}.tar`);
    this.files.add(file);
    return file;
  }

  /** Whether the directory's file system has `bytes` free beyond the reserve (unknown sizes: yes). */
  private async room(bytes: number): Promise<boolean> {
    const fs = await fileSystemOf(this.dir).catch(() => undefined);
    if (!fs || fs.size === 0) return true;
    return fs.free >= bytes + (this.options.reserve ?? 256 << 20);
  }

  /** `input`, whose bytes are also written to `file`; the file counts once it matched the diff_id. */
  private tee(layer: Layer, input: Readable, file: string): Readable {
    let out: Writable | undefined;
    // An input that ends only once it matched a digest (the blob's uncompressed stream, checked
    // against the diff_id) need not be hashed a second time here.
    const verified = verifiedDigestOf(input);
    const hash = verified === undefined ? createHash('sha256') : undefined;
    let bytes = 0;
    let nextCheck = RECHECK;
    let failed = false;
    const drop = () => {
      if (failed) return;
      failed = true;
      out?.destroy();
      out = undefined;
      this.writing.delete(layer);
      void this.remove(file);
    };
    try {
      out = (this.options.openFile ?? ((f: string) => createWriteStream(f, { mode: 0o600, highWaterMark: 4 << 20 })))(file);
      // A failed write (ENOSPC, EACCES, EIO...) drops the staged file; the scan goes on.
      out.on('error', drop);
    } catch {
      drop();
    }
    /** Waits until `out` takes more (or failed). */
    const writable = (w: Writable) =>
      new Promise<void>((resolve) => {
        const done = () => {
          w.off('drain', done).off('error', done).off('close', done);
          resolve();
        };
        w.on('drain', done).on('error', done).on('close', done);
      });
    const tee = new Transform({
      highWaterMark: 1 << 20,
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        tee.push(chunk);
        if (!out) return cb();
        hash?.update(chunk);
        bytes += chunk.length;
        const w = out;
        const more = w.write(chunk);
        const next = async () => {
          if (!more) await writable(w);
          if (bytes >= nextCheck && out) {
            nextCheck += RECHECK;
            // Still room for a rewritten copy of what is staged so far (the estimate may be low).
            if (!(await this.room(bytes))) drop();
          }
        };
        next().then(() => cb(), () => cb());
      },
      flush: (cb: TransformCallback) => {
        // The input ended: for a blob's stream, only after its diff_id and digest verified.
        const w = out;
        if (!w) return cb();
        const digest = hash ? `sha256:${hash.digest('hex')}` : verified;
        w.end();
        const settled = new Promise<boolean>((resolve) => {
          w.once('finish', () => resolve(true));
          w.once('error', () => resolve(false));
          w.once('close', () => resolve(!failed));
        });
        Promise.all([settled, layer.diffId()]).then(([ok, diffId]) => {
          this.writing.delete(layer);
          if (ok && !failed && !this.closed && digest === diffId) this.done.set(layer, { file, size: bytes, diffId });
          else drop();
          cb();
        }, () => {
          drop();
          cb();
        });
      },
      destroy: (err, cb) => {
        // Read only in part (an error, an abort): what was written is of no use.
        if (!this.done.has(layer)) drop();
        cb(err);
      },
    });
    const length = knownLengthOf(input);
    const teed = chain(input, tee);
    return length === undefined ? teed : setKnownLength(teed, length);
  }

  /** The staged tar, checked against the diff_id as it is read (`LAYER_CHANGED` otherwise). */
  private openWhole(s: StagedFile, name: string): Readable {
    const what = `${name} (staged copy in the temporary directory, diff_id ${shortDigest(s.diffId)})`;
    const changed = () => new EnclavifyError('LAYER_CHANGED', `${what}: its content no longer matches the diff_id the scan verified; the layer changed between reads`);
    const hash = createHash('sha256');
    let bytes = 0;
    let state: 'pending' | 'ok' | 'bad' = 'pending';
    const check = new Transform({
      highWaterMark: 1 << 20,
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        bytes += chunk.length;
        if (bytes > s.size) return cb(changed());
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb: TransformCallback) {
        const ok = bytes === s.size && `sha256:${hash.digest('hex')}` === s.diffId;
        state = ok ? 'ok' : 'bad';
        cb(ok ? null : changed());
      },
    });
    const out = chain(createReadStream(s.file, { highWaterMark: 1 << 20 }), check);
    // What a reader finds wrong mid-stream is reported once the file is known to be the one
    // the scan verified: a changed file is LAYER_CHANGED, never a tar error quoting its bytes.
    setBlobCheck(out, async () => {
      if (state === 'ok') return;
      if (state === 'bad') throw changed();
      const h = createHash('sha256');
      let n = 0;
      for await (const c of createReadStream(s.file, { highWaterMark: 1 << 20 })) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      if (n !== s.size || `sha256:${h.digest('hex')}` !== s.diffId) throw changed();
    });
    return setKnownLength(out, s.size);
  }

  private async remove(file: string): Promise<void> {
    this.files.delete(file);
    await rm(file, { force: true }).catch(() => undefined);
  }

  /** Removes every staged file; later reads go to the layers' blobs (idempotent). */
  async clear(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.files].map((f) => this.remove(f)));
  }
}
