/**
 * The file-system entry model shared by the tar reader, the merged root file system view and the
 * layer writer. Paths are normalised: relative to the image root, no leading `/` or `./`, no `..`
 * and no trailing `/` (the root itself is never an entry).
 */

/** Kinds of entries a layer can hold (tar types 0/7, 5, 2, 1, 3, 4, 6). */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

/** Metadata of one entry, as a tar header (plus PAX records) describes it. */
export interface FsEntry {
  /** Normalised path relative to `/`, e.g. `app/data/secret.txt`. */
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
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return new Error(`path ${JSON.stringify(p)} has a ".." component`);
    parts.push(part);
  }
  return parts.length ? parts.join('/') : undefined;
}
