/**
 * The one error type of the library: a message that names the image, blob or file and what is
 * wrong, plus a stable `code` that programs (and the CLI's exit codes) can switch on.
 */
export class EnclavifyError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EnclavifyError';
  }
}

/** Short form of a digest for messages: `sha256:0123456789ab`. */
export function shortDigest(d: string): string {
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 12) : d.slice(0, i + 13);
}
