/**
 * Writing without following symlinks. Inside a destination (an OCI layout, `--output-dir`, the
 * directory of `--keys-out`) nothing enclavify creates or replaces may be reached through a
 * symlink: a layout whose `blobs/sha256` links elsewhere would otherwise receive writes outside
 * itself. The directory the caller names may itself be reached through symlinks (the caller chose
 * it); every component below it is checked with lstat, created without following, and files are
 * created with O_EXCL|O_NOFOLLOW (temporary names) and renamed into place (rename replaces a link,
 * never writes through it).
 *
 * Node has no openat(), so a component swapped for a symlink between the check and the use by
 * someone who can write into the destination is not caught; such a writer can replace the image
 * anyway. docs/security.md lists this limit.
 */
import { constants } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { asEnclavifyError, EnclavifyError } from '../oci/errors.js';

/** Flags for creating a temporary file: new, never through a symlink. */
export const CREATE_NOFOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

const refused = (p: string, what: string, kind: string) =>
  new EnclavifyError('WRITE_THROUGH_SYMLINK', `${what}: ${p} is a ${kind}; enclavify does not write through symlinks (replace it with a real directory or file)`);

/** Throws `WRITE_THROUGH_SYMLINK` when `p` exists and is a symlink. */
export async function refuseSymlink(p: string, what: string): Promise<void> {
  const st = await lstat(p).catch(() => undefined);
  if (st?.isSymbolicLink()) throw refused(p, what, 'symlink');
}

/**
 * Makes `root/rel` a directory, creating missing components below `root` one by one and refusing
 * any component that is a symlink (or not a directory). `root` itself is created (recursively,
 * its parents may be links) when missing. Resolves to the first directory created, if any.
 */
export async function mkdirNoFollow(root: string, rel: string, what: string): Promise<string | undefined> {
  let first: string | undefined;
  try {
    first = await mkdir(root, { recursive: true });
  } catch (e) {
    throw asEnclavifyError(e, `${what}: creating ${root}`, 'WRITE_FAILED');
  }
  let cur = root;
  for (const part of rel.split(/[\\/]+/).filter((x) => x && x !== '.')) {
    if (part === '..') throw new EnclavifyError('BAD_PATH', `${what}: ${rel} leaves ${root}`);
    cur = path.join(cur, part);
    let st = await lstat(cur).catch(() => undefined);
    if (!st) {
      try {
        await mkdir(cur);
        first ??= cur;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw asEnclavifyError(e, `${what}: creating ${cur}`, 'WRITE_FAILED');
      }
      st = await lstat(cur);
    }
    if (st.isSymbolicLink()) throw refused(cur, what, 'symlink');
    if (!st.isDirectory()) throw new EnclavifyError('NOT_A_DIRECTORY', `${what}: ${cur} is not a directory`);
  }
  return first;
}
