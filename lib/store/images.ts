/**
 * Opening, writing and copying images by reference, whatever the transport (`oci:` layouts,
 * `docker-archive:` files, `docker://` registries). Re-exported by `enclavify/store` and the root
 * entry point. Kept apart from the store's other exports so that the CLI's `copy`, `tree` or
 * `inspect` loads only the modules its transports need: the docker-archive reader and writer (and
 * the tar code under them) load when a `docker-archive:` reference is used.
 */
import { coded, EnclavifyError } from '../oci/errors.js';
import type { Image } from '../oci/image.js';
import { toOciImage } from '../oci/convert.js';
import type { EncryptImageOptions } from '../ocicrypt/layers.js';
import type { DecryptionKeys } from '../ocicrypt/keys.js';
import { readOciLayout, writeOciLayout, type WriteResult } from './oci-layout.js';
import { formatRef, parseRef, type ImageRef } from './ref.js';
import type { ProgressListener } from '../oci/progress.js';
import type { Platform } from '../oci/types.js';
import type { PushedBlob } from '../registry/push.js';
import type { RegistryOptions } from '../registry/client.js';

const asRef = (r: ImageRef | string): ImageRef => (typeof r === 'string' ? parseRef(r) : r);

/** Options of {@link openImage}. */
export interface OpenOptions {
  /** Platform to pick from a multi-platform index (default linux/<host arch>). */
  platform?: Platform | undefined;
  /** Cancels the reads, including every stream later opened on the image's layers (they then fail with `ABORTED`). */
  signal?: AbortSignal | undefined;
  /** For `docker://`: how to reach the registry (credentials, auth file, TLS, retries). */
  registry?: RegistryOptions | undefined;
  /** For `docker://`: byte progress of each layer download (phase `pull`, per blob). */
  onProgress?: ProgressListener | undefined;
  /**
   * `oci:` sources: follow blob files that are symlinks (default false: such a blob is refused with
   * `BLOB_SYMLINK`, naming it), for stores that deduplicate by linking. Digests are verified either way.
   */
  followBlobSymlinks?: boolean | undefined;
}

/** Options of {@link writeImage}. */
export interface WriteOptions {
  /** Byte progress of each layer written (phase `write`; `skipped` for blobs already there). */
  onProgress?: ProgressListener | undefined;
  /**
   * Cancels the write: streams are destroyed, temporary blobs removed, index.json left as it was
   * (a layout this call created is removed; a registry's tag is not moved), and writeImage rejects with `ABORTED`.
   */
  signal?: AbortSignal | undefined;
  /** For `docker://`: how to reach the registry. Progress is then per blob (phase `push`: start, progress, done, skipped, mounted). */
  registry?: RegistryOptions | undefined;
}

/** What writing produced; a registry push also lists every blob and what happened to it. */
export interface WriteImageResult extends WriteResult {
  blobs?: PushedBlob[];
}

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** Platform to pick from a multi-platform source (default linux/<host arch>). */
  platform?: Platform | undefined;
  /**
   * Check the layers' contents before writing anything (default true): every layer decompresses
   * to its diff_id, its tar is well formed, and no entry escapes the root (`..`) or writes through
   * a symlink. Without it, only the stored blobs' digests are checked.
   */
  validate?: boolean;
  /** The most entries the validation merges (all layers together, default 2,000,000): more fail with `TOO_MANY_ENTRIES`. */
  maxEntries?: number | undefined;
  /** Progress of the validation (phase `validate`) and of the write (phase `write`). */
  onProgress?: ProgressListener | undefined;
  /** Cancels the copy (see {@link WriteOptions.signal}). */
  signal?: AbortSignal | undefined;
  /**
   * `oci:` sources: follow blob files that are symlinks (default false: such a blob is refused with
   * `BLOB_SYMLINK`, naming it), for stores that deduplicate by linking. Digests are verified either way.
   */
  followBlobSymlinks?: boolean | undefined;
  /** Registry access for a `docker://` source. */
  sourceRegistry?: RegistryOptions | undefined;
  /** Registry access for a `docker://` destination. */
  destinationRegistry?: RegistryOptions | undefined;
  /** Keys that open the source's ocicrypt-encrypted layers (they are written decrypted, unless re-encrypted). */
  decryptionKeys?: DecryptionKeys | undefined;
  /** Encrypt layers with ocicrypt for these recipients (the destination must carry it: oci: or docker://). */
  encryption?: EncryptImageOptions | undefined;
}

/**
 * Opens the image a reference names (`oci:DIR[:TAG]`, `oci:DIR@DIGEST`,
 * `docker-archive:FILE[:NAME:TAG]`, `docker://HOST/REPO[:TAG|@DIGEST]`). Manifest and config are
 * read now; layers are read (and verified against their digests) when streamed, from the
 * registry for `docker://` (where an index resolves to linux/amd64 by default).
 */
