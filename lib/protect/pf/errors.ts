/**
 * Errors of the encrypted-files reader and writer. Each names the file's path and what is wrong,
 * with a stable code a verifier can report; keys never appear in messages.
 */
import { EnclavifyError, type ErrorCode } from '../../oci/errors.js';

/**
 * - `PF_FORMAT`: not an encrypted file, unsupported version or flags, malformed metadata.
 * - `PF_BAD_MAC`: a GCM tag did not verify (metadata: wrong key or tampering; node: tampering).
 * - `PF_PATH_MISMATCH`: the path stored in the file is not the expected one (file swapped/renamed).
 * - `PF_TRUNCATED`: the file ends before the nodes its stored size requires.
 * - `PF_OVERLONG`: the file has bytes beyond the nodes its stored size requires.
 * - `PF_INPUT`: the writer's input is invalid (path too long, content size differs from `size`).
 */
export type PfErrorCode = Extract<ErrorCode, `PF_${string}`>;

/** Where in the file an error was found. */
export interface PfErrorLocation {
  /** `metadata`, `mht` or `data`. */
  kind: 'metadata' | 'mht' | 'data';
  /** Logical MHT or data node number (0 for metadata). */
  index: number;
  /** Physical node number (position on disk / 4096). */
  physical: number;
}

/** An error reading or writing a Gramine encrypted file. */
export class PfError extends EnclavifyError {
  declare readonly code: PfErrorCode;
  constructor(
    code: PfErrorCode,
    /** The path the caller expects the file to have (the path the error is about). */
    readonly path: string,
    message: string,
    readonly location?: PfErrorLocation,
    options?: { cause?: unknown },
  ) {
    super(code, `encrypted file ${path}: ${message}`, options);
    this.name = 'PfError';
  }
}
