/**
 * Writes small OCI image layouts byte by byte for hostile-input tests and the fuzzer: any layer
 * bytes, any config or manifest text, digests honest or made up, blobs as files or symlinks.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';

export const sha256 = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export type LayerCompression = 'none' | 'gzip' | 'zstd';

export function compressLayer(tar: Buffer, c: LayerCompression): Buffer {
  return c === 'gzip' ? gzipSync(tar) : c === 'zstd' ? Buffer.from(zstdCompress(tar)) : tar;
}

export const layerMediaType = (c: LayerCompression): string =>
  `application/vnd.oci.image.layer.v1.tar${c === 'none' ? '' : c === 'gzip' ? '+gzip' : '+zstd'}`;

/** One layer: its uncompressed tar, or stored bytes given as they are (with the diff_id to claim). */
export interface LayerSpec {
  tar?: Buffer;
  compression?: LayerCompression;
  /** Stored blob bytes; default: `tar` compressed. */
  blob?: Buffer;
  /** The diff_id the config claims; default: the digest of `tar`. */
  diffId?: string;
  /** The digest the manifest claims; default: the blob's real digest. */
  digest?: string;
  /** The size the manifest claims; default: the blob's length. */
  size?: number;
  /** Store the blob as a symlink to this file instead of writing it. */
  symlinkTo?: string;
}

export interface LayoutSpec {
  layers: LayerSpec[];
  /** Config text; default: a minimal valid config for the layers. */
  config?: Buffer | string;
  configDigest?: string;
  configSymlinkTo?: string;
  /** Manifest text; default: built from the layers and config. */
  manifest?: Buffer | string;
  /** index.json text; default: one descriptor tagged `latest`. */
  index?: Buffer | string;
  /** oci-layout text. */
  ociLayout?: string;
}

export interface BuiltLayout {
  dir: string;
  ref: string;
  layerDigests: string[];
  configDigest: string;
  manifestDigest: string;
}

/** Writes the layout into `dir` (created) and returns its `oci:DIR:latest` reference. */
export function writeLayout(dir: string, spec: LayoutSpec): BuiltLayout {
  const blobs = path.join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (digest: string, bytes: Buffer | undefined, link?: string) => {
    const file = path.join(blobs, digest.slice('sha256:'.length));
    if (link) symlinkSync(link, file);
    else writeFileSync(file, bytes!);
  };
  const layerDescs = spec.layers.map((l) => {
    const c = l.compression ?? 'gzip';
    const tar = l.tar ?? Buffer.alloc(1024);
    const blob = l.blob ?? compressLayer(tar, c);
    const digest = l.digest ?? sha256(blob);
    put(digest, blob, l.symlinkTo);
    return { desc: { mediaType: layerMediaType(c), digest, size: l.size ?? blob.length }, diffId: l.diffId ?? sha256(tar) };
  });
  const config = Buffer.from(spec.config ?? JSON.stringify({
    architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.diffId) },
  }));
  const configDigest = spec.configDigest ?? sha256(config);
  put(configDigest, config, spec.configSymlinkTo);
  const manifest = Buffer.from(spec.manifest ?? JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layerDescs.map((l) => l.desc),
  }));
  const manifestDigest = sha256(manifest);
  put(manifestDigest, manifest);
  writeFileSync(path.join(dir, 'index.json'), spec.index ?? JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  writeFileSync(path.join(dir, 'oci-layout'), spec.ociLayout ?? '{"imageLayoutVersion":"1.0.0"}');
  return { dir, ref: `oci:${dir}:latest`, layerDigests: layerDescs.map((l) => l.desc.digest), configDigest, manifestDigest };
}
