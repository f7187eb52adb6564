/** The layers a manifest lists, lined up with the config's diff_ids: shared by every image reader. */
import { clip, EnclavifyError, shortDigest } from './errors.js';
import type { Layer } from './image.js';
import { layerCompression, type Compression } from './media-types.js';
import type { Descriptor, ImageConfig, Manifest } from './types.js';

/** What a reader needs to make one layer. */
export interface LayerSpec {
  desc: Descriptor;
  index: number;
  /** `layer 2 (sha256:0123456789ab) of IMAGE`, for messages. */
  name: string;
  compression: Compression;
  diffId: string;
}

const ENCRYPTED = '+encrypted';

/**
 * An ocicrypt-encrypted layer as stored: its blob can be copied as it is (it stays encrypted),
 * but its contents cannot be read without a key (lib/ocicrypt's `decryptingImage` opens it).
 * Everything else of the layer (including a registry layer's `stored()`) is the reader's own.
 */
function sealed(layer: Layer): Layer {
  return Object.create(layer, {
    uncompressed: {
      value: async () => {
        throw new EnclavifyError('ENCRYPTED_LAYER', `${layer.name} is encrypted (ocicrypt, ${layer.mediaType}); give --decryption-key to read it, or copy it as it is with --no-validate`);
      },
    },
  }) as Layer;
}

/**
 * Checks that the manifest's layers and the config's diff_ids line up and that every layer media
 * type is readable, then makes each layer with `make`.
 */
export function manifestLayers(image: string, manifest: Manifest, config: ImageConfig, make: (s: LayerSpec) => Layer): Layer[] {
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new EnclavifyError('BAD_CONFIG', `${image}: the manifest has ${manifest.layers.length} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`);
  }
  return manifest.layers.map((desc, index) => {
    const name = `layer ${index} (${shortDigest(desc.digest)}) of ${image}`;
    const encrypted = desc.mediaType.endsWith(ENCRYPTED);
    const compression = layerCompression(encrypted ? desc.mediaType.slice(0, -ENCRYPTED.length) : desc.mediaType);
    if (compression === undefined) throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${name}: unsupported layer media type ${clip(String(desc.mediaType))}`);
    const layer = make({ desc, index, name, compression, diffId: config.rootfs.diff_ids[index] });
    return encrypted ? sealed(layer) : layer;
  });
}
