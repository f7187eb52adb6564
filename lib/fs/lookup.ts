/**
 * Looking files up inside an image's merged root file system: the {@link FileLookup} interface the
 * merged view implements, symlink resolution with chroot semantics ({@link resolvePath}), and a
 * small in-memory implementation for tests and users ({@link memoryLookup}).
 *
 * Paths given to and returned by these functions are normalised as in `entry.ts` (relative to the
 * image root, no leading `/`); the root itself is `''`. Inputs may also be absolute (`/usr/bin`).
 */
import type { FsEntry } from './entry.js';
import { normalizePath } from './entry.js';
import { EnclavifyError } from '../oci/errors.js';

/** Read access to a merged root file system, by normalised path. */
export interface FileLookup {
  /** The merged-view entry at a normalised path (see normalizePath in entry.ts), not following a final symlink; undefined if absent. */
  lstat(path: string): FsEntry | undefined;
  /** Read the whole content of several regular files (normalised paths) in one pass over the layers. */
  readFiles(paths: string[]): Promise<Map<string, Uint8Array>>;
}

/**
 * Optional directory listing, which a {@link FileLookup} may also offer. Needed to expand globs
 * such as `include /etc/ld.so.conf.d/*.conf`.
 */
export interface DirectoryLookup {
  /** Names (not paths) of the entries directly inside a directory (normalised path, `''` for the root); undefined if it is not a directory. */
  readdir(path: string): string[] | undefined;
}

/** Linux's limit on symlinks followed while resolving one path (MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

/** Raised when resolving a path crosses more than {@link MAX_SYMLINKS} symlinks (a loop, or a very long chain). */
export class SymlinkLoopError extends EnclavifyError {
  constructor(message: string) {
    // The errno name, as the kernel would report it.
    super('ELOOP', message);
    this.name = 'SymlinkLoopError';
  }
}

/** Options for {@link resolvePath}. */
export interface ResolvePathOptions {
  /** Follow a symlink in the last component too (like stat/open); false is like lstat. Default true. */
  followFinal?: boolean;
  /** Directory (normalised) that relative paths start from; default the root. */
  cwd?: string;
  /** Symlink budget; default {@link MAX_SYMLINKS}. */
  maxLinks?: number;
}

/** The outcome of {@link resolvePath}. */
export interface ResolvedPath {
  /** Normalised final path (`''` for the root); for an absent file, where it would be. */
  path: string;
  /** The entry at `path`, or undefined when the file is absent or a component is not a directory. */
  entry?: FsEntry;
  /** Normalised paths of the symlink entries crossed, in order (including intermediate directories such as `lib`). */
  links: string[];
  /**
   * Every path by which the file was reached, lexically normalised: the path as given and the path
   * it became after each symlink was crossed, without the final `path` itself. A program that opens
   * any of these reaches the file.
   */
  aliases: string[];
}

/** A synthetic entry for the root directory, which the entry model never holds. */
const ROOT: FsEntry = { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 };

/** Split a path into its non-empty components (keeping `.` and `..`). */
function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '');
}

/**
 * Lexically normalise `path` against `cwd` (both inside the image): collapses `.`, `..` (which
 * stays at the root, as in a chroot) and repeated slashes, without looking at symlinks. Returns a
 * normalised path (`''` for the root).
 */
