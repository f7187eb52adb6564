/**
 * `enclavify/store`: opening, writing and copying images by reference, whatever the transport
 * (`oci:` layouts, `docker-archive:` files, `docker://` registries), and the layout and archive
 * readers and writers themselves. {@link openImage}, {@link writeImage} and {@link copyImage} are
 * also in the root entry point.
 * @packageDocumentation
 * @module enclavify/store
 */
export { openImage, writeImage, copyImage, type OpenOptions, type WriteOptions, type WriteImageResult, type CopyOptions } from './images.js';
export { parseRef, formatRef, ACCEPTED_FORMS, type ImageRef, type OciRef, type DockerArchiveRef, type RegistryRef } from './ref.js';
export { readOciLayout, writeOciLayout, hostPlatform, parsePlatform, type LayoutReadOptions, type WriteLayoutOptions, type WriteResult } from './oci-layout.js';
export { readDockerArchive, type ReadDockerArchiveOptions } from './docker-archive.js';
export { writeDockerArchive } from './docker-archive-write.js';
export { ScanCache, defaultCacheDir, DEFAULT_CACHE_MAX_BYTES, CACHED_FILE_MAX_BYTES, SCAN_CACHE_FORMAT, type ScanCacheOptions, type ScanCacheStats, type LayerKey } from './scan-cache.js';

