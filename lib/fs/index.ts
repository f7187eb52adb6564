/** The file-system layer: tar reading and writing, the merged root file system of an image. */
export * from './entry.js';
export * from './tar-read.js';
export * from './tar-write.js';
export * from './lookup.js';
export * from './merged.js';
export * from './tree.js';
