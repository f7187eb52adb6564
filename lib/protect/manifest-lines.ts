/**
 * The record lists of manifest bytes as {@link manifestPieces} writes them (one record per line,
 * each list opened by a `"files":[` line and closed by a line starting with `]`), read back one
 * record at a time on each iteration. encryptFS holds its manifest this way between transforms:
 * the bytes it already spooled, not the view they were made from nor a million record objects.
 * Only for bytes this package wrote (no amendments); parseManifest is the reader for anything else.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { EnclavifyError } from '../oci/errors.js';
import type { EntryRecord, FileRecord, ManifestSource, SymlinkRecord } from './manifest.js';

/** Bytes to read from: a buffer, or a file (checked against its SHA-256 before the first read). */
export type ManifestBytes = { buffer: Buffer } | { file: string; sha256: string };

const CHUNK = 1 << 20;

/** Each line of the bytes (without its `\n`), as a string. */
function* lines(src: ManifestBytes): Generator<string> {
  if ('buffer' in src) {
    const b = src.buffer;
    for (let at = 0; at < b.length; ) {
      let nl = b.indexOf(0x0a, at);
      if (nl < 0) nl = b.length;
      yield b.toString('utf8', at, nl);
      at = nl + 1;
    }
    return;
  }
  const fd = openSync(src.file, 'r');
  try {
    let carry: Buffer = Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, CHUNK, pos);
      if (n === 0) break;
      pos += n;
      const chunk = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let at = 0;
      for (let nl = chunk.indexOf(0x0a, at); nl >= 0; nl = chunk.indexOf(0x0a, at)) {
        yield chunk.toString('utf8', at, nl);
        at = nl + 1;
      }
      // A copy: buf is reused by the next read.
      carry = Buffer.from(chunk.subarray(at));
    }
    if (carry.length) yield carry.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The records of list `name`, in order. */
function* records<T>(src: ManifestBytes, name: 'files' | 'symlinks' | 'entries', what: string): Generator<T> {
  const open = `"${name}":[`;
  let inside = false;
  for (const line of lines(src)) {
    if (!inside) {
      // Records start with `{` and list ends with `]`: a line starting with `"` is a list's start.
      if (line.charCodeAt(0) !== 0x22 || !line.startsWith(open)) continue;
      if (line.length > open.length) return; // `"files":[],`: an empty list
      inside = true;
      continue;
    }
    if (line.charCodeAt(0) === 0x5d) return; // `]`
    try {
      yield JSON.parse(line.endsWith(',') ? line.slice(0, -1) : line) as T;
    } catch {
      throw new EnclavifyError('ENCRYPT_INTERNAL', `${what}: a record of "${name}" is not JSON (the held manifest was changed)`);
    }
  }
  if (inside) throw new EnclavifyError('ENCRYPT_INTERNAL', `${what}: the list "${name}" does not end (the held manifest was changed)`);
}

/** `head` with its record lists read from `src` on each iteration (re-iterable, each list independently). */
export function manifestFromLines(head: Omit<ManifestSource, 'files' | 'symlinks' | 'entries'>, src: ManifestBytes, what: string): ManifestSource {
  let checked = 'buffer' in src;
  const check = () => {
    if (checked || 'buffer' in src) return;
    // The file sits in the pipeline's private temporary directory; still, what is read back is
    // what was hashed into the image, or nothing.
    const h = createHash('sha256');
    const fd = openSync(src.file, 'r');
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let n; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    checked = true;
    if (h.digest('hex') !== src.sha256) throw new EnclavifyError('ENCRYPT_INTERNAL', `${what}: the held manifest (${src.file}) changed since it was written into the image`);
  };
  const list = <T>(name: 'files' | 'symlinks' | 'entries'): Iterable<T> => ({
    [Symbol.iterator]: () => {
      check();
      return records<T>(src, name, what);
    },
  });
  return { ...head, files: list<FileRecord>('files'), symlinks: list<SymlinkRecord>('symlinks'), entries: list<EntryRecord>('entries') };
}
