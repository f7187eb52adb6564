/**
 * Hex helpers for measurements and keys that go into policies. Errors name the field and the
 * expected size, never the value: some of these are keys.
 */
import { EnclavifyError } from '../oci/errors.js';

/**
 * Returns `value` as lower-case hex of exactly `bytes` bytes. Accepts a hex string (either case)
 * or raw bytes. Throws `<what>: expected <bytes> bytes ...` otherwise.
 */
export function toHex(value: string | Uint8Array, bytes: number, what: string): string {
  if (value instanceof Uint8Array) {
    if (value.length !== bytes) throw new EnclavifyError('BAD_POLICY', `${what}: expected ${bytes} bytes, got ${value.length}`);
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  }
  if (typeof value !== 'string' || value.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(value)) {
    throw new EnclavifyError('BAD_POLICY', `${what}: expected ${bytes} bytes as ${bytes * 2} hex digits`);
  }
  return value.toLowerCase();
}
