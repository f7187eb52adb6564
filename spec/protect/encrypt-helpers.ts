/**
 * Shared helpers for the file-protection specs: converting bb-fixture in memory, reading layers,
 * building attacked copies of a converted image (a layer added on top, or a layer rewritten in
 * place), an independent Python decryptor of Gramine encrypted files, and a small image builder.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MT, openImage, pipeline, writeImage, type Image, type ImageConfig, type Manifest, type LayerItem, type PipelineOptions, type PipelineResult, type Transform } from '../../lib/index.js';
import { compareBytewise, type FsEntry } from '../../lib/fs/entry.js';
import { tarStream } from '../../lib/fs/tar-write.js';
import { sha256Digest } from '../../lib/oci/digest.js';
import { encodeJson } from '../../lib/oci/json.js';
import { buildLayer } from '../../lib/oci/layer.js';
import { RootFs } from '../../lib/fs/merged.js';
import { readTar } from '../../lib/fs/tar-read.js';
import { fileClassify, type FileClassifyOptions } from '../../lib/transforms/file-classify.js';
import { encryptFS, type EncryptFSOptions } from '../../lib/transforms/encrypt-fs.js';
import { PROTECTION, type Protection } from '../../lib/transforms/state.js';
import { bbOci } from '../helpers/images.js';
import { hostPathEntries, ldd } from '../helpers/host.js';
export { ldd };

/** The bb-fixture source image (gzip OCI layout). */
export const bbRef = `oci:${bbOci}:latest`;

/** A converted image and what came with it. */
export interface Converted {
  result: PipelineResult;
  image: Image;
  protection: Protection;
  /** Key bytes by name. */
  keys: Map<string, Uint8Array>;
}

/** Converts an image (default bb-fixture) with fileClassify + encryptFS, in memory (staged layers in a temp dir). */
export async function convert(rules: FileClassifyOptions = { dirs: ['/app/data'] }, enc: EncryptFSOptions = {}, source?: Image, options: PipelineOptions = {}): Promise<Converted> {
  const src = source ?? (await openImage(bbRef));
  const result = await pipeline(src, [fileClassify(rules), encryptFS(enc)], options);
  const protection = result.state.get(PROTECTION) as Protection;
  const keys = new Map(protection.keys.map((k) => [k.name, new Uint8Array(Buffer.from(k.keyHex, 'hex'))]));
  return { result, image: result.image, protection, keys };
}

/** Reads a whole stream. */
export async function collect(r: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every entry of every layer of an image, with the content of regular files. */
export async function layerEntries(image: Image): Promise<Array<Array<{ entry: FsEntry; content?: Buffer }>>> {
  const out: Array<Array<{ entry: FsEntry; content?: Buffer }>> = [];
  for (const l of await image.layers()) {
    const list: Array<{ entry: FsEntry; content?: Buffer }> = [];
    for await (const { entry, content } of readTar(await l.uncompressed(), { source: l.name })) {
      list.push(content ? { entry, content: await collect(content) } : { entry });
    }
    out.push(list);
  }
  return out;
}

/** The merged view of an image. */
export async function rootfsOf(image: Image): Promise<RootFs> {
  const layers = await image.layers();
  return RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() })));
}

/** Reads files of an image's merged view (paths absolute). */
export async function readImageFiles(image: Image, paths: string[]): Promise<Map<string, Buffer>> {
  const fs = await rootfsOf(image);
  const got = await fs.readFiles(paths.map((p) => p.slice(1)));
  return new Map(paths.map((p) => [p, Buffer.from(got.get(p.slice(1))!)]));
}

const dirEntry = (path: string): FsEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });

/** A regular-file layer item. */
export function fileItem(path: string, content: Uint8Array | string, mode = 0o644): LayerItem {
  const b = Buffer.from(content);
  return { entry: { path, type: 'file', mode, uid: 0, gid: 0, mtime: 0, size: b.length }, content: b };
}

/** A whiteout deleting `path` (relative). */
export function whiteout(path: string): LayerItem {
  const i = path.lastIndexOf('/');
  const wh = i < 0 ? `.wh.${path}` : `${path.slice(0, i)}/.wh.${path.slice(i + 1)}`;
  return { entry: { path: wh, type: 'file', mode: 0, uid: 0, gid: 0, mtime: 0, size: 0 }, content: Buffer.alloc(0) };
}

