/**
 * `imageFromDirectory`: a native OCI image from a directory on disk, without a Docker daemon: one
 * layer holding the directory's tree, and an image config (Entrypoint, Cmd, Env, WorkingDir...).
 *
 * The result is deterministic: entries in bytewise path order, one fixed modification time,
 * owner root (or as on disk), so the same tree always gives the same layer and image digests.
 * File contents are streamed from disk into the layer; nothing is held in memory.
 */
import { constants as fsc, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { coded, EnclavifyError, type ErrorCode } from '../oci/errors.js';
import type { Image } from '../oci/image.js';
import { assembleImage } from '../oci/assemble.js';
import { buildLayer } from '../oci/layer.js';
import type { CompressionOptions } from '../oci/compression.js';
import type { ContainerConfig, ImageConfig, Platform } from '../oci/types.js';
import { hostPlatform } from '../store/oci-layout.js';
import { throwIfAborted } from '../oci/abort.js';
import { scopedImage, TempScope } from '../oci/temp.js';
import { compareBytewise, normalizePath, type FsEntry } from './entry.js';
import { tarStream, type TarWriteItem } from './tar-write.js';
import type { ProgressListener } from '../oci/progress.js';

/** Options of {@link imageFromDirectory}. */
export interface ImageFromDirectoryOptions {
  /** The directory whose content becomes the image's file system (its children land under `prefix`). */
  dir: string;
  /** The container config: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Labels... */
  config?: ContainerConfig;
  /** Where the layer is staged: a fresh directory is made inside it (default: the OS temp dir), removed by `dispose()`. */
  tmpDir?: string | undefined;
  /** Directory inside the image that receives the content. Default `/`. */
  prefix?: string;
  /** Modification time of every entry and the image's `created`: seconds or a Date. Default SOURCE_DATE_EPOCH, else 0. */
  mtime?: number | Date;
  /** Owner of every entry: `{uid, gid}` (default `{uid: 0, gid: 0}`), or `preserve` to keep the owners on disk. */
  owner?: { uid: number; gid: number } | 'preserve';
  /**
   * Permission bits: `preserve` (default) keeps them; `normalize` gives directories and executable
   * files 0755 and other files 0644, so a checkout's umask does not change the digest.
   */
  modes?: 'preserve' | 'normalize';
  /** Platform of the config. Default: the host's (linux/amd64 on x86-64). */
  platform?: Platform;
  /** Layer compression. Default gzip. */
  compression?: CompressionOptions;
  /** Name for messages. Default `dir:<dir>`. */
  name?: string;
  /** Byte progress of the layer build (phase `layer`). */
  onProgress?: ProgressListener | undefined;
  /** Cancels the build; imageFromDirectory then rejects with `ABORTED` and removes its temporary file. */
  signal?: AbortSignal | undefined;
}

function epochDefault(): number {
  const e = process.env.SOURCE_DATE_EPOCH;
  return e && /^\d+$/.test(e) ? Number(e) : 0;
}

function fail(code: ErrorCode, message: string): EnclavifyError {
  return new EnclavifyError(code, message);
}

/** Every entry below `root`, with its path in the image (normalised) and its disk path. */
async function walk(root: string, prefix: string): Promise<Array<{ image: string; disk: string }>> {
  const out: Array<{ image: string; disk: string }> = [];
  const visit = async (disk: string, image: string) => {
    for (const name of await readdir(disk)) {
      const d = path.join(disk, name);
      const i = image ? `${image}/${name}` : name;
      out.push({ image: i, disk: d });
      if ((await lstat(d)).isDirectory()) await visit(d, i);
    }
  };
  await visit(root, prefix);
  return out;
}

/**
 * The bytes of `file`, which must still be the file that was listed: opened without following a
 * symlink and checked by device and inode, so a file swapped for a link to something else on the
 * host between listing and reading is refused rather than copied into the image.
 */
async function* contentOf(file: string, listed: Stats): AsyncGenerator<Uint8Array> {
  const fh = await open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const now = await fh.stat();
    if (now.dev !== listed.dev || now.ino !== listed.ino || !now.isFile()) {
      throw fail('FILE_CHANGED', `imageFromDirectory: ${file} changed while the image was built`);
    }
    yield* fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false });
  } finally {
    await fh.close();
  }
}

/**
 * Builds a one-layer OCI image from a directory. Symlinks are stored as links (not followed),
 * hard links within the tree as tar hard links; sockets and devices are refused. Throws when
 * `dir` is not a directory.
 *
 * ```ts
 * await using image = await imageFromDirectory({ dir: 'examples/hello/app', prefix: '/app',
 *   config: { Entrypoint: ['/app/hello.sh'], WorkingDir: '/app' } });
 * await writeImage(image, 'oci:out/hello-native:latest');
 * ```
 */
