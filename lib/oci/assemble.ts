/** An OCI image from a config and layers: the config blob, the manifest, their digests. */
import { sha256Digest } from './digest.js';
import type { Image, Layer } from './image.js';
import { encodeJson } from './json.js';
import { MT, ociLayerType } from './media-types.js';
import type { ImageConfig, Manifest } from './types.js';

/** What {@link assembleImage} makes an image of. */
export interface AssembleImageOptions {
  /** A name for messages. */
  name: string;
  /** The config (its `rootfs.diff_ids` are replaced by the layers'). */
  config: ImageConfig;
  /** The layers, base first. */
  layers: readonly Layer[];
  /** Manifest annotations. */
  annotations?: Record<string, string> | undefined;
}

/**
 * Assembles an image with OCI media types. `config.rootfs.diff_ids` is set from the layers; Docker
 * layer media types become their OCI twins (same bytes).
 */
export async function assembleImage(opts: AssembleImageOptions): Promise<Image> {
  const layers = [...opts.layers];
  const config: ImageConfig = { ...opts.config, rootfs: { type: 'layers', diff_ids: await Promise.all(layers.map((l) => l.diffId())) } };
  const rawConfig = encodeJson(config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: sha256Digest(rawConfig), size: rawConfig.length },
    layers: await Promise.all(layers.map(async (l) => ({
      mediaType: l.mediaType.startsWith('application/vnd.docker.') ? ociLayerType(l.compression) : l.mediaType,
      digest: await l.digest(),
      size: await l.size(),
      ...(l.annotations ? { annotations: l.annotations } : {}),
    }))),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const rawManifest = encodeJson(manifest);
  const digest = sha256Digest(rawManifest);
  return {
    name: opts.name,
    mediaType: async () => MT.ociManifest,
    manifest: async () => manifest,
    rawManifest: async () => rawManifest,
    digest: async () => digest,
    config: async () => config,
    rawConfig: async () => rawConfig,
    layers: async () => [...layers],
  };
}