/** A transform adding a layer with `items` (parent directories added). */
export function addLayer(items: LayerItem[], name = 'attack'): Transform {
  return {
    name,
    async apply(draft) {
      const dirs = new Set<string>();
      for (const it of items) {
        const parts = it.entry.path.split('/');
        for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
      }
      const all = [...[...dirs].sort().map((d) => ({ entry: dirEntry(d) })), ...items];
      draft.addLayer(await draft.buildLayer(all, name), { createdBy: name });
    },
  };
}

/** A transform rewriting, in place, the layer that holds each path's visible content. */
export function editInPlace(edits: Record<string, (b: Buffer) => Buffer>): Transform {
  return {
    name: 'edit in place',
    async apply(draft) {
      const fs = await draft.rootfs();
      const byLayer = new Map<number, Map<string, (b: Buffer) => Buffer>>();
      for (const [p, fn] of Object.entries(edits)) {
        const e = fs.get(p.slice(1));
        if (!e?.content) throw new Error(`editInPlace: ${p} not found`);
        const m = byLayer.get(e.content.layer) ?? new Map();
        m.set(e.content.path, fn);
        byLayer.set(e.content.layer, m);
      }
      for (const [i, m] of byLayer) {
        const layer = draft.layers[i];
        async function* items(): AsyncGenerator<LayerItem> {
          for await (const { entry, content } of readTar(await layer.uncompressed(), { source: layer.name })) {
            if (!content) {
              yield { entry };
              continue;
            }
            const fn = m.get(entry.path);
            const b = await collect(content);
            const nb = fn ? fn(b) : b;
            yield { entry: { ...entry, size: nb.length }, content: nb };
          }
        }
        draft.replaceLayer(i, await draft.buildLayer(items(), `${layer.name} (edited)`), 'edited');
      }
    },
  };
}

/** Applies transforms to an image; the caller disposes. */
export async function modify(image: Image, ...t: Transform[]): Promise<PipelineResult> {
  return pipeline(image, t);
}

/** Flips one bit of byte `offset`. */
export const flip = (offset: number) => (b: Buffer) => {
  const c = Buffer.from(b);
  c[offset] ^= 0x01;
  return c;
};

export { pythonCryptoSkip, pyDecrypt } from '../helpers/pf-python.js';

/** Reads a Readable fully (for layer blobs). */
export async function readAll(r: Readable): Promise<Buffer> {
  return collect(r);
}

// ---- an image made of host files ----


/** Skip reason for tests that need a dynamically linked host /bin/ls and ldd. */
export function hostLsSkip(): string | false {
  return existsSync('/bin/ls') && ldd('/bin/ls')?.interpreter ? false : 'needs a dynamically linked /bin/ls and ldd on the host';
}


/**
 * Writes an OCI layout with one image holding the host's `/bin/ls` and every library ldd lists
 * (laid out as on the host: Debian's merged /usr), plus `extra` items; Entrypoint `/bin/ls`.
 * Built with tarStream + buildLayer and written with writeImage; returns the reference.
 */
export async function writeHostLsImage(dir: string, extra: LayerItem[] = []): Promise<string> {
  const d = ldd('/bin/ls')!;
  const items = new Map<string, LayerItem>();
  for (const p of ['/bin/ls', ...d.libs.map((l) => l.path), d.interpreter!]) for (const it of hostPathEntries(p)) items.set(it.entry.path, it);
  for (const e of extra) items.set(e.entry.path, e);
  for (const p of [...items.keys()]) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const a = parts.slice(0, i).join('/');
      if (!items.has(a)) items.set(a, { entry: { path: a, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 } });
    }
  }
  const sorted = [...items.values()].sort((a, b) => compareBytewise(a.entry.path, b.entry.path));
  const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-ls-'));
  try {
    const layer = await buildLayer({ tar: tarStream(sorted), tmpDir: tmp, name: 'host ls layer', compression: 'gzip' });
    const config: ImageConfig = {
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/bin/ls'], Cmd: ['-l', '/'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [await layer.diffId()] },
      history: [{ created_by: 'spec: host /bin/ls with its libraries' }],
    };
    const rawConfig = encodeJson(config);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: sha256Digest(rawConfig), size: rawConfig.length },
      layers: [{ mediaType: layer.mediaType, digest: await layer.digest(), size: await layer.size() }],
    };
    const rawManifest = encodeJson(manifest);
    const image: Image = {
      name: 'host-ls',
      mediaType: async () => MT.ociManifest,
      manifest: async () => manifest,
      rawManifest: async () => rawManifest,
      digest: async () => sha256Digest(rawManifest),
      config: async () => config,
      rawConfig: async () => rawConfig,
      layers: async () => [layer],
    };
    const ref = `oci:${dir}/host-ls:latest`;
    await writeImage(image, ref);
    return ref;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
