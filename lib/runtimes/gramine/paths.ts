/**
 * Every path by which a regular file of an image can be opened. Gramine's `chroot` file system has
 * no symlinks of its own: the host resolves them, and Gramine matches trusted and allowed files by
 * the path the program opened. So `/lib/x86_64-linux-gnu/libc.so.6` (through merged-/usr's
 * `lib -> usr/lib`) and `/usr/lib/.../libz.so.1` (a symlink to `libz.so.1.2.13`) each need their
 * own entry, with the hash of the file they reach.
 */
import { EnclavifyError } from '../../oci/errors.js';
import { baseName, ROOT } from '../../fs/entry.js';
import type { MergedEntry, RootFs } from '../../fs/merged.js';

/** One way to reach a regular file. */
export interface ReachablePath {
  /** Absolute path as a program opens it, e.g. `/lib/x86_64-linux-gnu/libc.so.6`. */
  alias: string;
  /** Normalised path of the file reached (symlinks resolved), e.g. `usr/lib/x86_64-linux-gnu/libc.so.6`. */
  real: string;
  entry: MergedEntry;
}

/** Options of {@link reachableFiles}. */
export interface ReachableOptions {
  /** Absolute paths not to enter (and not to list), e.g. `/proc`, a tmpfs or an encrypted mount. */
  skip?: readonly string[];
  /** Stop with `GRAMINE_TOO_MANY_PATHS` beyond this many paths (default 1,000,000). */
  limit?: number | undefined;
}

/** Whether absolute `p` is one of `dirs` or below one of them. */
export function isUnder(p: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => d === '/' || p === d || p.startsWith(d.endsWith('/') ? d : `${d}/`));
}

/**
 * Lists every path under which a regular file (or hard link) of `fs` can be opened: its own path,
 * paths through symlinked directories, and symlinks to it, like a walk that follows symlinks
 * (`os.walk(followlinks=True)`) but stops at symlinks that lead back to a directory being walked
 * (`/usr/bin/X11 -> .`). Sorted by walk order (bytewise per directory). Dangling symlinks and
 * symlinks to devices are left out.
 */
export function reachableFiles(fs: RootFs, opts: ReachableOptions = {}): { paths: ReachablePath[]; cycles: string[] } {
  const skip = (opts.skip ?? []).map((s) => s.replace(/\/+$/, '') || '/');
  const limit = opts.limit ?? 1_000_000;
  const paths: ReachablePath[] = [];
  const cycles: string[] = [];
  const chain = new Set<string>([ROOT]);

  const emit = (alias: string, real: string, entry: MergedEntry) => {
    if (paths.length >= limit) {
      throw new EnclavifyError('GRAMINE_TOO_MANY_PATHS', `more than ${limit} paths reach files of the image (symlinked directories multiply them); exclude directories or raise the limit`);
    }
    paths.push({ alias, real, entry });
  };

  const walk = (aliasDir: string, realDir: string): void => {
    for (const child of fs.children(realDir) ?? []) {
      const alias = `${aliasDir === '/' ? '' : aliasDir}/${baseName(child.path)}`;
      if (isUnder(alias, skip)) continue;
      let real = child.path;
      let e: MergedEntry | undefined = child;
      if (child.type === 'symlink') {
        let r: string | undefined;
        try {
          r = fs.resolve(child.path);
        } catch {
          r = undefined; // a loop: the kernel would say ELOOP
        }
        e = r === undefined ? undefined : fs.get(r);
        if (!e) continue;
        real = r!;
      }
      if (e.type === 'file') emit(alias, real, e);
      else if (e.type === 'dir') {
        if (chain.has(real)) {
          cycles.push(alias);
          continue;
        }
        chain.add(real);
        walk(alias, real);
        chain.delete(real);
      }
    }
  };
  walk('/', ROOT);
  return { paths, cycles };
}
