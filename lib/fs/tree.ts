/**
 * A merged root file system as text, one line per path, in the format of the fixtures' expected
 * trees (what `umoci unpack` materialises): used to compare our view with real tools.
 *
 * `PATH file MODE UID:GID SIZE SHA256 nlink=N`, `PATH dir MODE UID:GID`,
 * `PATH symlink UID:GID -> TARGET`, `PATH chardev|blockdev MODE UID:GID MAJOR,MINOR`,
 * `PATH fifo MODE UID:GID`; modes in octal without the file type, paths sorted bytewise.
 */
import type { MergedEntry } from './merged.js';

/** One line of the tree for an entry (hard links resolved: they print as the file they share). */
export function formatTreeLine(e: MergedEntry): string {
  const mode = (e.mode & 0o7777).toString(8);
  const owner = `${e.uid}:${e.gid}`;
  switch (e.type) {
    case 'file':
      return `${e.path} file ${mode} ${owner} ${e.size} ${e.sha256 ?? '-'} nlink=${e.nlink}`;
    case 'dir':
      return `${e.path} dir ${mode} ${owner}`;
    case 'symlink':
      return `${e.path} symlink ${owner} -> ${e.linkname}`;
    case 'chardev':
    case 'blockdev':
      return `${e.path} ${e.type} ${mode} ${owner} ${e.devmajor ?? 0},${e.devminor ?? 0}`;
    case 'fifo':
      return `${e.path} fifo ${mode} ${owner}`;
    case 'hardlink':
      // The merged view resolves hard links; an unresolved one can only come from elsewhere.
      return `${e.path} hardlink ${owner} => ${e.linkname}`;
  }
}

/** The whole tree (root excluded), one line per entry sorted bytewise, each ending in a newline. */
export function formatTree(rootfs: { entries(): Iterable<MergedEntry> }): string {
  let out = '';
  for (const e of rootfs.entries()) out += formatTreeLine(e) + '\n';
  return out;
}
