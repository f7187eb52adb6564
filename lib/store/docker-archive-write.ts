/**
 * Writing `docker save`-style archives (`docker-archive:FILE[:NAME:TAG]`), loadable by
 * `docker load` and readable by skopeo. Layers are stored as their blobs, byte for byte (no
 * recompression; docker and containers/image detect the compression), under `<hex>.tar`.
 */
import { createWriteStream } from 'node:fs';
import { lstat, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { chain } from '../oci/layer.js';
import { claimOwnership, isTmpFileName, sweepDir, tmpFileName, tmpOwnerSocket } from '../oci/owner.js';
import { CREATE_NOFOLLOW } from './no-follow.js';
import { noSpaceError } from './space.js';
import { pipeline as pipe } from 'node:stream/promises';
import { tarStream, type TarWriteItem } from '../fs/tar-write.js';
import type { FsEntry } from '../fs/entry.js';
import { sha256Digest, VerifyingStream } from '../oci/digest.js';
import { EnclavifyError } from '../oci/errors.js';
import type { Image } from '../oci/image.js';
import { encodeJson } from '../oci/json.js';
import type { DockerArchiveRef } from './ref.js';
import { formatRef } from './ref.js';
import type { WriteLayoutOptions, WriteResult } from './oci-layout.js';
import { ByteProgress, progressTap } from '../oci/progress.js';
import { throwIfAborted, withSignal } from '../oci/abort.js';

const fileEntry = (path: string, size: number): FsEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size });

/** Writes the image as a docker archive (a new file, written under a temporary name and renamed). */
export async function writeDockerArchive(image: Image, ref: DockerArchiveRef, opts: WriteLayoutOptions = {}): Promise<WriteResult> {
  const name = formatRef(ref);
  throwIfAborted(opts.signal, `writing ${name}`);
  const rawConfig = Buffer.from(await image.rawConfig());
  const configName = `${sha256Digest(rawConfig).slice(7)}.json`;
  const layers = await image.layers();
  const sealed = layers.find((l) => l.mediaType.endsWith('+encrypted'));
  if (sealed) {
    // A docker archive lists layers by file name only: no media type, no annotations. An encrypted
    // layer written there could never be decrypted, so refuse instead of writing ciphertext.
    throw new EnclavifyError('OCICRYPT_UNSUPPORTED', `${name}: a docker archive cannot carry encrypted layers (no layer media types or annotations): ${sealed.name} would become unreadable ciphertext; write to oci: or docker:// instead`);
  }
  const layerNames = await Promise.all(layers.map(async (l) => `${(await l.digest()).split(':')[1]}.tar`));
  const repoTag = ref.name ? [ref.name] : [];
  const manifestJson = encodeJson([{ Config: configName, RepoTags: repoTag, Layers: layerNames }]);
  async function* items(): AsyncGenerator<TarWriteItem> {
    yield { entry: fileEntry(configName, rawConfig.length), content: rawConfig };
    const seen = new Set<string>();
    for (const [i, l] of layers.entries()) {
      if (seen.has(layerNames[i])) continue; // the same blob twice is stored once
      seen.add(layerNames[i]);
      const size = await l.size();
      const blob = await l.digest();
      const progress = new ByteProgress(opts.onProgress, { phase: 'write', message: `writing ${l.name}`, image: image.name, layer: i, blob }, size).start();
      const verified = chain(await l.compressed(), new VerifyingStream({ digest: blob, size }, l.name));
      const content = opts.onProgress ? chain(verified, progressTap(progress)) : verified;
      content.once('end', () => progress.finish());
      yield { entry: fileEntry(layerNames[i], size), content };
    }
    yield { entry: fileEntry('manifest.json', manifestJson.length), content: manifestJson };
  }
  // lstat: a dangling symlink at the destination is refused too, never written through.
  if (await lstat(ref.file).then(() => true, () => false)) {
    throw new EnclavifyError('EXISTS', `${name}: ${ref.file} already exists; a docker archive is written whole (remove it first)`);
  }
  // Temporaries of killed writers of archives next to this one (owner socket refused; lib/oci/owner.ts).
  await sweepDir(path.dirname(path.resolve(ref.file)), { isTemp: isTmpFileName, socketOf: tmpOwnerSocket }).catch(() => undefined);
  const tmp = tmpFileName(ref.file);
  const owner = await claimOwnership(tmpOwnerSocket(tmp));
  try {
    await pipe(tarStream(items()), createWriteStream(tmp, { fd: await open(tmp, CREATE_NOFOLLOW, 0o644), flush: true }), withSignal(opts.signal));
    if (opts.beforeCommit) await opts.beforeCommit();
    await rename(tmp, ref.file);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof EnclavifyError || opts.signal?.aborted) throw e;
    throw (await noSpaceError(e, ref.file, `${name}: writing the docker archive`)) ?? new EnclavifyError('WRITE_FAILED', `${name}: ${(e as Error).message}`, { cause: e });
  } finally {
    await owner.release();
  }
  const digest = await image.digest();
  return { digest, size: (await image.rawManifest()).length, mediaType: await image.mediaType(), reference: name };
}
