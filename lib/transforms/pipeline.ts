/**
 * The pipeline: transforms applied in order to a mutable draft of an image, producing a new image
 * plus artifacts (policy, chart, keys, report). Layers a transform does not touch stay the source's
 * layer objects, so they are written byte-identical; a pipeline that changes nothing returns the
 * source image itself (same manifest digest).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Readable } from 'node:stream';
import { abortedError, asEnclavifyError, EnclavifyError } from '../oci/errors.js';
import { throwIfAborted } from '../oci/abort.js';
import type { Image, Layer } from '../oci/image.js';
import { assembleImage } from '../oci/assemble.js';
import { buildLayer } from '../oci/layer.js';
import { checkCompression, type CompressionOptions } from '../oci/compression.js';
import type { HistoryEntry, ImageConfig } from '../oci/types.js';
import type { LayerIndex, LayerSource, RootFs } from '../fs/merged.js';
import { layersRootFs } from '../oci/rootfs.js';
import { tarStream } from '../fs/tar-write.js';
import type { FsEntry } from '../fs/entry.js';
import type { ProgressEvent, ProgressListener, ProgressPhase } from '../oci/progress.js';
import { scopedImage, TempScope } from '../oci/temp.js';
import { LayerStage } from '../oci/stage.js';
import { PipelineState } from './state.js';
import type { ScanCache } from '../store/scan-cache.js';

/** A step of a pipeline. Users write their own: an object with a name and an `apply` function. */
export interface Transform {
  /** Short name, used in history entries, progress and the report. */
  readonly name: string;
  /** Change the draft: its config, layers, artifacts or shared state. */
  apply(draft: Draft): Promise<void> | void;
}

/** A file a pipeline produces beside the image (policy, chart file, keys, report). */
export interface Artifact {
  /** Relative path under the output directory, e.g. `policy/session.yaml`. */
  path: string;
  data: Uint8Array | string;
  /** Holds secrets: written with mode 0600 and never printed. */
  secret?: boolean;
  /** One line for listings. */
  description?: string | undefined;
}

/** An entry to put in a new layer, with its content for regular files. */
export interface LayerItem {
  entry: FsEntry;
  content?: AsyncIterable<Uint8Array> | Uint8Array;
}

/** Options of a pipeline run. */
export interface PipelineOptions {
  /** Where new layers are staged: a fresh directory is made inside it (default: the OS temp dir) and removed by `dispose()`. */
  tmpDir?: string | undefined;
  /** Compression of new layers (default gzip, level 2: `DEFAULT_GZIP_LEVEL` of `enclavify/oci`); unchanged layers keep their blobs. Checked before any work (`BAD_OPTIONS`, `ZSTD_UNAVAILABLE`). */
  compression?: CompressionOptions | undefined;
  /** Progress events: each transform's start and what transforms report (the CLI prints them on stderr). */
  onProgress?: ProgressListener | undefined;
  /** Timestamp for history entries and the config's `created` when the image changes (default: SOURCE_DATE_EPOCH if set, else now). */
  created?: Date | undefined;
  /**
   * Cancels the pipeline: streams of the scans, layer builds and reads are destroyed, the staged
   * layers removed, and the pipeline rejects with `ABORTED`. Transforms see it as `draft.signal`.
   */
  signal?: AbortSignal | undefined;
  /** The most entries a merged view of the image may hold (all layers together, default 2,000,000): more fail with `TOO_MANY_ENTRIES`. */
  maxEntries?: number | undefined;
  /**
   * Decompress each layer once (default true): while a layer is scanned, its uncompressed tar is
   * also written to the pipeline's temporary directory, and later reads of the layer in this
   * pipeline (file reads, the rewrite of layers with encrypted files) read that file, a few files
   * by byte range. Checked like the layer itself (diff_id, each file's SHA-256). Needs about the
   * layers' uncompressed size in `tmpDir`: without room for it (or when writing fails) a layer is
   * read from its blob again, as with `false`. The output is the same either way; staged files
   * are removed when the pipeline returns or fails.
   */
  stageLayers?: boolean | undefined;
  /**
   * A cache of layer scans across runs: a directory (opened with `ScanCache.open`, created mode
   * 0700 if missing), an open {@link ScanCache}, or false/undefined for none (the default). A
   * reconversion whose base layers are in the cache reads none of them to build the merged view,
   * nor the small startup files it read from them before. A directory that is not the user's or
   * is writable by group or others is not used (a warning says why).
   */
  cache?: string | ScanCache | false | undefined;
}

