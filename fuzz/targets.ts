/**
 * Fuzz targets and the invariant they check: every input either succeeds or fails with an
 * EnclavifyError whose code is in ERROR_CODES (never a RangeError, TypeError or plain Error, never
 * a hang: the harness watches for that); when the stored bytes do not match the digest the
 * manifest claims, the only error is the mismatch, and no message shows those bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { EnclavifyError, isErrorCode } from '../lib/oci/errors.js';
import { readTar } from '../lib/fs/tar-read.js';
import { RootFs, type LayerSource } from '../lib/fs/merged.js';
import { openImage } from '../lib/store/index.js';
import { layerSources, layersRootFs } from '../lib/oci/rootfs.js';
import { compressLayer, sha256, writeLayout, type LayerCompression, type LayoutSpec } from './layout-build.js';
import { mutateBytes, mutateJson, mutateTar, type Rng } from './mutate.js';
import type { Seeds } from './seeds.js';

export type TargetName = 'tar' | 'merged' | 'json' | 'compressed' | 'unverified';
export const TARGETS: readonly TargetName[] = ['tar', 'merged', 'json', 'compressed', 'unverified'];

/** What broke the invariant. */
export interface Finding {
  target: TargetName;
  seed: number;
  iteration: number;
  kind: 'hang' | 'uncoded' | 'wrong-error' | 'leak' | 'crash';
  message: string;
}

/** Feeds bytes in random chunk sizes (headers straddle chunks). */
function chunks(b: Buffer, rng: Rng): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = 1 + rng.int(rng.chance(0.3) ? 64 : 4096);
    parts.push(b.subarray(i, i + n));
    i += n;
  }
  return Readable.from(parts);
}

async function drainTar(input: Readable, source: string): Promise<void> {
  for await (const { content } of readTar(input, { source })) if (content) for await (const _ of content) void _;
}

function mutatedTar(seeds: Seeds, rng: Rng): Buffer {
  let t = rng.pick(seeds.tars);
  for (let i = 0, n = 1 + rng.int(3); i < n; i++) t = mutateTar(t, rng);
  return t;
}

let scratch: string | undefined;
let counter = 0;
function layoutDir(): string {
  scratch ??= mkdtempSync(path.join(tmpdir(), 'enclavify-fuzz-'));
  return path.join(scratch, `l${counter++}`);
}
/** Removes the fuzzer's scratch layouts. */
export function cleanup(): void {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** Reads an image as the commands do: through layersRootFs (which re-checks blobs on failure), or each layer's tar directly (as encryptFS and verify do), or a bare RootFs scan. */
async function readImage(ref: string, how: number = 0): Promise<void> {
  const img = await openImage(ref);
  await img.config();
  const layers = await img.layers();
  if (how === 1) for (const l of layers) await drainTar(await l.uncompressed(), l.name);
  else if (how === 2) await RootFs.scan(layerSources(layers));
  else await layersRootFs(layers);
}

async function withLayout<T>(spec: LayoutSpec, fn: (ref: string) => Promise<T>): Promise<T> {
  const dir = layoutDir();
  try {
    return await fn(writeLayout(dir, spec).ref);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one iteration of `target`; resolves with the error (if any) and the bytes it must not leak. */
export async function runTarget(target: TargetName, seeds: Seeds, rng: Rng): Promise<{ error?: unknown; unverified?: Buffer }> {
  const attempt = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return {};
    } catch (error) {
      return { error };
    }
  };
  switch (target) {
    case 'tar': {
      const t = mutatedTar(seeds, rng);
      return attempt(() => drainTar(chunks(t, rng), 'fuzz.tar'));
    }
    case 'merged': {
      const layers = Array.from({ length: 1 + rng.int(3) }, () => (rng.chance(0.7) ? mutatedTar(seeds, rng) : rng.pick(seeds.tars)));
      const sources: LayerSource[] = layers.map((t, i) => ({ name: `layer ${i + 1}`, open: async () => Readable.from([t]) }));
      return attempt(async () => {
        const fs = await RootFs.scan(sources);
        const files = fs.entries().filter((e) => e.type === 'file').map((e) => e.path).slice(0, 3);
        if (files.length) await fs.readFiles(files);
      });
    }
    case 'json': {
      const tar = rng.pick(seeds.tars);
      const which = rng.pick(['manifest', 'config', 'index', 'ociLayout'] as const);
      const spec: LayoutSpec = { layers: [{ tar }] };
      if (which === 'config') spec.config = mutateJson(seeds.json.config.replace(/"diff_ids":\[[^\]]*\]/, `"diff_ids":["${sha256(tar)}"]`), rng);
      else if (which === 'ociLayout') spec.ociLayout = mutateJson('{"imageLayoutVersion":"1.0.0"}', rng);
      else if (which === 'index') spec.index = mutateJson(seeds.json.index, rng);
      else spec.manifest = mutateJson(seeds.json.manifest, rng);
      return attempt(() => withLayout(spec, (ref) => readImage(ref)));
    }
    case 'compressed': {
      const tar = rng.pick(seeds.tars);
      const c: LayerCompression = rng.pick(['gzip', 'zstd', 'none'] as const);
      const blob = mutateBytes(compressLayer(tar, c), rng);
      const how = rng.int(3);
      return attempt(() => withLayout({ layers: [{ tar, compression: c, blob }] }, (ref) => readImage(ref, how)));
    }
    case 'unverified': {
      // The manifest names the honest blob; the file holds other bytes (a mutated tar, compressed
      // or not, or a mutated compressed stream): only a mismatch may be reported.
      const tar = rng.pick(seeds.tars);
      const c: LayerCompression = rng.pick(['gzip', 'zstd', 'none'] as const);
      const honest = compressLayer(tar, c);
      const other = rng.chance(0.5) ? compressLayer(mutateTar(tar, rng), c) : mutateBytes(honest, rng);
      if (other.equals(honest)) return {};
      const sameSize = rng.chance(0.5) && other.length !== honest.length ? Buffer.concat([other, Buffer.alloc(Math.max(0, honest.length - other.length))]).subarray(0, honest.length) : other;
      const how = rng.int(3);
      const r = await attempt(() => withLayout({ layers: [{ tar, compression: c, blob: sameSize, digest: sha256(honest), size: honest.length }] }, (ref) => readImage(ref, how)));
      if (sameSize.equals(honest)) return {};
      return { ...r, unverified: sameSize };
    }
  }
}

