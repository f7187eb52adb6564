/** Opening and writing images by reference, whatever the transport. */
import { EnclavifyError } from '../oci/errors.js';
import type { Image } from '../oci/image.js';
import { toOciImage } from '../oci/convert.js';
import { readDockerArchive } from './docker-archive.js';
import { writeDockerArchive } from './docker-archive-write.js';
import { readOciLayout, writeOciLayout, type ReadOptions, type WriteResult } from './oci-layout.js';
import { formatRef, parseRef, type ImageRef } from './ref.js';
import { layersRootFs } from '../oci/rootfs.js';
import { openRegistryImage } from '../registry/pull.js';
import { pushImage, type PushedBlob } from '../registry/push.js';
import type { RegistryOptions } from '../registry/client.js';
import type { ProgressListener } from '../registry/progress.js';

export { parseRef, formatRef, ACCEPTED_FORMS, type ImageRef, type OciRef, type DockerArchiveRef, type RegistryRef } from './ref.js';
export { readOciLayout, writeOciLayout, hostPlatform, parsePlatform, type ReadOptions, type WriteResult } from './oci-layout.js';
export { writeFileAtomic, type WriteFileAtomicOptions } from './atomic.js';
export { readDockerArchive } from './docker-archive.js';
export { writeDockerArchive } from './docker-archive-write.js';

const asRef = (r: ImageRef | string): ImageRef => (typeof r === 'string' ? parseRef(r) : r);

/** Options for opening an image: the platform, and for `docker://` how to reach the registry. */
export interface OpenOptions extends ReadOptions {
  /** Registry access for a `docker://` reference (credentials, auth file, TLS, retries). */
  registry?: RegistryOptions;
  signal?: AbortSignal;
  /** Byte progress of registry downloads (one event type, per blob). */
  onProgress?: ProgressListener;
}

/**
 * Opens the image a reference names (`oci:DIR[:TAG]`, `oci:DIR@DIGEST`,
 * `docker-archive:FILE[:NAME:TAG]`, `docker://HOST/REPO[:TAG|@DIGEST]`). A registry image's
 * layers stream from the registry when read; the platform of an index defaults to linux/amd64.
 */
export async function openImage(ref: ImageRef | string, opts: OpenOptions = {}): Promise<Image> {
  const r = asRef(ref);
  if (r.transport === 'oci') return readOciLayout(r, opts);
  if (r.transport === 'docker-archive') return readDockerArchive(r);
  if (r.transport === 'docker') return openRegistryImage(r, { platform: opts.platform, registry: opts.registry, signal: opts.signal, onProgress: opts.onProgress });
  throw new EnclavifyError('UNSUPPORTED_TRANSPORT', `${formatRef(r)}: unknown transport`);
}

/** Options for writing an image. */
export interface WriteOptions {
  progress?: (msg: string) => void;
  /** Registry access for a `docker://` destination. */
  registry?: RegistryOptions;
  signal?: AbortSignal;
  /** Byte progress of registry uploads (per blob: start, progress, done, skipped, mounted). */
  onProgress?: ProgressListener;
}

/** What writing produced; a registry push also lists every blob and what happened to it. */
export interface WriteImageResult extends WriteResult {
  blobs?: PushedBlob[];
}

/**
 * Writes an image to a destination reference: an OCI layout (images are converted to OCI media
 * types), a docker archive (layers stored as their blobs), or a registry (manifest pushed as it
 * is, after every blob; layers stream into the registry).
 */
export async function writeImage(image: Image, ref: ImageRef | string, opts: WriteOptions = {}): Promise<WriteImageResult> {
  const r = asRef(ref);
  if (r.transport === 'oci') return writeOciLayout(await toOciImage(image), r, opts);
  if (r.transport === 'docker-archive') return writeDockerArchive(image, r, opts);
  if (r.transport === 'docker') return pushImage(image, r, { registry: opts.registry, signal: opts.signal, onProgress: opts.onProgress });
  throw new EnclavifyError('UNSUPPORTED_TRANSPORT', `${formatRef(r)}: unknown transport`);
}

/** Options of {@link copyImage}. */
export interface CopyOptions {
  from: ImageRef | string;
  to: ImageRef | string;
  readOptions?: OpenOptions;
  /** How the destination is written (its registry options, for `docker://`). */
  writeOptions?: WriteOptions;
  /**
   * Check the layers' contents before writing anything (default true): every layer decompresses
   * to its diff_id, its tar is well formed, and no entry escapes the root (`..`) or writes through
   * a symlink. Without it, only the stored blobs' digests are checked.
   */
  validate?: boolean;
  progress?: (msg: string) => void;
}

/** `skopeo copy` between supported transports: layers are streamed, verified and kept byte-identical. */
export async function copyImage(opts: CopyOptions): Promise<WriteImageResult> {
  const src = await openImage(opts.from, opts.readOptions);
  if (opts.validate !== false) {
    const layers = await src.layers();
    opts.progress?.(`validating ${layers.length} layers of ${src.name}`);
    await layersRootFs(layers);
  }
  return writeImage(src, opts.to, { progress: opts.progress, ...opts.writeOptions });
}
