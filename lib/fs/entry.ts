/**
 * The file-system entry model shared by the tar reader, the merged root file system view and the
 * layer writer, plus the path helpers they agree on. Paths are normalised: relative to the image
 * root, no leading `/` or `./`, no `..` and no trailing `/`. The root directory itself is `.`
 * (a layer may carry an entry for it, e.g. `./`, that sets its mode and owner).
 */
import { EnclavifyError } from '../oci/errors.js';

/** Kinds of entries a layer can hold (tar types 0/7, 5, 2, 1, 3, 4, 6). */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

/** The normalised path of the root directory. */
export const ROOT = '.';

/** Metadata of one entry, as a tar header (plus PAX records) describes it. */
export interface FsEntry {
  /** Normalised path relative to `/`, e.g. `app/data/secret.txt`; `.` for the root directory. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid (04000), setgid (02000) and sticky (01000); no file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Modification time in seconds since the epoch (may be fractional when PAX says so). */
  mtime: number;
  /** Content size in bytes for regular files; 0 otherwise. */
  size: number;
  /** Symlink target (verbatim) or, for hard links, the normalised path of the link target. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /**
   * PAX extended records other than the ones folded into the fields above (path, linkpath, size,
   * uid, gid, uname, gname, mtime), e.g. `SCHILY.xattr.security.capability` or `atime`. Values are
   * kept as raw bytes since xattr values are binary.
   */
  pax?: Record<string, Buffer>;
}

/** Normalise a path from a tar header or a user: strips leading `/` and `./`, collapses `//` and
 *  `.` components, and rejects `..` components (returns undefined for the root itself). */
export function normalizePath(p: string): string | undefined | Error {
  if (isNormalised(p)) return p; // most paths are: no split, no join
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return new EnclavifyError('FS_BAD_PATH', `path ${JSON.stringify(p)} has a ".." component`);
    parts.push(part);
  }
  return parts.length ? parts.join('/') : undefined;
}

/** Whether `p` is already normalised: non-empty components separated by single `/`, none `.` or `..`. */
function isNormalised(p: string): boolean {
  const n = p.length;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && p.charCodeAt(i) !== 0x2f) continue;
    const len = i - start;
    if (len === 0) return false;
    if (p.charCodeAt(start) === 0x2e && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === 0x2e))) return false;
    start = i + 1;
  }
  return true;
}

/**
 * A path as messages show it: at most about 100 characters, the first 60 and the last 40 of a
 * longer one joined by `…` (a 100 KB name must not make a 100 KB message).
 */
export function shortenPath(p: string | undefined, head = 60, tail = 40): string {
  if (p === undefined) return '';
  return p.length <= head + tail + 1 ? p : `${p.slice(0, head)}…${p.slice(-tail)}`;
}

/** The parent directory of a normalised path (`.` for top-level names and for the root). */
export function parentPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? ROOT : p.slice(0, i);
}

/** The last component of a normalised path. */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** The proper ancestors of a normalised path, outermost first, without the root: `a/b/c` -> `a`, `a/b`. */
export function ancestors(p: string): string[] {
  const out: string[] = [];
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) out.push(p.slice(0, i));
  return out;
}

// UTF-16 code unit -> a key whose order is the code point (and so the UTF-8 byte) order:
// surrogates (U+D800-DFFF, i.e. code points above U+FFFF) sort after U+E000-FFFF.
function unitKey(c: number): number {
  return c >= 0xd800 ? (c <= 0xdfff ? c + 0x2000 : c - 0x800) : c;
}

/** Compares two strings in the bytewise order of their UTF-8 encodings (as `LC_ALL=C sort`). */
export function compareBytewise(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x !== y) return unitKey(x) - unitKey(y);
  }
  return a.length - b.length;
}