/**
 * What a transform reports through {@link Draft.progress}: a line, or an event whose `phase`
 * defaults to `transform` and whose `transform` is the running transform's name.
 */
export type DraftProgress = string | (Omit<ProgressEvent, 'phase'> & { phase?: ProgressPhase });

/** The fields of a progress event a transform may add to a warning. */
export type DraftWarning = Omit<Exclude<DraftProgress, string>, 'message' | 'level'>;

/**
 * The mutable state a pipeline's transforms work on: the config, the layers, artifacts, shared
 * state and the report. `pipeline` makes one per run and passes it to each transform's `apply`.
 */
export interface Draft {
  /** The image the pipeline started from. */
  readonly source: Image;
  /** The image config; transforms edit it in place (Entrypoint, Env, history...). */
  config: ImageConfig;
  /** The current layers, base first (change them with {@link replaceLayer} and {@link addLayer}). */
  readonly layers: readonly Layer[];
  /** Artifacts by path (policy, chart files, keys, report). */
  readonly artifacts: Map<string, Artifact>;
  /** Values transforms hand to each other, by typed key (e.g. `draft.state.get(PROTECTION)`). */
  readonly state: PipelineState;
  /** Per-transform report sections (JSON), in order. */
  readonly report: Record<string, unknown>;
  /** Timestamp of history entries and of the new config. */
  readonly created: Date;
  /** Where new layers and other staged files go (removed by the result's `dispose()`). */
  readonly tmpDir: string;
  /** Compression of new layers. */
  readonly compression: CompressionOptions;
  /** The pipeline's signal: pass it to what you read and write. */
  readonly signal: AbortSignal | undefined;
  /** The pipeline's progress listener (for byte progress of long steps), if any. */
  readonly onProgress: ProgressListener | undefined;
  /** Name of the transform being applied. */
  readonly transform: string | undefined;
  /** The merged root file system of the current layers (scanned once, until layers change). */
  rootfs(): Promise<RootFs>;
  /** Replaces layer `i` (e.g. rewritten with encrypted files); notes `comment` on its history entry. */
  replaceLayer(i: number, layer: Layer, comment: string): void;
  /** Appends a layer on top, with a history entry. */
  addLayer(layer: Layer, history: { createdBy: string; comment?: string | undefined }): void;
  /** Records a config-only change in the history (an `empty_layer` entry). */
  addHistory(createdBy: string, comment?: string): void;
  /** Builds a new layer from entries (streamed: tar, compression and digests in one pass), staged in {@link tmpDir}. */
  buildLayer(items: AsyncIterable<LayerItem> | Iterable<LayerItem>, name: string): Promise<Layer>;
  /** Adds (or replaces) an artifact. */
  addArtifact(a: Artifact): void;
  /** Reports progress (see {@link DraftProgress}); the CLI prints it unless --quiet. */
  progress(event: DraftProgress): void;
  /** Reports a warning: something the user should read (the CLI prints it even with --quiet). */
  warn(message: string, event?: DraftWarning): void;
}

