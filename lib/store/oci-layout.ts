/** Reading and writing OCI image layouts (image-spec image-layout.md). */
import { constants as fsc, createReadStream, createWriteStream, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, open, readFile, rename, rm, rmdir, stat, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { mismatchMessage, verifyBytes, parseDigest } from '../oci/digest.js';
import { clip, EnclavifyError, listForMessage, shortDigest } from '../oci/errors.js';
import { lazy, type Image, type Layer } from '../oci/image.js';
import { encodeJson, parseConfig, parseIndex, parseJson, parseManifest } from '../oci/json.js';
import { BlobLayer } from '../oci/layer.js';
import { manifestLayers } from '../oci/manifest-layers.js';
import { isIndexType, isManifestType, MT } from '../oci/media-types.js';
import type { Descriptor, Index, Platform } from '../oci/types.js';
import { withLock } from './lock.js';
import { writeFileAtomic } from './atomic.js';
import type { OciRef } from './ref.js';
import { formatRef } from './ref.js';
import { ByteProgress, progressTap, type ProgressListener } from '../oci/progress.js';
import { abortable, throwIfAborted, withSignal } from '../oci/abort.js';
import { claimOwnership, isTmpFileName, sweepDir, tmpFileName, tmpOwnerSocket } from '../oci/owner.js';
import { CREATE_NOFOLLOW, mkdirNoFollow, refuseSymlink } from './no-follow.js';
import { noSpaceError } from './space.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_DOC = 4 << 20; // manifests and configs larger than this are refused (registries cap at 4 MiB)

function blobPath(dir: string, digest: string, what: string): string {
  const [alg, hex] = parseDigest(digest, what);
  return path.join(dir, 'blobs', alg, hex);
}

/**
 * Opens a blob file of a source layout for reading. A symlink is refused (`BLOB_SYMLINK`) unless
 * `follow`: a layout is untrusted input, and a link to a host file with a made-up digest must not
 * make us read (and talk about) that file. Whatever it is reached through must be a regular file:
 * a FIFO or a device is refused without blocking on it (O_NONBLOCK).
 */
async function openBlob(dir: string, digest: string, what: string, follow: boolean): Promise<FileHandle> {
  const file = blobPath(dir, digest, what);
  const flags = fsc.O_RDONLY | fsc.O_NONBLOCK | (follow ? 0 : fsc.O_NOFOLLOW);
  let fh: FileHandle;
  try {
    fh = await open(file, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') {
      throw new EnclavifyError('BLOB_SYMLINK', `${what}: blob ${digest} is a symlink in the layout (${file}); refused, as it could point at any file of this host. For a store that deduplicates by linking, pass followBlobSymlinks (CLI: --follow-blob-symlinks); the digest is verified either way`);
    }
    throw new EnclavifyError('BLOB_MISSING', `${what}: blob ${digest} is missing from the layout (${code})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EnclavifyError('BAD_LAYOUT', `${what}: blob ${digest} is not a regular file`);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return fh;
}

async function readBlob(dir: string, d: Descriptor, what: string, follow: boolean): Promise<Buffer> {
  if (d.size > MAX_DOC) throw new EnclavifyError('BLOB_TOO_LARGE', `${what}: blob ${shortDigest(d.digest)} is ${d.size} bytes, more than a manifest or config may be`);
  // Never read more than the descriptor allows: a layout is untrusted input (a huge file must not
  // exhaust memory), and the bytes are verified before anything parses them.
  const fh = await openBlob(dir, d.digest, what, follow);
  try {
    const bytes = Buffer.alloc(d.size + 1);
    const { bytesRead } = await fh.read(bytes, 0, d.size + 1, 0);
    if (bytesRead > d.size) throw new EnclavifyError('BLOB_SIZE_MISMATCH', `${what}: blob ${shortDigest(d.digest)} is larger than the ${d.size} bytes its descriptor says`);
    const data = bytes.subarray(0, bytesRead);
    verifyBytes(data, d, what);
    return data;
  } finally {
    await fh.close();
  }
}

const MAX_INDEX = 64 << 20; // index.json lists every image of a layout: generous, but bounded

/**
 * Reads `oci-layout` or `index.json` of a source layout: a regular file (a FIFO or device is
 * refused without blocking on it) of at most `max` bytes. System errors pass through (missing).
 */
async function readLayoutFile(file: string, what: string, max: number): Promise<Buffer> {
  const fh = await open(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EnclavifyError('BAD_LAYOUT', `${what}: not a regular file`);
    if (st.size > max) throw new EnclavifyError('BLOB_TOO_LARGE', `${what}: ${st.size} bytes, more than the ${max} accepted`);
    const buf = Buffer.alloc(st.size + 1);
    const { bytesRead } = await fh.read(buf, 0, st.size + 1, 0);
    if (bytesRead > st.size) throw new EnclavifyError('BAD_LAYOUT', `${what}: grew while it was read`);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The platform a multi-platform index is resolved to by default: linux on this machine's architecture. */
export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return { os: 'linux', architecture: arch };
}

/** Parse `os/arch[/variant]`. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new EnclavifyError('BAD_PLATFORM', `platform ${JSON.stringify(s)} is not OS/ARCH[/VARIANT]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

const fmtPlatform = (p?: Platform) => (p ? `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}` : 'unknown');

/** Options for reading an image. */
/** Options of {@link readOciLayout}. */
export interface LayoutReadOptions {
  /** Platform to pick from a multi-platform index (default linux/<host arch>). */
  platform?: Platform | undefined;
  /** Cancels the reads, including every stream later opened on the image's layers. */
  signal?: AbortSignal | undefined;
  /**
   * Follow blob files that are symlinks (default false: refused with `BLOB_SYMLINK`, naming the
   * blob), for stores that deduplicate by linking. Digests are verified either way.
   */
  followBlobSymlinks?: boolean | undefined;
}

/** Opens the image a reference names in an OCI image layout. Blobs are verified as they are read. */
export async function readOciLayout(ref: OciRef, opts: LayoutReadOptions = {}): Promise<Image> {
  const name = formatRef(ref);
  throwIfAborted(opts.signal, `opening ${name}`);
  const dir = ref.dir;
  const follow = opts.followBlobSymlinks === true;
  let layoutHeader: string;
  try {
    layoutHeader = (await readLayoutFile(path.join(dir, 'oci-layout'), `${name}: oci-layout`, 4096)).toString('utf8');
  } catch (e) {
    if (e instanceof EnclavifyError) throw e;
    throw new EnclavifyError('NOT_FOUND', `${name}: ${dir} is not an OCI image layout (no oci-layout file)`);
  }
  const header = parseJson(layoutHeader, `${name}: oci-layout`) as { imageLayoutVersion?: unknown } | null;
  const version: unknown = typeof header === 'object' && header !== null ? header.imageLayoutVersion : undefined;
  if (typeof version !== 'string' || !version.startsWith('1.')) throw new EnclavifyError('BAD_LAYOUT', `${name}: unsupported imageLayoutVersion ${typeof version === 'string' && version.length <= 32 ? JSON.stringify(version) : '(missing or not a short string)'}`);
  // What killed writers left (only temporaries whose owner is proved dead); read-only layouts are fine.
  await sweepTemporaries(dir).catch(() => undefined);
  const index = parseIndex(await readLayoutFile(path.join(dir, 'index.json'), `${name}: index.json`, MAX_INDEX).catch((e: unknown) => {
    if (e instanceof EnclavifyError) throw e;
    throw new EnclavifyError('BAD_LAYOUT', `${name}: index.json is missing`);
  }), `${name}: index.json`);

  let desc: Descriptor;
  if (ref.digest) {
    const listed = index.manifests.find((d) => d.digest === ref.digest);
    if (listed) desc = listed;
    else {
      // Not in index.json: any blob of the layout may be named by digest; its media type is in it.
      const st = await stat(blobPath(dir, ref.digest, name)).catch(() => undefined);
      if (!st?.isFile()) throw new EnclavifyError('NOT_FOUND', `${name}: no manifest with digest ${ref.digest} in the layout`);
      const bytes = await readBlob(dir, { mediaType: '', digest: ref.digest, size: st.size }, `${name}: ${shortDigest(ref.digest)}`, follow);
      const mt = (parseJson(bytes, `${name}: ${shortDigest(ref.digest)}`) as { mediaType?: unknown }).mediaType;
      desc = { mediaType: typeof mt === 'string' ? mt : MT.ociManifest, digest: ref.digest, size: st.size };
    }
  } else {
    const images = index.manifests.filter((d) => isManifestType(d.mediaType) || isIndexType(d.mediaType));
    const tags = images.map((d) => d.annotations?.[REF_NAME]).filter(Boolean);
    const found = ref.tag ? images.filter((d) => d.annotations?.[REF_NAME] === ref.tag) : images;
    if (found.length === 0) {
      throw new EnclavifyError('NOT_FOUND', ref.tag ? `${name}: no image tagged ${ref.tag} (tags: ${listForMessage(tags) || 'none'})` : `${name}: the layout holds no image`);
    }
    if (found.length > 1) throw new EnclavifyError('AMBIGUOUS', `${name}: ${found.length} images match; name one with :TAG (tags: ${listForMessage(tags) || 'none'}) or @DIGEST`);
    desc = found[0];
  }

  // Descend through (nested) indexes to one platform's manifest.
  const want = opts.platform ?? hostPlatform();
  for (let depth = 0; ; depth++) {
    if (depth > 4) throw new EnclavifyError('BAD_INDEX', `${name}: indexes nested too deeply`);
    const bytes = await readBlob(dir, desc, `${name}: manifest ${shortDigest(desc.digest)}`, follow);
    const mt = desc.mediaType === MT.ociManifest || desc.mediaType === MT.dockerManifest || isIndexType(desc.mediaType)
      ? desc.mediaType
      : (mediaTypeOf(parseJson(bytes, `${name}: manifest ${shortDigest(desc.digest)}`)) ?? desc.mediaType);
    if (isIndexType(mt)) {
      const idx: Index = parseIndex(bytes, `${name}: index ${shortDigest(desc.digest)}`);
      const match = idx.manifests.filter((d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture && (!want.variant || d.platform.variant === want.variant));
      // A child index without a platform (an index of indexes) is descended into, as containerd does.
      const nested = idx.manifests.filter((d) => !d.platform && isIndexType(d.mediaType));
      if (match.length === 0 && nested.length === 0) {
        throw new EnclavifyError('NOT_FOUND', `${name}: no manifest for platform ${fmtPlatform(want)} (available: ${listForMessage(idx.manifests.map((d) => fmtPlatform(d.platform)))})`);
      }
      desc = match[0] ?? nested[0];
      continue;
    }
    if (!isManifestType(mt)) throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${name}: ${shortDigest(desc.digest)} has media type ${clip(String(mt))}, not an image manifest`);
    return layoutImage(dir, name, bytes, desc, opts.signal, follow);
  }
}

function mediaTypeOf(doc: unknown): string | undefined {
  const mt = typeof doc === 'object' && doc !== null ? (doc as { mediaType?: unknown }).mediaType : undefined;
  return typeof mt === 'string' ? mt : undefined;
}

/**
 * The blob file behind each layer this module opened from a layout (checked as every blob read
 * is: no symlink unless followed, a regular file), so that writing it into another layout can
 * copy it in the kernel (see {@link copyLayoutBlob}).
 */
const layoutBlobs = new WeakMap<Layer, () => Promise<FileHandle>>();

/** /proc/self/fd names an open file without a path lookup (Linux). */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined;
const KERNEL_COPY_UNAVAILABLE = new Set(['ENOENT', 'EACCES', 'EPERM', 'EINVAL', 'ENOSYS', 'EXDEV', 'EOPNOTSUPP', 'ENOTSUP']);

/**
 * Copies a layout blob into the temporary file `tmp` (created here, no symlink followed) in the
 * kernel (copy_file_range/sendfile: the bytes never pass through JavaScript), then verifies the
 * copy itself: its bytes are read back from the temporary file and hashed, so what is renamed
 * into place is what was checked, whatever happened to the source meanwhile. Both files are named
 * by their open descriptors (/proc/self/fd), never by a path that could be swapped for a link.
 * Faster than streaming the blob through a digest check into a write stream: the python image's
 * 104 MB base layer, written and synced, ~150 ms instead of ~270 ms (docs/performance.md).
 * False (and no temporary left) when this system cannot copy that way.
 */
async function copyLayoutBlob(openSource: () => Promise<FileHandle>, tmp: string, desc: { digest: string; size: number }, what: string, progress: ByteProgress, signal: AbortSignal | undefined): Promise<boolean> {
  const [alg] = parseDigest(desc.digest, what);
  const src = await openSource();
  try {
    const out = await open(tmp, CREATE_NOFOLLOW, 0o644);
    try {
      try {
        await copyFile(`${PROC_FD}/${src.fd}`, `${PROC_FD}/${out.fd}`);
      } catch (e) {
        // No usable /proc or no in-kernel copy here (a hardened /proc, a sandbox): the caller
        // streams the blob instead. A full disk is a full disk either way.
        if (KERNEL_COPY_UNAVAILABLE.has((e as NodeJS.ErrnoException).code ?? '')) {
          await out.close().catch(() => undefined);
          await rm(tmp, { force: true });
          return false;
        }
        throw e;
      }
      throwIfAborted(signal, `writing ${what}`);
      const rd = await open(`${PROC_FD}/${out.fd}`, fsc.O_RDONLY);
      try {
        const hash = createHash(alg);
        const buf = Buffer.allocUnsafe(4 << 20);
        let bytes = 0;
        for (;;) {
          const { bytesRead } = await rd.read(buf, 0, buf.length, bytes);
          if (bytesRead === 0) break;
          bytes += bytesRead;
          if (bytes > desc.size) throw new EnclavifyError('BLOB_SIZE_MISMATCH', `${what}: blob ${shortDigest(desc.digest)} is larger than the ${desc.size} bytes its descriptor says`);
          hash.update(buf.subarray(0, bytesRead));
          progress.add(bytesRead);
          throwIfAborted(signal, `writing ${what}`);
        }
        if (bytes !== desc.size) throw new EnclavifyError('BLOB_SIZE_MISMATCH', `${what}: blob ${shortDigest(desc.digest)} is truncated: ${bytes} of ${desc.size} bytes`);
        if (`${alg}:${hash.digest('hex')}` !== desc.digest) throw new EnclavifyError('BLOB_DIGEST_MISMATCH', mismatchMessage(what, desc));
      } finally {
        await rd.close();
      }
      await out.sync();
    } finally {
      await out.close().catch(() => undefined);
    }
  } finally {
    await src.close();
  }
  return true;
}

function layoutImage(dir: string, name: string, rawManifest: Buffer, desc: Descriptor, signal: AbortSignal | undefined, follow: boolean): Image {
  const manifest = parseManifest(rawManifest, `${name}: manifest ${shortDigest(desc.digest)}`);
  const rawConfig = lazy(() => readBlob(dir, manifest.config, `${name}: config`, follow));
  const config = lazy(async () => parseConfig(await rawConfig(), `${name}: config ${shortDigest(manifest.config.digest)}`));
  const layers = lazy(async (): Promise<Layer[]> => manifestLayers(name, manifest, await config(), ({ desc: d, name: lname, compression, diffId }) => {
    blobPath(dir, d.digest, lname); // a malformed digest fails now
    const layer = new BlobLayer(d.mediaType, compression, lname, async () => {
      const fh = await openBlob(dir, d.digest, lname, follow);
      return abortable(createReadStream('', { fd: fh, highWaterMark: 1 << 20 }), signal);
    }, { digest: d.digest, size: d.size, diffId }, d.annotations);
    layoutBlobs.set(layer, () => openBlob(dir, d.digest, lname, follow));
    return layer;
  }));
  return {
    name,
    mediaType: async () => manifest.mediaType ?? desc.mediaType,
    manifest: async () => manifest,
    rawManifest: async () => rawManifest,
    digest: async () => desc.digest,
    config,
    rawConfig,
    layers,
  };
}

/** Options of {@link writeOciLayout} and `writeDockerArchive`. */
export interface WriteLayoutOptions {
  /** Byte progress of each blob written (phase `write`). */
  onProgress?: ProgressListener | undefined;
  /** Cancels the write (temporary blobs removed, index.json as it was). */
  signal?: AbortSignal | undefined;
  /** Runs after every blob is in place and before the write is committed; a rejection aborts the write. */
  beforeCommit?: (() => Promise<void>) | undefined;
}

/** What writing an image produced. */
export interface WriteResult { digest: string; size: number; mediaType: string; reference: string }

/**
 * Writes an image into an OCI image layout (created if needed; other images in it are kept).
 *
 * Blobs are content-addressed and each is written under a temporary name, flushed and renamed
 * into place, so writers never see half a blob and need no lock for them; only the update of
 * index.json (read, change, replace atomically) happens under the layout's lock, which is
 * therefore never held while layers stream. `Layer.compressed()` yields verified bytes (stored
 * blobs are checked against their digests as they are read), so nothing is hashed twice here.
 * On failure, a layout this call created (or found empty) is removed again; in an existing
 * layout, whole blobs may remain unreferenced, which the image-layout spec allows.
 */
export async function writeOciLayout(image: Image, ref: OciRef, opts: WriteLayoutOptions = {}): Promise<WriteResult> {
  const name = formatRef(ref);
  const signal = opts.signal;
  throwIfAborted(signal, `writing ${name}`);
  if (ref.digest) throw new EnclavifyError('BAD_REFERENCE', `${name}: a destination cannot name a digest; use oci:DIR[:TAG]`);
  // Before anything is created: an image that cannot give its layers (e.g. DISPOSED) fails here.
  const layers = await image.layers();
  const dir = ref.dir;
  const lockFile = path.join(dir, LOCK_NAME);
  // The directory named may be reached through symlinks (the caller chose it); nothing inside it
  // is: blobs/, blobs/ALG/, index.json, oci-layout and the lock are checked with lstat.
  const st = await stat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new EnclavifyError('BAD_LAYOUT', `${name}: ${dir} exists and is not a directory`);
  for (const n of ['blobs', 'index.json', 'oci-layout', LOCK_NAME]) await refuseSymlink(path.join(dir, n), `${name}: layout`);
  // mkdir tells whether this call created the directory; an existing empty one counts the same.
  const firstCreated = await mkdir(dir, { recursive: true });
  const created = firstCreated !== undefined || (await readdir(dir)).length === 0;
  try {
    await withLock(lockFile, name, async () => {
      const entries = (await readdir(dir)).filter((e) => e !== LOCK_NAME && !isTmpFileName(e) && !e.startsWith('.owner-'));
      if (entries.length > 0 && !entries.includes('oci-layout') && !entries.every((e) => e === 'blobs')) {
        throw new EnclavifyError('BAD_LAYOUT', `${name}: ${dir} is neither empty nor an OCI image layout`);
      }
      await mkdirNoFollow(dir, 'blobs', `${name}: layout`);
      for (const alg of await readdir(path.join(dir, 'blobs'))) await refuseSymlink(path.join(dir, 'blobs', alg), `${name}: layout`);
      if (!entries.includes('oci-layout')) await writeFileAtomic(path.join(dir, 'oci-layout'), encodeJson({ imageLayoutVersion: '1.0.0' }), { mode: 0o644 });
      await sweepTemporaries(dir);
    });
    const manifest = await image.manifest();
    const rawManifest = Buffer.from(await image.rawManifest());
    const mediaType = await image.mediaType();
    const digest = await image.digest();
    verifyBytes(rawManifest, { digest }, `${name}: manifest`);
    // The config (a registry round trip) is fetched while the layers stream.
    const configP = image.rawConfig();
    configP.catch(() => undefined);
    // Layers: stream each verified blob into place, two at a time (both cores: one may be
    // decompressing or hashing while the other writes).
    // With `beforeCommit` (a copy validating while it writes), the layer blobs stay under their
    // temporary names until it has resolved: nothing unchecked lands in blobs/.
    const staged: Array<{ tmp: string; dst: string; owner: Awaited<ReturnType<typeof claimOwnership>> }> = [];
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < layers.length && !failed) {
        throwIfAborted(signal, `writing ${name}`);
        const i = next++;
        const l = layers[i];
        const blob = await l.digest();
        const dst = blobPath(dir, blob, l.name);
        const size = await l.size();
        const progress = new ByteProgress(opts.onProgress, { phase: 'write', message: `writing ${l.name}`, image: image.name, layer: i, blob }, size);
        if (await existsWithSize(dst, size, name)) {
          progress.finish('skipped');
          continue;
        }
        progress.start();
        await mkdirNoFollow(dir, path.relative(dir, path.dirname(dst)), `${name}: layout`);
        const tmp = tmpFileName(dst);
        // Proof of life for sweeps by other processes (lib/oci/owner.ts), held while the temporary exists.
        const owner = await claimOwnership(tmpOwnerSocket(tmp));
        let keep = false;
        try {
          const fromLayout = PROC_FD ? layoutBlobs.get(l) : undefined;
          if (!fromLayout || !(await copyLayoutBlob(fromLayout, tmp, { digest: blob, size }, l.name, progress, signal))) {
            // A large buffer lets writes of socket-sized chunks coalesce (writev) while one is in flight.
            const out = createWriteStream(tmp, { fd: await open(tmp, CREATE_NOFOLLOW, 0o644), flush: true, highWaterMark: 4 << 20 });
            if (opts.onProgress) await pipe(await l.compressed(), progressTap(progress), out, withSignal(signal));
            else await pipe(await l.compressed(), out, withSignal(signal));
          }
          progress.finish();
          const written = (await stat(tmp)).size;
          if (written !== (await l.size())) throw new EnclavifyError('BLOB_SIZE_MISMATCH', `${l.name}: wrote ${written} bytes, expected ${await l.size()}`);
          if (opts.beforeCommit) {
            staged.push({ tmp, dst, owner });
            keep = true;
          } else await rename(tmp, dst);
        } catch (e) {
          failed = true;
          throw (await noSpaceError(e, dst, `${name}: writing ${l.name} into the destination layout`)) ?? e;
        } finally {
          if (!keep) {
            await rm(tmp, { force: true });
            await owner.release();
          }
        }
      }
    };
    try {
      // Wait for both workers even when one fails, so cleanup never races a write in progress.
      const done = await Promise.allSettled([worker(), worker()]);
      for (const d of done) if (d.status === 'rejected') throw d.reason;
      if (opts.beforeCommit) {
        await opts.beforeCommit();
        throwIfAborted(signal, `writing ${name}`);
        for (const s of staged) await rename(s.tmp, s.dst);
      }
    } finally {
      for (const s of staged) {
        await rm(s.tmp, { force: true });
        await s.owner.release();
      }
    }
    throwIfAborted(signal, `writing ${name}`);
    const rawConfig = Buffer.from(await configP);
    verifyBytes(rawConfig, manifest.config, `${name}: config`);
    for (const [bytes, d] of [[rawConfig, manifest.config.digest], [rawManifest, digest]] as const) {
      const dst = blobPath(dir, d, name);
      if (!(await existsWithSize(dst, bytes.length, name))) {
        await mkdirNoFollow(dir, path.relative(dir, path.dirname(dst)), `${name}: layout`);
        await writeFileAtomic(dst, bytes, { mode: 0o644 });
      }
    }
    // index.json: replace any descriptor with the same tag, keep everything else.
    throwIfAborted(signal, `writing ${name}`);
    return await withLock(lockFile, name, async () => {
      const indexPath = path.join(dir, 'index.json');
      await refuseSymlink(indexPath, `${name}: layout`);
      const index: Index = await readFile(indexPath).then((b) => parseIndex(b, `${name}: index.json`), () => ({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] }));
      const desc: Descriptor = { mediaType, digest, size: rawManifest.length };
      if (ref.tag) desc.annotations = { [REF_NAME]: ref.tag };
      index.manifests = index.manifests.filter((d) => !(ref.tag ? d.annotations?.[REF_NAME] === ref.tag : d.digest === digest && !d.annotations?.[REF_NAME]));
      index.manifests.push(desc);
      if (!index.mediaType) index.mediaType = MT.ociIndex;
      await writeFileAtomic(indexPath, encodeJson(index), { mode: 0o644 });
      return { digest, size: rawManifest.length, mediaType, reference: name };
    });
  } catch (e) {
    // Best effort, under the lock so no other writer sees a half-removed layout; the original
    // error is what the caller needs to see.
    if (created) {
      await withLock(lockFile, name, async () => {
        if (await stat(path.join(dir, 'index.json')).catch(() => undefined)) return; // someone else's image landed
        for (const n of await readdir(dir)) if (n !== LOCK_NAME) await rm(path.join(dir, n), { recursive: true, force: true });
      }).catch(() => undefined);
      // The directory and the parents this call created (`oci:new/a/b`), when empty.
      if (st === undefined) {
        const top = path.resolve(firstCreated ?? dir);
        for (let d = path.resolve(dir); d === top || d.startsWith(top + path.sep); d = path.dirname(d)) {
          if (!(await rmdir(d).then(() => true, () => false))) break;
        }
      }
    }
    throw e;
  }
}

const LOCK_NAME = 'index.json.lock';

/**
 * Removes the temporaries killed writers left: `blobs/ALG/*.tmp-TOKEN-R` and `.index.json.tmp-…`
 * in the layout's directory, each only when its owner socket proves the owner dead (or, without a
 * socket, after an hour; lib/oci/owner.ts). Symlinked structure is never descended into.
 */
export async function sweepTemporaries(dir: string): Promise<string[]> {
  const opts = { isTemp: isTmpFileName, socketOf: tmpOwnerSocket };
  const removed = await sweepDir(dir, opts);
  const blobs = path.join(dir, 'blobs');
  if (!(await lstat(blobs).catch(() => undefined))?.isDirectory()) return removed;
  for (const alg of await readdir(blobs).catch(() => [] as string[])) {
    const sub = path.join(blobs, alg);
    if ((await lstat(sub).catch(() => undefined))?.isDirectory()) removed.push(...(await sweepDir(sub, opts)));
  }
  return removed;
}

/** Whether the blob `file` is in place with `size` bytes; a blob that is a symlink is refused. */
async function existsWithSize(file: string, size: number, name: string): Promise<boolean> {
  const st = await lstat(file).catch(() => undefined);
  if (st?.isSymbolicLink()) await refuseSymlink(file, `${name}: layout`);
  return !!st && st.isFile() && st.size === size;
}
