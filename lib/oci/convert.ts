/** Converting Docker schema2 images to OCI media types (what an OCI layout should hold). */
import { sha256Digest } from './digest.js';
import { lazy, type Image, type Layer } from './image.js';
import { encodeJson } from './json.js';
import { ociLayerType, MT } from './media-types.js';
import type { Manifest } from './types.js';

/** A layer with another media type, same bytes. */
function retype(l: Layer, mediaType: string): Layer {
  return {
    mediaType,
    compression: l.compression,
    name: l.name,
    annotations: l.annotations,
    digest: () => l.digest(),
    size: () => l.size(),
    diffId: () => l.diffId(),
    compressed: () => l.compressed(),
    uncompressed: () => l.uncompressed(),
  };
}

/**
 * The image with OCI media types. An OCI image is returned as is (its manifest bytes, hence its
 * digest, are kept); a Docker schema2 image gets a new OCI manifest over the same config and layer
 * bytes, as `skopeo copy` does.
 */
export async function toOciImage(image: Image): Promise<Image> {
  const mt = await image.mediaType();
  if (mt !== MT.dockerManifest) return image;
  const layers = (await image.layers()).map((l) => retype(l, ociLayerType(l.compression)));
  const manifest = lazy(async (): Promise<Manifest> => {
    const src = await image.manifest();
    return {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: src.config.digest, size: src.config.size },
      layers: await Promise.all(layers.map(async (l) => ({ mediaType: l.mediaType, digest: await l.digest(), size: await l.size() }))),
    };
  });
  const raw = lazy(async () => encodeJson(await manifest()));
  return {
    name: image.name,
    mediaType: async () => MT.ociManifest,
    manifest,
    rawManifest: raw,
    digest: async () => sha256Digest(await raw()),
    config: () => image.config(),
    rawConfig: () => image.rawConfig(),
    layers: async () => layers,
  };
}