/** The implementation of {@link Draft} (internal: transforms see the interface). */
class PipelineDraft implements Draft {
  config: ImageConfig;
  readonly artifacts = new Map<string, Artifact>();
  readonly state = new PipelineState();
  readonly report: Record<string, unknown> = {};
  readonly created: Date;
  transform: string | undefined;
  private layerList: Layer[];
  private view: Promise<RootFs> | undefined;
  /** The view of {@link view} once built, with the layers it was built from. */
  private built: { fs: RootFs; layers: readonly Layer[] } | undefined;
  /**
   * The last view's scans of the layers still in the draft, for the next view: a layer a
   * transform did not replace is not scanned again (a million-entry layer takes seconds), and
   * the views share its scan. Only scans, not the last view, are kept.
   */
  private scans = new Map<Layer, { index: LayerIndex; source: LayerSource }>();

  constructor(
    readonly source: Image,
    config: ImageConfig,
    layers: Layer[],
    /** Owns the directory new layers are staged in. */
    private readonly scope: TempScope,
    readonly compression: CompressionOptions,
    readonly onProgress: ProgressListener | undefined,
    created: Date | undefined,
    readonly signal: AbortSignal | undefined,
    /** The entry limit of {@link rootfs} (see {@link PipelineOptions.maxEntries}). */
    readonly maxEntries?: number | undefined,
    /** Where the scans stage layers for later reads (see {@link PipelineOptions.stageLayers}). */
    private readonly stage?: LayerStage | undefined,
    /** Layer scans cached across runs (see {@link PipelineOptions.cache}). */
    private readonly cache?: ScanCache | undefined,
  ) {
    this.config = structuredClone(config);
    this.layerList = [...layers];
    this.created = created ?? defaultCreated();
  }

  get tmpDir(): string {
    return this.scope.dir;
  }

  get layers(): readonly Layer[] {
    return this.layerList;
  }

  private tagged(): { transform?: string } {
    return this.transform !== undefined ? { transform: this.transform } : {};
  }

  progress(event: DraftProgress): void {
    if (!this.onProgress) return;
    const e = typeof event === 'string' ? { message: event } : event;
    this.onProgress({ phase: 'transform', ...this.tagged(), ...e });
  }

  warn(message: string, event: DraftWarning = {}): void {
    this.progress({ ...event, message, level: 'warning' });
  }

  rootfs(): Promise<RootFs> {
    return (this.view ??= this.newView());
  }

  private async newView(): Promise<RootFs> {
    const layers = [...this.layerList];
    const scanned = layers.map((l) => this.scans.get(l));
    this.scans = new Map();
    const fs = await layersRootFs(layers, { onProgress: this.onProgress, signal: this.signal, progressEvent: this.tagged(), image: this.source.name, maxEntries: this.maxEntries, stage: this.stage, cache: this.cache, scanned });
    // Layers changed while it was built: it is not the draft's view, its scans are not reused.
    if (layers.length === this.layerList.length && layers.every((l, i) => l === this.layerList[i])) this.built = { fs, layers };
    return fs;
  }

  /** The layers changed: the view is built again on next use, from the scans of the layers kept. */
  private invalidate(): void {
    const b = this.built;
    this.view = undefined;
    this.built = undefined;
    const kept = new Set(this.layerList);
    for (const l of this.scans.keys()) if (!kept.has(l)) this.scans.delete(l);
    b?.layers.forEach((l, i) => {
      if (kept.has(l)) this.scans.set(l, { index: b.fs.layers[i], source: b.fs.sources[i] });
    });
  }

