/**
 * Crypto backends: one interface ({@link CryptoBackend}), two implementations (node:crypto and
 * @noble), and the SP 800-108 KDF used by Gramine's encrypted files.
 */
import { nodeBackend } from './node.js';
import type { CryptoBackend } from './backend.js';

export type { CryptoBackend, GcmSealed, Sha256Hash } from './backend.js';
export { GcmAuthError } from './backend.js';
export { nodeBackend } from './node.js';
export { nobleBackend } from './noble.js';
export { deriveMetadataKey, sp800108CounterCmac, METADATA_KEY_LABEL } from './sp800-108.js';

/** The backend used when none is given: node:crypto, the fast path. */
export const defaultBackend: CryptoBackend = nodeBackend;
