/**
 * The backend used when none is given: node:crypto, the fast path. Its own module so that the
 * library's code does not load the @noble backend (and its packages) unless a caller asks for it.
 */
import { nodeBackend } from './node.js';
import type { CryptoBackend } from './backend.js';

/** The backend used when none is given: node:crypto, the fast path. */
export const defaultBackend: CryptoBackend = nodeBackend;
