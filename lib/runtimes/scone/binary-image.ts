/**
 * `binaryImage`: copy enclave-ready files (a SCONE-built binary, its libraries) from another image
 * over the native ones, as one new layer. sconify_image does the same with its curated runtime
 * images: the native `python3` cannot run in a SCONE enclave, the curated one can.
 *
 * Files are streamed from the source image's layers into temporary files beside the draft's new
 * layers, then into the layer's tar; nothing is held in memory. A target that is a symlink in the
 * native image is replaced at the file it points to, so every name of the binary keeps working.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { EnclavifyError } from '../../oci/errors.js';
import type { Image } from '../../oci/image.js';
import { compareBytewise, normalizePath, type FsEntry } from '../../fs/entry.js';
import { RootFs, type MergedEntry } from '../../fs/merged.js';
import { openImage } from '../../store/images.js';
import type { Draft, LayerItem } from '../../transforms/pipeline.js';
import type { SconeBinaryImage } from './options.js';
import { layersRootFs } from '../../oci/rootfs.js';
import { withSignal } from '../../oci/abort.js';

/** One file copied from the binary image. */
export interface CopiedFile {
  /** Path in the binary image, as asked for. */
  from: string;
  /** Absolute path written in the converted image (symlinks of the native image followed). */
  to: string;
  sha256: string;
  size: number;
  /** True when a native file was replaced (false: a new file). */
  replaced: boolean;
}

/** What {@link copyFromBinaryImage} did, for the report. */
export interface BinaryImageResult {
  image: string;
  digest: string;
  files: CopiedFile[];
}

function abs(p: string, what: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new EnclavifyError('SCONE_BAD_PATH', `scone binaryImage: ${what} ${JSON.stringify(p)} is not an absolute path`);
  const n = normalizePath(p);
  if (n instanceof Error || n === undefined) throw new EnclavifyError('SCONE_BAD_PATH', `scone binaryImage: ${what} ${JSON.stringify(p)} is not a file path`);
  return n;
}

function dirEntry(p: string, mtime: number): FsEntry {
  return { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0 };
}

/**
 * Where `to` lands in the native image: the real file behind it (symlinks followed), or a new file
 * in its real parent directory, creating missing directories.
 */
function placeTarget(fs: RootFs, to: string, mtime: number): { path: string; replaced?: MergedEntry; dirs: FsEntry[] } {
  const lexical = abs(to, 'target');
  const real = fs.resolve(lexical);
  if (real !== undefined) {
    const e = fs.get(real)!;
    if (e.type !== 'file') throw new EnclavifyError('SCONE_BAD_TARGET', `scone binaryImage: /${lexical} is a ${e.type} in the converted image, not a file`);
    return { path: real, replaced: e, dirs: [] };
  }
  if (fs.get(lexical)?.type === 'symlink') {
    throw new EnclavifyError('SCONE_BAD_TARGET', `scone binaryImage: /${lexical} is a dangling symlink in the converted image; name the real path`);
  }
  const parts = lexical.split('/');
  const base = parts.pop()!;
  let cur = '.';
  const dirs: FsEntry[] = [];
  for (const c of parts) {
    const p = cur === '.' ? c : `${cur}/${c}`;
    if (dirs.length === 0) {
      const r = fs.resolve(p);
      if (r !== undefined) {
        const e = fs.get(r)!;
        if (e.type !== 'dir') throw new EnclavifyError('SCONE_BAD_TARGET', `scone binaryImage: /${p} is a ${e.type} in the converted image, not a directory`);
        cur = r;
        continue;
      }
    }
    dirs.push(dirEntry(p, mtime));
    cur = p;
  }
  return { path: cur === '.' ? base : `${cur}/${base}`, dirs };
}

/**
 * Copies the binary (to `binary`) and the listed files from `spec.image` into a new top layer of
 * the draft. Fails before writing anything when a file is missing in the source image, is not a
 * regular file, or the images' architectures differ.
 */
