/**
 * `enclavify/fs`: files inside images. {@link readFile} reads one file, opening only the layers
 * that decide it (top down); {@link rootfs} builds the merged root file system ({@link RootFs}:
 * whiteouts, hard links, symlinks resolved inside the root, as `umoci unpack` materialises it);
 * {@link entries} iterates a layer's tar or an image's merged view. The tar reader
 * ({@link readTar}) and writer ({@link tarStream}) are the ones layers are read and built with.
 *
 * ```ts
 * import { openImage } from 'enclavify';
 * import { readFile } from 'enclavify/fs';
 * const osRelease = await readFile(await openImage('oci:./layout:app'), '/etc/os-release');
 * ```
 * @packageDocumentation
 * @module enclavify/fs
 */
export { readFile, readFileEntry, rootfs, entries, type ReadFileOptions, type ReadFileResult, type RootFsOptions, type EntriesOptions, type LayerItem } from './read-file.js';
export { RootFs, scanLayer, classifyWhiteout, type LayerSource, type LayerEntry, type LayerIndex, type MergedEntry, type ContentRef, type Whiteout, type OnFile, type ScanOptions, type StreamFilesOptions, type EntryBudget } from './merged.js';
export { type FsEntry, type EntryType, ROOT, normalizePath, compareBytewise } from './entry.js';
export { readTar, type TarItem, type ReadTarOptions } from './tar-read.js';
export { tarStream, type TarWriteItem } from './tar-write.js';
export { resolvePath, lexicalPath, memoryLookup, MAX_SYMLINKS, SymlinkLoopError, type FileLookup, type DirectoryLookup, type ResolvePathOptions, type ResolvedPath, type MemoryEntry } from './lookup.js';
export { imageFromDirectory, type ImageFromDirectoryOptions, type DirectoryImage } from './from-directory.js';
export { layersRootFs, layerSources, type LayersRootFsOptions } from '../oci/rootfs.js';
