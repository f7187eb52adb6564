/**
 * The merged view of an image's layers through a {@link ScanCache}: a layer whose scan is cached
 * is not opened at all, and the small files later read from such a layer (the startup search's
 * executables, libraries and loader configuration) come from the cache when it holds them,
 * checked against the SHA-256 the scan recorded. What misses is scanned (or read) as usual and
 * stored for the next conversion.
 */
import { availableParallelism } from 'node:os';
import { chargeBudget, entryBudget, RootFs, scanLayer, type LayerIndex, type LayerSource } from '../fs/merged.js';
import type { Layer } from './image.js';
import { FileLayer } from './layer.js';
import { CACHED_FILE_MAX_BYTES, type LayerKey, type ScanCache } from '../store/scan-cache.js';

/** Options of {@link cachedRootFs}. */
export interface CachedScanOptions {
  /** The most entries the layers may hold together (cached ones count too). */
  maxEntries?: number | undefined;
  /** Names the image in errors. */
  image?: string | undefined;
  /** Layers looked up or scanned at once (default: the number of CPUs, at least 2, as `RootFs.scan`). */
  concurrency?: number | undefined;
  /** Scans made earlier, by position, used instead of the cache or a scan (see `ScanOptions.scanned`). */
  scanned?: readonly (LayerIndex | undefined)[] | undefined;
}

/**
 * The cache key of a layer, or undefined for a layer built in this process (a {@link FileLayer}:
 * new encrypted layers differ on every run, caching them would only fill the cache).
 */
async function keyOf(layer: Layer): Promise<LayerKey | undefined> {
  if (layer instanceof FileLayer) return undefined;
  const [digest, diffId] = await Promise.all([layer.digest(), layer.diffId()]);
  return { digest, diffId };
}

/**
 * Scans `layers` into a {@link RootFs} like `RootFs.scan`, through `cache`. `scanSources[i]` is
 * what a miss scans (e.g. with a progress tap), `readSources[i]` what the view reads later.
 */
export async function cachedRootFs(
  layers: readonly Layer[],
  scanSources: readonly LayerSource[],
  readSources: readonly LayerSource[],
  cache: ScanCache,
  options: CachedScanOptions = {},
): Promise<RootFs> {
  const budget = entryBudget(options.image ?? layers[0]?.name ?? 'the image', options.maxEntries);
  const fromCache = new Set<number>();
  const indexes = await mapLimit(layers, options.concurrency ?? Math.max(2, availableParallelism()), async (layer, i): Promise<LayerIndex> => {
    const known = options.scanned?.[i];
    if (known) return chargeBudget(budget, known);
    const key = await keyOf(layer);
    const hit = key && (await cache.loadScan(key));
    if (hit) {
      fromCache.add(i);
      return chargeBudget(budget, { name: readSources[i].name, entries: hit });
    }
    const ix = await scanLayer(scanSources[i], { budget });
    if (key) {
      await cache.saveScan(key, ix.entries);
      fromCache.add(i);
    }
    return ix;
  });
  const fs = RootFs.fromIndexes(readSources, indexes);
  cacheFileReads(fs, cache, fromCache);
  return fs;
}

/**
 * Routes `fs.readFiles` through the cache for regular files of at most
 * {@link CACHED_FILE_MAX_BYTES} held by the layers in `cachedLayers`: a hit is checked against
 * the scan's SHA-256 (by {@link ScanCache.loadFile}); the rest is read from the layers and stored.
 * Errors (missing paths, non-files) are the uncached `readFiles`' own.
 */
function cacheFileReads(fs: RootFs, cache: ScanCache, cachedLayers: ReadonlySet<number>): void {
  const read = fs.readFiles.bind(fs);
  const eligible = (p: string) => {
    let e;
    try {
      e = fs.stat(p);
    } catch {
      return undefined; // a bad path or a symlink loop: the plain read reports it
    }
    return e?.type === 'file' && e.content && e.sha256 && e.size <= CACHED_FILE_MAX_BYTES && cachedLayers.has(e.content.layer) ? e.sha256 : undefined;
  };
  const readFiles = async (paths: string[]): Promise<Map<string, Uint8Array>> => {
    const out = new Map<string, Uint8Array>();
    const rest: string[] = [];
    const digests = new Map<string, string>();
    for (const p of paths) {
      const sha = eligible(p);
      const data = sha === undefined ? undefined : await cache.loadFile(sha);
      if (data) out.set(p, data);
      else {
        rest.push(p);
        if (sha !== undefined) digests.set(p, sha);
      }
    }
    if (rest.length) {
      const got = await read(rest);
      const stored = new Set<string>();
      for (const [p, data] of got) {
        out.set(p, data);
        const sha = digests.get(p);
        if (sha !== undefined && !stored.has(sha)) {
          stored.add(sha);
          await cache.saveFile(sha, data);
        }
      }
    }
    return out;
  };
  // An own property shadows the method: every caller of this view's readFiles goes through the cache.
  Object.defineProperty(fs, 'readFiles', { value: readFiles, configurable: true, writable: true });
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
