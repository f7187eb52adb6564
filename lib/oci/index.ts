/**
 * `enclavify/oci`: the image model and its building blocks, after go-containerregistry's `v1`,
 * `mutate`, `layout` and `tarball` packages. An {@link Image} is a manifest, a config and lazy
 * {@link Layer}s; stored layers ({@link BlobLayer}) verify their digests while they stream, new
 * layers ({@link buildLayer} → {@link FileLayer}) get diff_id, digest and size in one pass, and
 * {@link assembleImage} makes an OCI image of a config and layers. Layouts and archives are read
 * and written through `enclavify/store` (re-exported here: {@link readOciLayout},
 * {@link writeOciLayout}); the tar reader and writer are in `enclavify/fs`.
 *
 * ```ts
 * import { assembleImage, buildLayer, sha256Digest } from 'enclavify/oci';
 * import { tarStream } from 'enclavify/fs';
 * ```
 * @packageDocumentation
 * @module enclavify/oci
 */
// Errors, progress, cancellation (as in the root entry point)
export { EnclavifyError, ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './errors.js';
export type { ProgressEvent, ProgressListener, ProgressPhase } from './progress.js';
// The model
export type { Image, Layer } from './image.js';
export { withLayerObjects } from './image.js';
export type { Descriptor, Manifest, Index, ImageConfig, ContainerConfig, HistoryEntry, Platform } from './types.js';
export { MT, layerCompression, ociLayerType, dockerLayerType, isIndexType, isManifestType, isConfigType, type Compression } from './media-types.js';
// Digests and verified streams
export { sha256Digest, parseDigest, verifyBytes, HashingStream, VerifyingStream } from './digest.js';
// Compression
export { checkCompression, compressor, decompressor, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, sniffCompression, type CompressionOptions } from './compression.js';
// Layers and images
export { BlobLayer, FileLayer, buildLayer, type BlobOpener, type BuildLayerOptions, type LayerScope } from './layer.js';
export { assembleImage, type AssembleImageOptions } from './assemble.js';
export { toOciImage } from './convert.js';
// Staged layers (one decompression per layer and pipeline)
export { LayerStage, type LayerStageOptions } from './stage.js';
// JSON documents (bounded, checked parsing)
export { parseIndex, parseManifest, parseConfig, encodeJson } from './json.js';
// Layouts and archives (the same functions as enclavify/store)
export { readOciLayout, writeOciLayout, hostPlatform, parsePlatform, type LayoutReadOptions, type WriteLayoutOptions, type WriteResult } from '../store/oci-layout.js';
export { readDockerArchive, type ReadDockerArchiveOptions } from '../store/docker-archive.js';
export { writeDockerArchive } from '../store/docker-archive-write.js';
export type { OciRef, DockerArchiveRef } from '../store/ref.js';
