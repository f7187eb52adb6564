/**
 * The image model, after go-containerregistry's v1: small read-only interfaces whose expensive
 * parts (digests, streams) are computed or opened only when asked for.
 */
import type { Readable } from 'node:stream';
import type { Compression } from './media-types.js';
import type { ImageConfig, Manifest } from './types.js';

/** One layer of an image. Streams are verified against the layer's digests as they are read. */
export interface Layer {
  /** Media type as the manifest should list it. */
  readonly mediaType: string;
  readonly compression: Compression;
  /** A name for messages, e.g. `layer 2 (sha256:0123456789ab) of oci:img:latest`. */
  readonly name: string;
  /** Digest of the stored (compressed) blob. */
  digest(): Promise<string>;
  /** Size of the stored blob in bytes. */
  size(): Promise<number>;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId(): Promise<string>;
  /** The stored blob, byte for byte. */
  compressed(): Promise<Readable>;
  /** The uncompressed tar. */
  uncompressed(): Promise<Readable>;
  /** Annotations to put on the layer's descriptor. */
  readonly annotations?: Record<string, string> | undefined;
}

/** An image: a manifest, its config and its layers. */
export interface Image {
  /** A name for messages, e.g. `oci:/data/img:latest`. */
  readonly name: string;
  /** The manifest's media type. */
  mediaType(): Promise<string>;
  manifest(): Promise<Manifest>;
  /** The exact manifest bytes (what the digest is of). */
  rawManifest(): Promise<Uint8Array>;
  /** Digest of the manifest bytes. */
  digest(): Promise<string>;
  config(): Promise<ImageConfig>;
  /** The exact config bytes. */
  rawConfig(): Promise<Uint8Array>;
  layers(): Promise<Layer[]>;
}

/** Memoise an async computation (lazy digests). */
export function lazy<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** The image with other layer objects (same manifest, config and digest): for wrappers that tap or scope layers. */
export function withLayerObjects(image: Image, layers: () => Promise<Layer[]>): Image {
  return {
    name: image.name,
    mediaType: () => image.mediaType(),
    manifest: () => image.manifest(),
    rawManifest: () => image.rawManifest(),
    digest: () => image.digest(),
    config: () => image.config(),
    rawConfig: () => image.rawConfig(),
    layers,
  };
}
