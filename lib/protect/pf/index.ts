/**
 * Gramine encrypted files ("protected files", format 2.0): streaming writer, streaming
 * reader/verifier, layout helpers and errors. See docs/encrypted-files.md.
 */
export { encryptProtectedFile, DEFAULT_MEMORY_THRESHOLD } from './writer.js';
export type { EncryptProtectedFileOptions, ProtectedFile } from './writer.js';
export { decryptProtectedFile, decryptProtectedFileBytes, verifyProtectedFile } from './reader.js';
export type { ProtectedFileInfo, ReadProtectedFileOptions, VerifiedProtectedFile } from './reader.js';
export { PfError } from './errors.js';
export type { PfErrorCode, PfErrorLocation } from './errors.js';
export { NODE_SIZE, METADATA_DATA_SIZE, pfLayout, protectedFileSize } from './format.js';
export type { PfLayout } from './format.js';
