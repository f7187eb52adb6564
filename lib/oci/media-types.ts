/** OCI and Docker schema2 media types, and what we can do with each. */

export const MT = {
  ociLayout: 'application/vnd.oci.layout.header.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** How a layer blob is compressed. */
export type Compression = 'none' | 'gzip' | 'zstd';

const layerTypes: Record<string, Compression> = {
  [MT.ociLayer]: 'none',
  [MT.ociLayerGzip]: 'gzip',
  [MT.ociLayerZstd]: 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  [MT.dockerLayer]: 'none',
  [MT.dockerLayerGzip]: 'gzip',
  [MT.dockerLayerZstd]: 'zstd',
  [MT.dockerForeignLayerGzip]: 'gzip',
};

/** The compression of a layer media type, or undefined when it is not a layer type we can read. */
export function layerCompression(mediaType: string): Compression | undefined {
  return layerTypes[mediaType];
}

/** The OCI layer media type for a compression. */
export function ociLayerType(c: Compression): string {
  return c === 'gzip' ? MT.ociLayerGzip : c === 'zstd' ? MT.ociLayerZstd : MT.ociLayer;
}

/** The Docker schema2 layer media type for a compression. */
export function dockerLayerType(c: Compression): string {
  return c === 'gzip' ? MT.dockerLayerGzip : c === 'zstd' ? MT.dockerLayerZstd : MT.dockerLayer;
}

export const isIndexType = (mt: string | undefined): boolean => mt === MT.ociIndex || mt === MT.dockerManifestList;
export const isManifestType = (mt: string | undefined): boolean => mt === MT.ociManifest || mt === MT.dockerManifest;
export const isConfigType = (mt: string | undefined): boolean => mt === MT.ociConfig || mt === MT.dockerConfig;
