/**
 * Cancellation: long operations take `signal?: AbortSignal`. Streams opened under a signal are
 * destroyed when it fires; the operation then rejects with `EnclavifyError('ABORTED')` after
 * removing its temporaries.
 */
import { addAbortSignal, type Readable } from 'node:stream';
import { EnclavifyError } from './errors.js';

/** Throws `ABORTED` (naming `what`) when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new EnclavifyError('ABORTED', `${what}: cancelled`, { cause: signal.reason });
}

/** `stream`, destroyed with an AbortError when `signal` fires (itself when there is no signal). */
export function abortable<T extends Readable>(stream: T, signal: AbortSignal | undefined): T {
  return signal ? addAbortSignal(signal, stream) : stream;
}

/** `{ signal }` for `stream/promises` pipeline when there is one (`{}` otherwise). */
export function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