export async function openImage(ref: ImageRef | string, options: OpenOptions = {}): Promise<Image> {
  const r = asRef(ref);
  return coded(`opening ${formatRef(r)}`, async () => {
    if (r.transport === 'oci') return readOciLayout(r, options);
    if (r.transport === 'docker-archive') return (await import('./docker-archive.js')).readDockerArchive(r, options);
    if (r.transport === 'docker') return (await import('../registry/pull.js')).openRegistryImage(r, { platform: options.platform, registry: options.registry, signal: options.signal, onProgress: options.onProgress });
    throw new EnclavifyError('UNSUPPORTED_TRANSPORT', `${formatRef(r)}: unknown transport`);
  }, options.signal);
}

/**
 * Writes an image to a destination reference: an OCI layout (images are converted to OCI media
 * types; other images in the layout are kept), a docker archive (layers stored as their blobs),
 * or a registry (every blob first, skipped or mounted where possible, the manifest last as it is).
 */
export async function writeImage(image: Image, ref: ImageRef | string, options: WriteOptions = {}): Promise<WriteImageResult> {
  const r = asRef(ref);
  return coded(`writing ${image.name} to ${formatRef(r)}`, async (): Promise<WriteImageResult> => {
    if (r.transport === 'oci') return writeOciLayout(await toOciImage(image), r, options);
    if (r.transport === 'docker-archive') return (await import('./docker-archive-write.js')).writeDockerArchive(image, r, options);
    // Loaded when used, as are the layer check's modules below: a pull need not compile them.
    if (r.transport === 'docker') return (await import('../registry/push.js')).pushImage(image, r, { registry: options.registry, signal: options.signal, onProgress: options.onProgress });
    throw new EnclavifyError('UNSUPPORTED_TRANSPORT', `${formatRef(r)}: unknown transport`);
  }, options.signal);
}

/**
 * `skopeo copy` between supported transports: layers are streamed, verified and kept byte-identical.
 * With validation (the default), an OCI layout or docker archive destination is written and
 * checked in the same pass (each blob read once, from a registry downloaded once), and nothing
 * is committed until every layer passed; a registry destination is checked first, then pushed.
 */
export async function copyImage(from: ImageRef | string, to: ImageRef | string, options: CopyOptions = {}): Promise<WriteImageResult> {
  const { signal } = options;
  const dst = asRef(to);
  if (dst.transport !== 'docker') return copyTo(dst, from, options);
  // A push: its modules, credentials and the registry's `/v2/` ping while the source is opened
  // (and checked); a ping still retrying is ended with the copy.
  const warm = new AbortController();
  const r = dst;
  import('../registry/push.js').then((m) => m.preparePush(r, options.destinationRegistry, signal ? AbortSignal.any([signal, warm.signal]) : warm.signal)).catch(() => undefined);
  try {
    return await copyTo(dst, from, options);
  } finally {
    warm.abort();
  }
}

async function copyTo(dst: ImageRef, from: ImageRef | string, options: CopyOptions): Promise<WriteImageResult> {
  const { signal, onProgress } = options;
  let src = await openImage(from, { platform: options.platform, signal, registry: options.sourceRegistry, onProgress, followBlobSymlinks: options.followBlobSymlinks });
  // ocicrypt's modules (six, with JWE and the key providers) load only when keys are given.
  if (options.decryptionKeys) src = await (await import('../ocicrypt/layers.js')).decryptingImage(src, options.decryptionKeys);
  // One pass (write and check the same bytes) when the layers are written as they are read.
  if (options.validate !== false && dst.transport !== 'docker' && !options.encryption) {
    const { validatingImage } = await import('./validate.js');
    const v = await validatingImage(src, { signal, onProgress, maxEntries: options.maxEntries });
    const beforeCommit = () => coded(`validating ${src.name}`, () => v.validated(), signal);
    try {
      return await coded(`writing ${src.name} to ${formatRef(dst)}`, async (): Promise<WriteImageResult> => {
        if (dst.transport === 'oci') return writeOciLayout(await toOciImage(v.image), dst, { onProgress, signal, beforeCommit });
        return (await import('./docker-archive-write.js')).writeDockerArchive(v.image, dst, { onProgress, signal, beforeCommit });
      }, signal);
    } catch (e) {
      v.cancel(e as Error);
      throw e;
    }
  }
  if (options.validate !== false) {
    await coded(`validating ${src.name}`, async () => {
      const [layers, { layersRootFs }] = await Promise.all([src.layers(), import('../oci/rootfs.js')]);
      onProgress?.({ phase: 'validate', image: src.name, message: `validating ${layers.length} layers of ${src.name}` });
      await layersRootFs(layers, { onProgress, phase: 'validate', signal, progressEvent: { image: src.name }, maxEntries: options.maxEntries });
    }, signal);
  }
  if (options.encryption) src = await (await import('../ocicrypt/layers.js')).encryptedImage(src, { ...options.encryption, signal });
  return writeImage(src, dst, { onProgress, signal, registry: options.destinationRegistry });
}
