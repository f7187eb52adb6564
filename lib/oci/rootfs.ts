/** The merged root file system of an image's layers, with blob corruption named as such. */
import { Writable } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { RootFs, type LayerIndex, type LayerSource } from '../fs/merged.js';
import type { Layer } from './image.js';
import { chain } from './layer.js';
import { knownLengthOf, setKnownLength } from './digest.js';
import { ByteProgress, progressTap, type ProgressEvent, type ProgressListener, type ProgressPhase } from './progress.js';
import { EnclavifyError, isAbortError } from './errors.js';
import { abortable, withSignal } from './abort.js';
import type { LayerStage } from './stage.js';
import type { ScanCache } from '../store/scan-cache.js';

/** Options of {@link layersRootFs}. */
export interface LayersRootFsOptions {
  /** One byte-progress stream per layer while it is scanned (uncompressed bytes read). */
  onProgress?: ProgressListener | undefined;
  /** Phase of the scan events (default `scan`). */
  phase?: ProgressPhase;
  /** Fields every progress event carries (e.g. the transform). */
  progressEvent?: Partial<ProgressEvent>;
  /** Cancels the scan and every later read through the returned view. */
  signal?: AbortSignal | undefined;
  /** The most entries the layers may hold together (default 2,000,000); more fail with `TOO_MANY_ENTRIES`. */
  maxEntries?: number | undefined;
  /** Names the image in errors (default: `progressEvent.image`, else the first layer's name). */
  image?: string | undefined;
  /**
   * Stages each layer's uncompressed tar while it is scanned, so that the view's later reads of
   * it (and a rescan) read the staged file instead of decompressing the blob again (a pipeline's
   * `stageLayers`; see lib/oci/stage.ts).
   */
  stage?: LayerStage | undefined;
  /**
   * Layer scans (and small files read later) cached across runs: a layer whose scan is cached is
   * not opened (see {@link ScanCache}). Layers built in this process are not cached.
   */
  cache?: ScanCache | undefined;
  /**
   * Layers scanned earlier, by position: `scanned[i]`, when set, is layer `i`'s scan and the
   * source to read it through (e.g. `fs.layers[j]` and `fs.sources[j]` of an earlier view holding
   * the same layer at `j`). Such a layer is neither scanned nor staged again; the view shares
   * its scan with the earlier one.
   */
  scanned?: readonly ({ index: LayerIndex; source: LayerSource } | undefined)[] | undefined;
}

/** The layers as sources of a {@link RootFs} (their streams destroyed when `signal` fires). */
export function layerSources(layers: readonly Layer[], signal?: AbortSignal): LayerSource[] {
  return layers.map((l) => ({ name: l.name, open: async () => abortable(await l.uncompressed(), signal) }));
}

/**
 * Scans layers into a {@link RootFs}. A corrupt compressed blob usually first shows up as a
 * decompression or tar error (gzip checks its CRC only at the end); when the scan fails, the
 * stored blobs are re-checked so that the error names the real cause, a digest mismatch.
 */
export async function layersRootFs(layers: readonly Layer[], options: LayersRootFsOptions = {}): Promise<RootFs> {
  const known = options.scanned;
  const base = layerSources(layers, options.signal).map((s, i) => known?.[i]?.source ?? s);
  // Staged: the scan tees each layer into a file, the view reads from it afterwards.
  const staged = options.stage && base.map((s, i) => (known?.[i] ? { scan: s, read: s } : options.stage!.sources(layers[i], s, options.signal)));
  const sources = staged ? staged.map((s) => s.scan) : base;
  const listener = options.onProgress;
  const scanned = known?.some((k) => k) ? known.map((k) => k?.index) : undefined;
  const scanOptions = { maxEntries: options.maxEntries, image: options.image ?? options.progressEvent?.image, ...(staged ? { readSources: staged.map((s) => s.read) } : {}), ...(scanned ? { scanned } : {}) };
  const readSources = scanOptions.readSources ?? sources;
  // Loaded only with a cache: a conversion without one does not pay for it.
  const scan = options.cache
    ? async (scanned: readonly LayerSource[]) => (await import('./cached-scan.js')).cachedRootFs(layers, scanned, readSources, options.cache!, scanOptions)
    : (scanned: readonly LayerSource[]) => RootFs.scan(scanned, { ...scanOptions, readSources });
  try {
    if (!listener) return await scan(sources);
    // Progress only for the scan: later reads of a few files through the same sources are quiet.
    const counted = sources.map((s, i): LayerSource => ({
      name: s.name,
      open: async () => {
        const p = new ByteProgress(listener, { phase: options.phase ?? 'scan', message: `scanning ${s.name}`, ...options.progressEvent, layer: i }).start();
        const tap = progressTap(p);
        tap.once('end', () => p.finish());
        const input = await s.open();
        const length = knownLengthOf(input);
        const out = chain(input, tap);
        return length === undefined ? out : setKnownLength(out, length); // the tap passes every byte
      },
    }));
    return await scan(counted); // merged once
  } catch (e) {
    // Cancelled (by this signal or by the image's own) or over the limit: nothing to re-check.
    if (options.signal?.aborted || (e instanceof EnclavifyError && (e.code === 'TOO_MANY_ENTRIES' || e.code === 'ABORTED')) || isAbortError(e)) throw e;
    for (const l of layers) {
      try {
        await pipe(await l.compressed(), new Writable({ write: (_c, _e, cb) => cb() }), withSignal(options.signal));
      } catch (digestError) {
        throw digestError;
      }
    }
    throw e;
  }
}