  replaceLayer(i: number, layer: Layer, comment: string): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.layerList.length) throw new EnclavifyError('BAD_LAYER_INDEX', `replaceLayer: no layer ${i} (the draft has ${this.layerList.length})`);
    this.layerList[i] = layer;
    this.invalidate();
    const h = this.historyFor(i);
    if (h) h.comment = h.comment ? `${h.comment}; ${comment}` : comment;
  }

  addLayer(layer: Layer, history: { createdBy: string; comment?: string | undefined }): void {
    const h = this.alignedHistory();
    this.layerList.push(layer);
    this.invalidate();
    h?.push({ created: this.created.toISOString(), created_by: history.createdBy, ...(history.comment ? { comment: history.comment } : {}) });
  }

  addHistory(createdBy: string, comment?: string): void {
    this.alignedHistory()?.push({ created: this.created.toISOString(), created_by: createdBy, ...(comment ? { comment } : {}), empty_layer: true });
  }

  /**
   * The history to append to, lined up with the layers (one non-empty entry per layer, as the
   * image spec requires). History is optional: a source without one (or with `[]`) gets one entry
   * per existing layer first; a source whose history does not line up is left as it is
   * (appending would only make it worse), and new entries are then not recorded.
   */
  private alignedHistory(): HistoryEntry[] | undefined {
    const h = this.config.history;
    const nonEmpty = (h ?? []).filter((e) => !e.empty_layer).length;
    if (!h || nonEmpty === 0) {
      const filled: HistoryEntry[] = [...(h ?? [])];
      for (let i = 0; i < this.layerList.length; i++) filled.push({ comment: 'layer of the source image (it had no history)' });
      this.config.history = filled;
      return filled;
    }
    return nonEmpty === this.layerList.length ? h : undefined;
  }

  async buildLayer(items: AsyncIterable<LayerItem> | Iterable<LayerItem>, name: string): Promise<Layer> {
    return buildLayer({ tar: tarStream(toAsync(items)) as Readable, tmpDir: this.tmpDir, name, onProgress: this.onProgress, progressEvent: this.tagged(), signal: this.signal, scope: this.scope, ...this.compression });
  }

  addArtifact(a: Artifact): void {
    this.artifacts.set(a.path, a);
  }

  /** History entry of layer i: the i-th entry that is not `empty_layer`. */
  private historyFor(i: number): HistoryEntry | undefined {
    let n = -1;
    for (const h of this.config.history ?? []) {
      if (!h.empty_layer && ++n === i) return h;
    }
    return undefined;
  }
}

/** The cache of {@link PipelineOptions.cache}: a directory is opened (its warnings become the pipeline's). */
async function pipelineCache(options: PipelineOptions): Promise<ScanCache | undefined> {
  const c = options.cache;
  if (!c) return undefined;
  if (typeof c !== 'string') return c;
  const { ScanCache } = await import('../store/scan-cache.js');
  const onWarning = (message: string) => options.onProgress?.({ phase: 'scan', level: 'warning', message });
  return ScanCache.open(c, { onWarning });
}

async function* toAsync<T>(it: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
  yield* it as AsyncIterable<T>;
}

function defaultCreated(): Date {
  const e = process.env.SOURCE_DATE_EPOCH;
  return e && /^\d+$/.test(e) ? new Date(Number(e) * 1000) : new Date();
}

/**
 * What a pipeline returns. Call `dispose()` once the image is written (removes the staged layers;
 * idempotent), or hold it with `await using`. After that the image's layers (whose bytes were
 * staged) throw `DISPOSED`, naming the image; its manifest and config stay readable. Left
 * undisposed, the staged layers are removed when the process exits.
 */
