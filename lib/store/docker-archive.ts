/** Reading `docker save` archives (classic `<id>/layer.tar` and newer `blobs/sha256/…` forms). */
/** Options of {@link readDockerArchive}. */
export interface ReadDockerArchiveOptions {
  /** Cancels the reads, including every stream later opened on the image's layers. */
  signal?: AbortSignal | undefined;
}
import { Writable } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { EnclavifyError, listForMessage } from '../oci/errors.js';
import { lazy, type Image, type Layer } from '../oci/image.js';
import { encodeJson, parseConfig, parseJson } from '../oci/json.js';
import { BlobLayer } from '../oci/layer.js';
import { dockerLayerType, MT } from '../oci/media-types.js';
import { decompressor, sniffCompression } from '../oci/compression.js';
import { HashingStream, sha256Digest, VerifyingStream } from '../oci/digest.js';
import type { Manifest } from '../oci/types.js';
import type { DockerArchiveRef } from './ref.js';
import { formatRef } from './ref.js';
import { TarIndex } from './tar-index.js';
import { abortable, throwIfAborted, withSignal } from '../oci/abort.js';

interface ArchiveEntry { Config: string; RepoTags?: string[] | null; Layers: string[] }

/** `docker.io/library/x:t` and `x:t` name the same image. */
export function normalizeName(n: string): string {
  let s = n;
  if (!/^[^/]+[.:][^/]*\//.test(s) && !s.startsWith('localhost/')) s = `docker.io/${s}`;
  if (/^docker\.io\/[^/]+:[^/]+$/.test(s) || /^docker\.io\/[^/:]+$/.test(s)) s = s.replace('docker.io/', 'docker.io/library/');
  return s;
}

/** Opens an image in a `docker save` archive. The layers are read in place, never extracted. */
export async function readDockerArchive(ref: DockerArchiveRef, opts: ReadDockerArchiveOptions = {}): Promise<Image> {
  const name = formatRef(ref);
  const signal = opts.signal;
  throwIfAborted(signal, `opening ${name}`);
  const tar = await TarIndex.open(ref.file);
  const list = parseJson(await tar.read('manifest.json').catch((e) => {
    throw new EnclavifyError('BAD_ARCHIVE', `${name}: not a docker archive: ${(e as Error).message}`);
  }), `${name}: manifest.json`);
  if (!Array.isArray(list) || list.length === 0) throw new EnclavifyError('BAD_ARCHIVE', `${name}: manifest.json lists no images`);
  const entries = list as ArchiveEntry[];
  let entry: ArchiveEntry | undefined;
  const allTags = entries.flatMap((e) => e.RepoTags ?? []);
  if (ref.name) {
    const want = normalizeName(ref.name);
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => normalizeName(t) === want));
    if (!entry) throw new EnclavifyError('NOT_FOUND', `${name}: no image named ${ref.name} (images: ${listForMessage(allTags) || 'untagged'})`);
  } else {
    if (entries.length > 1) throw new EnclavifyError('AMBIGUOUS', `${name}: the archive holds ${entries.length} images; name one with :NAME:TAG (${listForMessage(allTags)})`);
    entry = entries[0];
  }
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
    throw new EnclavifyError('BAD_ARCHIVE', `${name}: manifest.json entry needs Config (a member name) and Layers (a list of member names)`);
  }
  const rawConfig = await tar.read(entry.Config);
  // Both archive forms name the config by its digest (`<hex>.json`, `blobs/sha256/<hex>`): check it.
  const configHex = digestInName(entry.Config);
  if (configHex && sha256Digest(rawConfig) !== `sha256:${configHex}`) {
    throw new EnclavifyError('BLOB_DIGEST_MISMATCH', `${name}: config ${entry.Config} (${rawConfig.length} bytes) does not match the digest it is named by`);
  }
  const config = parseConfig(rawConfig, `${name}: config ${entry.Config}`);
  if (config.rootfs.diff_ids.length !== entry.Layers.length) {
    throw new EnclavifyError('BAD_ARCHIVE', `${name}: ${entry.Layers.length} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`);
  }
  const layers: Layer[] = [];
  for (const [i, file] of entry.Layers.entries()) {
    const m = tar.need(file);
    const c = sniffCompression(await tar.head(file, 4));
    const diffId = config.rootfs.diff_ids[i];
    const lname = `layer ${i} (${file}) of ${name}`;
    // An uncompressed layer's digest is its diff_id. A compressed one's is the digest its member is
    // named by (`blobs/sha256/<hex>`, `<hex>.tar`) when that is not the diff_id; otherwise it is
    // computed once, and the same pass checks that the layer decompresses to its diff_id, so a
    // corrupt blob can never get a digest that vouches for it.
    const named = digestInName(file);
    const digest = c === 'none'
      ? diffId
      : named && `sha256:${named}` !== diffId
        ? `sha256:${named}`
        : async () => {
            const h = new HashingStream();
            try {
              await pipe(tar.stream(file), h, decompressor(c), new VerifyingStream({ digest: diffId }, `${lname} (uncompressed)`), new Writable({ write: (_c, _e, cb) => cb() }), withSignal(signal));
            } catch (e) {
              if (e instanceof EnclavifyError || signal?.aborted) throw e;
              throw new EnclavifyError('BAD_LAYER', `${lname}: cannot decompress (${(e as Error).message}): the blob is corrupt`);
            }
            return h.digest!;
          };
    layers.push(new BlobLayer(dockerLayerType(c), c, lname, async () => abortable(tar.stream(file), signal), { digest, size: m.size, diffId }));
  }
  const manifest = lazy(async (): Promise<Manifest> => ({
    schemaVersion: 2,
    mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, digest: sha256Digest(rawConfig), size: rawConfig.length },
    layers: await Promise.all(layers.map(async (l) => ({ mediaType: l.mediaType, digest: await l.digest(), size: await l.size() }))),
  }));
  const rawManifest = lazy(async () => encodeJson(await manifest()));
  return {
    name,
    mediaType: async () => MT.dockerManifest,
    manifest,
    rawManifest,
    digest: async () => sha256Digest(await rawManifest()),
    config: async () => config,
    rawConfig: async () => rawConfig,
    layers: async () => layers,
  };
}

/** The 64-hex digest a member is named by (`<hex>.tar`, `<hex>.json`, `blobs/sha256/<hex>`), if any. */
function digestInName(member: string): string | undefined {
  return /(?:^|\/)([a-f0-9]{64})(?:\.tar|\.json)?$/.exec(member)?.[1];
}