export function lexicalPath(path: string, cwd = ''): string {
  const out = path.startsWith('/') ? [] : components(cwd);
  for (const c of components(path)) {
    if (c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out.join('/');
}

/**
 * Resolve `path` inside the image the way the kernel does inside a chroot: absolute symlink
 * targets start at the image root, `..` at the root stays at the root, symlinked intermediate
 * directories (merged-/usr `lib -> usr/lib`) are followed, and more than 40 symlinks raise
 * {@link SymlinkLoopError}. A path component that is absent from the view but has entries below
 * it is treated as an implicit directory. Never throws for a missing file: `entry` is undefined.
 */
export function resolvePath(lookup: FileLookup, path: string, options: ResolvePathOptions = {}): ResolvedPath {
  const maxLinks = options.maxLinks ?? MAX_SYMLINKS;
  const cwd = options.cwd ?? '';
  // A trailing slash asks for a directory and makes the last symlink followed (POSIX).
  const trailingSlash = /\/\.?$/.test(path) && components(path).length > 0;
  const followFinal = (options.followFinal ?? true) || trailingSlash;
  const stack: string[] = path.startsWith('/') ? [] : components(cwd);
  // `rest` holds the components still to walk, reversed so that the next one is at the end.
  let rest = components(path).reverse();
  const links: string[] = [];
  const aliases: string[] = [];
  const addAlias = (): void => {
    const a = lexicalPath([...stack, ...[...rest].reverse()].join('/'));
    if (!aliases.includes(a)) aliases.push(a);
  };
  addAlias();
  let count = 0;
  let last: FsEntry | undefined = ROOT;
  const absent = (at: string[]): ResolvedPath => {
    const where = lexicalPath([...at, ...[...rest].reverse()].join('/'));
    return { path: where, links, aliases: aliases.filter((a) => a !== where) };
  };
  while (rest.length) {
    const c = rest.pop()!;
    if (c === '.') {
      last = undefined;
      continue;
    }
    if (c === '..') {
      stack.pop();
      last = undefined;
      continue;
    }
    const p = [...stack, c].join('/');
    const entry = lookup.lstat(p);
    const isFinal = rest.length === 0;
    if (!entry) {
      if (isFinal) return absent([...stack, c]);
      // Tolerate views that hold `usr/bin/ls` without an explicit `usr` entry.
      stack.push(c);
      last = undefined;
      continue;
    }
    if (entry.type === 'symlink' && (!isFinal || followFinal)) {
      if (++count > maxLinks) {
        throw new SymlinkLoopError(`resolving ${JSON.stringify(path)}: more than ${maxLinks} symlinks (loop at ${JSON.stringify('/' + p)})`);
      }
      links.push(p);
      const target = entry.linkname ?? '';
      // An empty target resolves to nothing (ENOENT), as on Linux.
      if (target === '') return absent([...stack, c]);
      if (target.startsWith('/')) stack.length = 0;
      rest = rest.concat(components(target).reverse());
      addAlias();
      last = undefined;
      continue;
    }
    if (!isFinal && entry.type !== 'dir') return absent([...stack, c]); // ENOTDIR
    stack.push(c);
    last = entry;
  }
  const final = stack.join('/');
  const entry = final === '' ? ROOT : (last ?? lookup.lstat(final));
  const result: ResolvedPath = { path: final, links, aliases: aliases.filter((a) => a !== final) };
  if (entry && !(trailingSlash && entry.type !== 'dir')) result.entry = entry;
  return result;
}

/** The path whose content a resolved entry has: the link target for a hard link, else its own path. */
export function contentPath(entry: FsEntry): string {
  return entry.type === 'hardlink' && entry.linkname ? entry.linkname : entry.path;
}

/** An entry for {@link memoryLookup}: metadata plus, for regular files, the content. */
export type MemoryEntry = FsEntry & { content?: Uint8Array };

/**
 * An in-memory {@link FileLookup} (with {@link DirectoryLookup}) over a list of entries, for tests
 * and for callers that already hold a small file system. Entry paths may be absolute or normalised;
 * a later entry for the same path replaces an earlier one; parent directories that are not listed
 * exist implicitly (mode 0755, root-owned). `readFiles` follows hard links and throws, naming the
 * path, for a path that is not a regular file or whose content was not given.
 */
export function memoryLookup(entries: MemoryEntry[]): FileLookup & DirectoryLookup {
  const byPath = new Map<string, MemoryEntry>();
  const children = new Map<string, Set<string>>([['', new Set()]]);
  const norm = (p: string): string => {
    const n = normalizePath(p);
    if (n instanceof Error) throw n;
    return n ?? '';
  };
  const addChild = (p: string): void => {
    const slash = p.lastIndexOf('/');
    const parent = slash < 0 ? '' : p.slice(0, slash);
    let set = children.get(parent);
    if (!set) children.set(parent, (set = new Set()));
    set.add(p.slice(slash + 1));
    if (parent !== '' && !byPath.has(parent)) {
      byPath.set(parent, { path: parent, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
      addChild(parent);
    }
  };
  for (const e of entries) {
    const p = norm(e.path);
    if (p === '') throw new EnclavifyError('FS_BAD_PATH', 'memoryLookup: an entry for the root directory is not allowed');
    const linkname = e.type === 'hardlink' && e.linkname !== undefined ? norm(e.linkname) : e.linkname;
    byPath.set(p, { ...e, path: p, ...(linkname !== undefined ? { linkname } : {}) });
    addChild(p);
    if (e.type === 'dir' && !children.has(p)) children.set(p, new Set());
  }
  return {
    lstat(path: string): FsEntry | undefined {
      const p = norm(path);
      const e = byPath.get(p);
      if (!e) return undefined;
      const { content: _content, ...meta } = e;
      return meta;
    },
    readdir(path: string): string[] | undefined {
      const p = norm(path);
      if (p !== '' && byPath.get(p)?.type !== 'dir') return undefined;
      return [...(children.get(p) ?? [])].sort();
    },
    async readFiles(paths: string[]): Promise<Map<string, Uint8Array>> {
      const out = new Map<string, Uint8Array>();
      for (const path of paths) {
        let e = byPath.get(norm(path));
        // Hard links name their target; a chain is bounded by the number of entries.
        for (let i = 0; e?.type === 'hardlink' && i <= byPath.size; i++) e = byPath.get(e.linkname ?? '');
        if (!e) throw new EnclavifyError('FS_NOT_FOUND', `memoryLookup: ${JSON.stringify(path)} does not exist`);
        if (e.type !== 'file') throw new EnclavifyError('FS_NOT_A_FILE', `memoryLookup: ${JSON.stringify(path)} is a ${e.type}, not a regular file`);
        if (e.content) out.set(path, e.content);
        else if (e.size === 0) out.set(path, new Uint8Array(0));
        else throw new EnclavifyError('BAD_ARGUMENT', `memoryLookup: no content was given for ${JSON.stringify(path)}`);
      }
      return out;
    },
  };
}