/** Printable 8-byte runs of `b` (what a leaked quote would contain). */
function printableRuns(b: Buffer, limit = 4096): string[] {
  const out: string[] = [];
  const s = b.subarray(0, limit * 4).toString('latin1');
  for (let i = 0; i + 8 <= s.length && out.length < limit; i += 2) {
    const r = s.slice(i, i + 8);
    if (/^[\x21-\x7e]{8}$/.test(r)) out.push(r);
  }
  return out;
}

/** Checks one iteration's outcome; returns what is wrong, if anything. */
export function judge(target: TargetName, outcome: { error?: unknown; unverified?: Buffer }): Pick<Finding, 'kind' | 'message'> | undefined {
  const e = outcome.error;
  if (outcome.unverified) {
    if (e === undefined) return { kind: 'wrong-error', message: 'a blob that does not match its digest was accepted' };
    if (!(e instanceof EnclavifyError) || !isErrorCode(e.code)) return { kind: 'uncoded', message: String((e as Error)?.stack ?? e) };
    if (e.code !== 'BLOB_DIGEST_MISMATCH' && e.code !== 'BLOB_SIZE_MISMATCH') return { kind: 'wrong-error', message: `${e.code} instead of the mismatch: ${e.message.slice(0, 300)}` };
    if (e.message.includes(sha256(outcome.unverified).slice(7, 19))) return { kind: 'leak', message: `the digest of the bytes found: ${e.message.slice(0, 300)}` };
    for (const r of printableRuns(outcome.unverified)) if (e.message.includes(r) && !/^[a-z/.:-]+$/.test(r)) return { kind: 'leak', message: `quotes ${JSON.stringify(r)}: ${e.message.slice(0, 300)}` };
    return undefined;
  }
  if (e === undefined) return undefined;
  if (!(e instanceof EnclavifyError) || !isErrorCode(e.code)) {
    return { kind: 'uncoded', message: `${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.stack ?? e).slice(0, 800)}` };
  }
  if (e.message.length > 2000) return { kind: 'wrong-error', message: `a ${e.message.length}-character message (${e.code}): ${e.message.slice(0, 200)}…` };
  void target;
  return undefined;
}
