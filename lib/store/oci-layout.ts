/** Reading and writing OCI image layouts (image-spec image-layout.md). */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, rm, rmdir, stat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { verifyBytes, parseDigest } from '../oci/digest.js';
import { EnclavifyError, shortDigest } from '../oci/errors.js';
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

async function readBlob(dir: string, d: Descriptor, what: string): Promise<Buffer> {
  if (d.size > MAX_DOC) throw new EnclavifyError('BLOB_TOO_LARGE', `${what}: blob ${shortDigest(d.digest)} is ${d.size} bytes, more than a manifest or config may be`);
  const file = blobPath(dir, d.digest, what);
  // Never read more than the descriptor allows: a layout is untrusted input (a huge file, or a
  // symlink to /dev/zero, must not exhaust memory).
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new EnclavifyError('BLOB_MISSING', `${what}: blob ${d.digest} is missing from the layout (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EnclavifyError('BAD_LAYOUT', `${what}: blob ${d.digest} is not a regular file`);
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
}

/** Opens the image a reference names in an OCI image layout. Blobs are verified as they are read. */
export async function readOciLayout(ref: OciRef, opts: LayoutReadOptions = {}): Promise<Image> {
  const name = formatRef(ref);
  throwIfAborted(opts.signal, `opening ${name}`);
  const dir = ref.dir;
  let layoutHeader: string;
  try {
    layoutHeader = await readFile(path.join(dir, 'oci-layout'), 'utf8');
  } catch {
    throw new EnclavifyError('NOT_FOUND', `${name}: ${dir} is not an OCI image layout (no oci-layout file)`);
  }
  let version: unknown;
  try {
    version = (JSON.parse(layoutHeader) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    throw new EnclavifyError('BAD_JSON', `${name}: oci-layout is malformed JSON`);
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) throw new EnclavifyError('BAD_LAYOUT', `${name}: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  // What killed writers left (only temporaries whose owner is proved dead); read-only layouts are fine.
  await sweepTemporaries(dir).catch(() => undefined);
  const index = parseIndex(await readFile(path.join(dir, 'index.json')).catch(() => {
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
      const bytes = await readBlob(dir, { mediaType: '', digest: ref.digest, size: st.size }, `${name}: ${shortDigest(ref.digest)}`);
      const mt = (parseJson(bytes, `${name}: ${shortDigest(ref.digest)}`) as { mediaType?: unknown }).mediaType;
      desc = { mediaType: typeof mt === 'string' ? mt : MT.ociManifest, digest: ref.digest, size: st.size };
    }
  } else {
    const images = index.manifests.filter((d) => isManifestType(d.mediaType) || isIndexType(d.mediaType));
    const tags = images.map((d) => d.annotations?.[REF_NAME]).filter(Boolean);
    const found = ref.tag ? images.filter((d) => d.annotations?.[REF_NAME] === ref.tag) : images;
    if (found.length === 0) {
      throw new EnclavifyError('NOT_FOUND', ref.tag ? `${name}: no image tagged ${ref.tag} (tags: ${tags.join(', ') || 'none'})` : `${name}: the layout holds no image`);
    }
    if (found.length > 1) throw new EnclavifyError('AMBIGUOUS', `${name}: ${found.length} images match; name one with :TAG (tags: ${tags.join(', ') || 'none'}) or @DIGEST`);
    desc = found[0];
  }

  // Descend through (nested) indexes to one platform's manifest.
  const want = opts.platform ?? hostPlatform();
  for (let depth = 0; ; depth++) {
    if (depth > 4) throw new EnclavifyError('BAD_INDEX', `${name}: indexes nested too deeply`);
    const bytes = await readBlob(dir, desc, `${name}: manifest ${shortDigest(desc.digest)}`);
    const mt = desc.mediaType === MT.ociManifest || desc.mediaType === MT.dockerManifest || isIndexType(desc.mediaType)
      ? desc.mediaType
      : ((JSON.parse(bytes.toString()) as { mediaType?: string }).mediaType ?? desc.mediaType);
    if (isIndexType(mt)) {
      const idx: Index = parseIndex(bytes, `${name}: index ${shortDigest(desc.digest)}`);
      const match = idx.manifests.filter((d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture && (!want.variant || d.platform.variant === want.variant));
      // A child index without a platform (an index of indexes) is descended into, as containerd does.
      const nested = idx.manifests.filter((d) => !d.platform && isIndexType(d.mediaType));
      if (match.length === 0 && nested.length === 0) {
        throw new EnclavifyError('NOT_FOUND', `${name}: no manifest for platform ${fmtPlatform(want)} (available: ${idx.manifests.map((d) => fmtPlatform(d.platform)).join(', ')})`);
      }
      desc = match[0] ?? nested[0];
      continue;
    }
    if (!isManifestType(mt)) throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${name}: ${shortDigest(desc.digest)} has media type ${mt}, not an image manifest`);
    return layoutImage(dir, name, bytes, desc, opts.signal);
  }
}

function layoutImage(dir: string, name: string, rawManifest: Buffer, desc: Descriptor, signal: AbortSignal | undefined): Image {
  const manifest = parseManifest(rawManifest, `${name}: manifest ${shortDigest(desc.digest)}`);
  const rawConfig = lazy(() => readBlob(dir, manifest.config, `${name}: config`));
  const config = lazy(async () => parseConfig(await rawConfig(), `${name}: config ${shortDigest(manifest.config.digest)}`));
  const layers = lazy(async (): Promise<Layer[]> => manifestLayers(name, manifest, await config(), ({ desc: d, name: lname, compression, diffId }) => {
    const file = blobPath(dir, d.digest, lname);
    return new BlobLayer(d.mediaType, compression, lname, async () => {
      await stat(file).catch(() => {
        throw new EnclavifyError('BLOB_MISSING', `${lname}: blob ${d.digest} is missing from the layout`);
      });
      return abortable(createReadStream(file, { highWaterMark: 1 << 20 }), signal);
    }, { digest: d.digest, size: d.size, diffId }, d.annotations);
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
export async function writeOciLayout(image: Image, ref: OciRef, opts: { onProgress?: ProgressListener | undefined; signal?: AbortSignal | undefined } = {}): Promise<WriteResult> {
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
    // Layers: stream each verified blob into place, two at a time (both cores: one may be
    // decompressing or hashing while the other writes).
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
        try {
          // A large buffer lets writes of socket-sized chunks coalesce (writev) while one is in flight.
          const out = createWriteStream(tmp, { fd: await open(tmp, CREATE_NOFOLLOW, 0o644), flush: true, highWaterMark: 4 << 20 });
          if (opts.onProgress) await pipe(await l.compressed(), progressTap(progress), out, withSignal(signal));
          else await pipe(await l.compressed(), out, withSignal(signal));
          progress.finish();
          const written = (await stat(tmp)).size;
          if (written !== (await l.size())) throw new EnclavifyError('BLOB_SIZE_MISMATCH', `${l.name}: wrote ${written} bytes, expected ${await l.size()}`);
          await rename(tmp, dst);
        } catch (e) {
          failed = true;
          throw (await noSpaceError(e, dst, `${name}: writing ${l.name} into the destination layout`)) ?? e;
        } finally {
          await rm(tmp, { force: true });
          await owner.release();
        }
      }
    };
    // Wait for both workers even when one fails, so cleanup never races a write in progress.
    const done = await Promise.allSettled([worker(), worker()]);
    for (const d of done) if (d.status === 'rejected') throw d.reason;
    throwIfAborted(signal, `writing ${name}`);
    const rawConfig = Buffer.from(await image.rawConfig());
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
