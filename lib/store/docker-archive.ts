/** Reading `docker save` archives (classic `<id>/layer.tar` and newer `blobs/sha256/…` forms). */
import { createHash } from 'node:crypto';
import { EnclavifyError, shortDigest } from '../oci/errors.js';
import { lazy, type Image, type Layer } from '../oci/image.js';
import { encodeJson, parseConfig, parseJson } from '../oci/json.js';
import { BlobLayer } from '../oci/layer.js';
import { dockerLayerType, MT } from '../oci/media-types.js';
import { sniffCompression } from '../oci/compression.js';
import { sha256Digest } from '../oci/digest.js';
import type { Manifest } from '../oci/types.js';
import type { DockerArchiveRef } from './ref.js';
import { formatRef } from './ref.js';
import { TarIndex } from './tar-index.js';

interface ArchiveEntry { Config: string; RepoTags?: string[] | null; Layers: string[] }

/** `docker.io/library/x:t` and `x:t` name the same image. */
export function normalizeName(n: string): string {
  let s = n;
  if (!/^[^/]+[.:][^/]*\//.test(s) && !s.startsWith('localhost/')) s = `docker.io/${s}`;
  if (/^docker\.io\/[^/]+:[^/]+$/.test(s) || /^docker\.io\/[^/:]+$/.test(s)) s = s.replace('docker.io/', 'docker.io/library/');
  return s;
}

/** Opens an image in a `docker save` archive. The layers are read in place, never extracted. */
export async function readDockerArchive(ref: DockerArchiveRef): Promise<Image> {
  const name = formatRef(ref);
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
    if (!entry) throw new EnclavifyError('NOT_FOUND', `${name}: no image named ${ref.name} (images: ${allTags.join(', ') || 'untagged'})`);
  } else {
    if (entries.length > 1) throw new EnclavifyError('AMBIGUOUS', `${name}: the archive holds ${entries.length} images; name one with :NAME:TAG (${allTags.join(', ')})`);
    entry = entries[0];
  }
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) throw new EnclavifyError('BAD_ARCHIVE', `${name}: manifest.json entry lacks Config or Layers`);
  const rawConfig = await tar.read(entry.Config);
  const config = parseConfig(rawConfig, `${name}: config ${entry.Config}`);
  if (config.rootfs.diff_ids.length !== entry.Layers.length) {
    throw new EnclavifyError('BAD_ARCHIVE', `${name}: ${entry.Layers.length} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`);
  }
  const layers: Layer[] = [];
  for (const [i, file] of entry.Layers.entries()) {
    const m = tar.need(file);
    const head = m.size >= 4 ? (await readHead(tar, file)) : Buffer.alloc(0);
    const c = sniffCompression(head);
    const diffId = config.rootfs.diff_ids[i];
    const lname = `layer ${i + 1} (${file}) of ${name}`;
    // An uncompressed layer's digest is its diff_id (checked as it streams); a compressed one's
    // must be computed, lazily, by hashing the member once.
    const digest = c === 'none' ? diffId : async () => {
      const h = createHash('sha256');
      for await (const chunk of tar.stream(file)) h.update(chunk as Buffer);
      return `sha256:${h.digest('hex')}`;
    };
    layers.push(new BlobLayer(dockerLayerType(c), c, lname, async () => tar.stream(file), { digest, size: m.size, diffId }));
  }
  const manifest = lazy(async (): Promise<Manifest> => ({
    schemaVersion: 2,
    mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, digest: sha256Digest(rawConfig), size: rawConfig.length },
    layers: await Promise.all(layers.map(async (l) => ({ mediaType: l.mediaType, digest: await l.digest(), size: await l.size() }))),
  }));
  const rawManifest = lazy(async () => encodeJson(await manifest()));
  void shortDigest;
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

async function readHead(tar: TarIndex, file: string): Promise<Buffer> {
  for await (const chunk of tar.stream(file)) return (chunk as Buffer).subarray(0, 4);
  return Buffer.alloc(0);
}