export interface PipelineResult extends AsyncDisposable {
  image: Image;
  artifacts: Map<string, Artifact>;
  state: PipelineState;
  report: Record<string, unknown>;
  dispose(): Promise<void>;
  /** The same as `dispose()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Applies `transforms` in order to a draft of `source` and returns the new image, its artifacts,
 * state and report. Dispose of the result once the image is written (or use `await using`).
 *
 * ```ts
 * await using out = await pipeline(await openImage('oci:app:1'), [fileClassify({ dirs: ['/app/data'] }), encryptFS()]);
 * await writeImage(out.image, 'oci:app:1-enc');
 * ```
 */
export async function pipeline(source: Image, transforms: readonly Transform[], options: PipelineOptions = {}): Promise<PipelineResult> {
  if (!Array.isArray(transforms)) {
    throw new EnclavifyError('BAD_TRANSFORM', 'pipeline(source, transforms, options): transforms must be an array of transforms');
  }
  for (const t of transforms) {
    if (!t || typeof (t as Transform).apply !== 'function') throw new EnclavifyError('BAD_TRANSFORM', `pipeline: ${JSON.stringify(t)} is not a transform (an object with name and apply)`);
  }
  if (options === null || typeof options !== 'object' || 'apply' in options) {
    throw new EnclavifyError('BAD_OPTIONS', 'pipeline(source, transforms, options): options must be a PipelineOptions object (transforms go in the array)');
  }
  const signal = options.signal;
  if (options.compression !== undefined) checkCompression(options.compression);
  throwIfAborted(signal, `pipeline on ${source.name}`);
  // Always a directory of our own (inside the caller's tmpDir when given), removed by dispose()
  // or on failure, so staged layers never leak.
  const scope = await TempScope.create(`the pipeline on ${source.name}`, options.tmpDir);
  const stage = options.stageLayers === false ? undefined : new LayerStage(scope.dir);
  const cleanup = () => scope.dispose();
  try {
    const config = await source.config();
    const srcLayers = await source.layers();
    const cache = await pipelineCache(options);
    const draft = new PipelineDraft(source, config, srcLayers, scope, options.compression ?? { compression: 'gzip' }, options.onProgress, options.created, signal, options.maxEntries, stage, cache);
    for (const t of transforms) {
      throwIfAborted(signal, `pipeline on ${source.name}: before ${t.name}`);
      draft.transform = t.name;
      draft.progress(`${t.name}: start`);
      try {
        await t.apply(draft);
      } catch (e) {
        if (signal?.aborted) throw abortedError(`pipeline on ${source.name}: ${t.name}`, e);
        // A transform's own plain error (a custom transform's, or a bug) keeps its message and is the cause.
        throw asEnclavifyError(e, `pipeline: transform ${t.name}`, 'TRANSFORM_FAILED');
      }
      // A transform may have caught what the abort broke and carried on: its result is not used.
      throwIfAborted(signal, `pipeline on ${source.name}: ${t.name}`);
    }
    draft.transform = undefined;
    // Staged layers serve reads during the transforms only: their space is free for the write.
    await stage?.clear();
    const image = await finish(source, config, srcLayers, draft);
    // The source itself (nothing changed) stays usable; a new image lives in the scope.
    return {
      image: image === source ? source : scopedImage(image, scope),
      artifacts: draft.artifacts,
      state: draft.state,
      report: draft.report,
      dispose: cleanup,
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (e) {
    await stage?.clear();
    await cleanup();
    if (signal?.aborted) throw abortedError(`pipeline on ${source.name}`, e);
    throw asEnclavifyError(e, `pipeline on ${source.name}`);
  }
}

/** Turn the draft into an image; the source itself when nothing changed. */
async function finish(source: Image, srcConfig: ImageConfig, srcLayers: Layer[], draft: Draft): Promise<Image> {
  const layers = draft.layers;
  const sameLayers = layers.length === srcLayers.length && layers.every((l, i) => l === srcLayers[i]);
  if (sameLayers && isDeepStrictEqual(draft.config, srcConfig)) return source;
  const config = draft.config;
  const nonEmpty = (config.history ?? []).filter((h) => !h.empty_layer).length;
  const srcNonEmpty = (srcConfig.history ?? []).filter((h) => !h.empty_layer).length;
  // Only a pipeline that started from a lined-up history is held to it: a transform that removed
  // or added layers without history entries is a bug worth stopping for.
  if (config.history && srcNonEmpty === srcLayers.length && nonEmpty !== layers.length) {
    throw new EnclavifyError('BAD_HISTORY', `pipeline: history has ${nonEmpty} non-empty entries for ${layers.length} layers`);
  }
  config.created = draft.created.toISOString();
  const srcManifest = await source.manifest();
  return assembleImage({ name: `${source.name} (converted)`, config, layers, annotations: srcManifest.annotations });
}
