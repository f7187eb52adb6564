/**
 * Validating a copy in the same pass as writing it: each layer's verified compressed bytes go to
 * the destination writer and, through a tee, to the layer check (decompressed to its diff_id,
 * tar well formed, no `..`, no write through a symlink), so a registry source is downloaded once.
 * The writer commits nothing until {@link ValidatingLayers.validated} has resolved.
 */
import { PassThrough, type Readable } from 'node:stream';
import { entryBudget, RootFs, scanLayer, type LayerIndex, type LayerSource } from '../fs/merged.js';
import { abortable } from '../oci/abort.js';
import { EnclavifyError } from '../oci/errors.js';
import { withLayerObjects, type Image, type Layer } from '../oci/image.js';
import { uncompressedFrom } from '../oci/layer.js';
import type { ProgressListener } from '../oci/progress.js';

/** What {@link validatingImage} returns. */
export interface ValidatingLayers {
  /** The image whose layers' first `compressed()` streams also feed the check. */
  image: Image;
  /**
   * Resolves once every layer has been checked, and the layers merge safely; rejects with the
   * first problem. Layers the writer never read (already in the destination, or stored once for
   * two descriptors) are read from the source now. Call it once the writer has read all it will.
   */
  validated(): Promise<void>;
  /** Stops the check (the writer failed): streams still feeding it are ended, nothing is left waiting. */
  cancel(reason: Error): void;
}

interface Slot {
  layer: Layer;
  /** The tee's scan side, once the writer opened the layer. */
  tapped?: Readable;
  scan?: Promise<LayerIndex>;
}

/**
 * Wraps `image` so that writing it also validates it (see the module comment). `onProgress`
 * gets one `validate` message event; byte progress is the writer's.
 */
export async function validatingImage(image: Image, options: { signal?: AbortSignal | undefined; onProgress?: ProgressListener | undefined; maxEntries?: number | undefined } = {}): Promise<ValidatingLayers> {
  const { signal } = options;
  const inner = await image.layers();
  const slots: Slot[] = inner.map((layer) => ({ layer }));
  let cancelled: Error | undefined;
  const budget = entryBudget(image.name, options.maxEntries);
  options.onProgress?.({ phase: 'validate', image: image.name, message: `validating ${inner.length} layers of ${image.name} while writing` });

  const scanOf = (s: Slot, open: () => Promise<Readable>): Promise<LayerIndex> => {
    const p = scanLayer({ name: s.layer.name, open: async () => abortable(await open(), signal) }, { hashContents: false, budget });
    p.catch(() => undefined); // looked at in validated()
    return p;
  };

  const layers = slots.map((s): Layer => ({
    mediaType: s.layer.mediaType,
    compression: s.layer.compression,
    name: s.layer.name,
    annotations: s.layer.annotations,
    digest: () => s.layer.digest(),
    size: () => s.layer.size(),
    diffId: () => s.layer.diffId(),
    uncompressed: () => s.layer.uncompressed(),
    compressed: async () => {
      const comp = await s.layer.compressed();
      if (s.scan || cancelled) return comp; // a second read (a retry of the writer): no second check
      const forWriter = new PassThrough({ highWaterMark: 1 << 20 });
      const forScan = new PassThrough({ highWaterMark: 1 << 20 });
      s.tapped = forScan;
      s.scan = scanOf(s, async () => uncompressedFrom(forScan, s.layer.compression, await s.layer.diffId(), s.layer.name));
      tee(comp, forWriter, forScan);
      return forWriter;
    },
  }));

  return {
    image: withLayerObjects(image, async () => layers),
    async validated() {
      if (cancelled) throw cancelled;
      for (const s of slots) s.scan ??= scanOf(s, () => s.layer.uncompressed());
      const indexes: LayerIndex[] = [];
      for (const s of slots) indexes.push(await s.scan!);
      const sources: LayerSource[] = slots.map((s) => ({ name: s.layer.name, open: () => s.layer.uncompressed() }));
      RootFs.fromIndexes(sources, indexes); // the merge: writes through symlinks are refused here
    },
    cancel(reason) {
      cancelled ??= reason;
      for (const s of slots) s.tapped?.destroy(reason);
    },
  };
}

/**
 * Copies `src` to both outputs, as fast as the slower one takes it. The writer's side carries
 * `src`'s errors (a digest mismatch) and its end; when the check's side fails (a corrupt tar),
 * it is dropped and the writer goes on, so that a blob that does not match its digest is still
 * named as such: the check's error is reported by `validated()` before anything is committed.
 */
function tee(src: Readable, writer: PassThrough, scan: PassThrough): void {
  let scanAlive = true;
  let pending = 0;
  const release = () => {
    if (--pending === 0 && !src.destroyed) src.resume();
  };
  let scanHold: (() => void) | undefined; // releases the wait for the check's drain
  const dropScan = () => {
    if (!scanAlive) return;
    scanAlive = false;
    scanHold?.();
  };
  scan.once('close', dropScan);
  scan.on('error', dropScan);
  src.on('data', (chunk: Buffer) => {
    if (!writer.write(chunk)) {
      pending++;
      writer.once('drain', release);
    }
    if (scanAlive && !scan.write(chunk)) {
      pending++;
      let done = false;
      const hold = () => {
        if (done) return;
        done = true;
        scanHold = undefined;
        release();
      };
      scanHold = hold;
      scan.once('drain', hold);
    }
    if (pending > 0) src.pause();
  });
  src.on('end', () => {
    writer.end();
    if (scanAlive) scan.end();
  });
  src.on('error', (e) => {
    writer.destroy(e);
    if (scanAlive) scan.destroy(e);
  });
  // The writer gave up (its own failure, or an abort): nothing more to read.
  writer.on('close', () => {
    if (!src.readableEnded) {
      src.destroy();
      if (scanAlive) scan.destroy(new EnclavifyError('ABORTED', 'the write of this layer stopped'));
    }
  });
}
