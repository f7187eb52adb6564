/**
 * Crypto backends: one interface ({@link CryptoBackend}), two implementations (node:crypto and
 * @noble), and the SP 800-108 KDF used by Gramine's encrypted files.
 */
export type { CryptoBackend, GcmSealed, Sha256Hash } from './backend.js';
export { GcmAuthError } from './backend.js';
export { nodeBackend } from './node.js';
export { nobleBackend } from './noble.js';
export { deriveMetadataKey, sp800108CounterCmac, METADATA_KEY_LABEL } from './sp800-108.js';
export { defaultBackend } from './default.js';