export async function imageFromDirectory(options: ImageFromDirectoryOptions): Promise<DirectoryImage> {
  return coded(`imageFromDirectory ${options.dir}`, () => fromDirectory(options), options.signal);
}

/**
 * An image built from a directory. Its layer is staged in a temporary directory: `dispose()` (or
 * `await using`) removes it once the image (or a pipeline result made from it) is written; using
 * the image's layers afterwards throws `DISPOSED`. Left undisposed, it is removed when the
 * process exits.
 */
export interface DirectoryImage extends Image, AsyncDisposable {
  /** Removes the staged layer (idempotent). */
  dispose(): Promise<void>;
  /** The same as `dispose()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

async function fromDirectory(options: ImageFromDirectoryOptions): Promise<DirectoryImage> {
  const o = options;
  throwIfAborted(o.signal, `imageFromDirectory ${o.dir}`);
  const root = path.resolve(o.dir);
  const st = await stat(root).catch((e: NodeJS.ErrnoException) => {
    throw fail('NOT_FOUND', `imageFromDirectory: ${root}: ${e.code === 'ENOENT' ? 'no such directory' : e.message}`);
  });
  if (!st.isDirectory()) throw fail('NOT_A_DIRECTORY', `imageFromDirectory: ${root} is not a directory`);
  const prefixNorm = normalizePath(o.prefix ?? '/');
  if (prefixNorm instanceof Error) throw fail('BAD_PATH', `imageFromDirectory: prefix ${JSON.stringify(o.prefix)} has a ".." component`);
  const mtime = o.mtime instanceof Date ? Math.floor(o.mtime.getTime() / 1000) : (o.mtime ?? epochDefault());
  if (!Number.isFinite(mtime) || mtime < 0) throw fail('BAD_OPTIONS', `imageFromDirectory: mtime ${o.mtime} is not a time after 1970`);
  const owner = o.owner ?? { uid: 0, gid: 0 };
  const name = o.name ?? `dir:${root}`;

  const prefixDirs: FsEntry[] = [];
  if (prefixNorm) {
    const parts = prefixNorm.split('/');
    parts.forEach((_, i) => prefixDirs.push({ path: parts.slice(0, i + 1).join('/'), type: 'dir', mode: 0o755, uid: owner === 'preserve' ? 0 : owner.uid, gid: owner === 'preserve' ? 0 : owner.gid, mtime, size: 0 }));
  }
  const found = await walk(root, prefixNorm ?? '');
  found.sort((a, b) => compareBytewise(a.image, b.image));

  const items: TarWriteItem[] = prefixDirs.map((entry) => ({ entry }));
  const inodes = new Map<string, string>();
  for (const f of found) {
    const s = await lstat(f.disk);
    const ids = owner === 'preserve' ? { uid: s.uid, gid: s.gid } : owner;
    let mode = s.mode & 0o7777;
    if (o.modes === 'normalize') mode = s.isDirectory() || (s.isFile() && (mode & 0o111) !== 0) ? 0o755 : 0o644;
    const base = { path: f.image, mode, uid: ids.uid, gid: ids.gid, mtime, size: 0 };
    if (s.isDirectory()) items.push({ entry: { ...base, type: 'dir' } });
    else if (s.isSymbolicLink()) items.push({ entry: { ...base, mode: 0o777, type: 'symlink', linkname: await readlink(f.disk) } });
    else if (s.isFile()) {
      const key = `${s.dev}:${s.ino}`;
      const first = s.nlink > 1 ? inodes.get(key) : undefined;
      if (first) items.push({ entry: { ...base, type: 'hardlink', linkname: first } });
      else {
        if (s.nlink > 1) inodes.set(key, f.image);
        items.push({ entry: { ...base, type: 'file', size: s.size }, content: contentOf(f.disk, s) });
      }
    } else if (s.isFIFO()) items.push({ entry: { ...base, type: 'fifo' } });
    else throw fail('UNSUPPORTED_FILE', `imageFromDirectory: ${f.disk} is a socket or device; only files, directories, symlinks and FIFOs are copied`);
  }

  const scope = await TempScope.create(name, o.tmpDir);
  let layer;
  try {
    layer = await buildLayer({ tar: tarStream(items) as Readable, tmpDir: scope.dir, name: `layer 0 of ${name}`, onProgress: o.onProgress, signal: o.signal, scope, ...(o.compression ?? { compression: 'gzip' }) });
  } catch (e) {
    await scope.dispose();
    throw e;
  }
  const platform = o.platform ?? hostPlatform();
  const created = new Date(mtime * 1000).toISOString();
  const config: ImageConfig = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: structuredClone(o.config ?? {}),
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created, created_by: `enclavify imageFromDirectory ${path.basename(root)}` }],
  };
  const image = scopedImage(await assembleImage({ name, config, layers: [layer] }), scope);
  const dispose = () => scope.dispose();
  return { ...image, dispose, [Symbol.asyncDispose]: dispose };
}