export async function copyFromBinaryImage(draft: Draft, spec: SconeBinaryImage, binary: string): Promise<BinaryImageResult> {
  const src: Image = typeof spec.image === 'string' ? await openImage(spec.image, { signal: draft.signal }) : spec.image;
  const srcConfig = await src.config();
  if (srcConfig.architecture && draft.config.architecture && srcConfig.architecture !== draft.config.architecture) {
    throw new EnclavifyError('SCONE_ARCH_MISMATCH', `scone binaryImage ${src.name}: architecture ${srcConfig.architecture} differs from the image's ${draft.config.architecture}`);
  }
  const srcFs = await layersRootFs(await src.layers(), { onProgress: draft.onProgress, signal: draft.signal, progressEvent: { image: src.name, ...(draft.transform !== undefined ? { transform: draft.transform } : {}) } });
  const native = await draft.rootfs();
  const mtime = Math.floor(draft.created.getTime() / 1000);

  const wanted = [{ from: spec.path ?? binary, to: binary }, ...(spec.files ?? []).map((f) => (typeof f === 'string' ? { from: f, to: f } : f))];
  const plans = wanted.map((w) => {
    abs(w.from, 'source path');
    const e = srcFs.stat(w.from);
    if (!e) throw new EnclavifyError('SCONE_BINARY_NOT_FOUND', `scone binaryImage ${src.name}: ${w.from}: no such file`);
    if (e.type !== 'file') throw new EnclavifyError('SCONE_BINARY_NOT_FOUND', `scone binaryImage ${src.name}: ${w.from} is a ${e.type}, not a regular file`);
    return { ...w, source: e, target: placeTarget(native, w.to, mtime) };
  });
  const seen = new Map<string, string>();
  for (const p of plans) {
    const prev = seen.get(p.target.path);
    if (prev) throw new EnclavifyError('SCONE_BAD_TARGET', `scone binaryImage: ${p.from} and ${prev} both land on /${p.target.path}`);
    seen.set(p.target.path, p.from);
  }

  // Stage each distinct source content once in a temporary file.
  const staged = new Map<string, string>();
  const files: string[] = [];
  try {
    await srcFs.streamFiles([...new Set(plans.map((p) => p.from))], async ({ paths }, content) => {
      const file = path.join(draft.tmpDir, `scone-binary-${randomBytes(8).toString('hex')}.tmp`);
      files.push(file);
      await pipe(content, createWriteStream(file, { mode: 0o600 }), withSignal(draft.signal));
      for (const p of paths) staged.set(p, file);
    });

    const dirs = new Map<string, FsEntry>();
    for (const p of plans) for (const d of p.target.dirs) dirs.set(d.path, d);
    const items: LayerItem[] = [...dirs.values()].sort((a, b) => compareBytewise(a.path, b.path)).map((entry) => ({ entry }));
    for (const p of [...plans].sort((a, b) => compareBytewise(a.target.path, b.target.path))) {
      const owner = p.target.replaced ?? p.source;
      const entry: FsEntry = { path: p.target.path, type: 'file', mode: p.source.mode & 0o7777, uid: owner.uid, gid: owner.gid, mtime, size: p.source.size };
      items.push({ entry, content: lazyRead(staged.get(p.from)!) });
    }
    const layer = await draft.buildLayer(items, `scone binary layer (from ${src.name})`);
    draft.addLayer(layer, {
      createdBy: `enclavify injectRuntime(scone): enclave-ready files from ${src.name}`,
      comment: plans.map((p) => `/${p.target.path}`).join(' '),
    });
  } finally {
    await Promise.all(files.map((f) => rm(f, { force: true })));
  }
  return {
    image: src.name,
    digest: await src.digest(),
    files: plans.map((p) => ({ from: p.from, to: `/${p.target.path}`, sha256: p.source.sha256!, size: p.source.size, replaced: !!p.target.replaced })),
  };
}

/** Opens the staged file only when the tar writer reaches it. */
async function* lazyRead(file: string): AsyncGenerator<Uint8Array> {
  yield* createReadStream(file, { highWaterMark: 1 << 20 });
}
