/**
 * `sgx.trusted_files` and `sgx.allowed_files` from the classified paths of an image.
 *
 * Gramine 1.9 checks allowed files BEFORE trusted files, and an allowed entry covers every path
 * below it (`file:/var` allows `/var/x`). An allowed directory that contains an authenticated file
 * would therefore switch that file's hash check off. So plain directories are allowed wholesale
 * only when no trusted path lies below them; otherwise the allowance is narrowed to the
 * subdirectories and plain files that hold no trusted path. The result is checked once more with
 * Gramine's own matching rule before it is returned.
 */
import { EnclavifyError } from '../../oci/errors.js';
import { baseName, compareBytewise } from '../../fs/entry.js';
import type { RootFs } from '../../fs/merged.js';
import type { TrustedFile } from './manifest.js';
import type { ReachablePath } from './paths.js';

/** How a reachable path is listed. */
export type Listing = 'trusted' | 'allowed' | 'none';

/** Input of {@link fileLists}. */
export interface FileListsInput {
  view: RootFs;
  /** Every path that reaches a file (see reachableFiles). */
  paths: readonly ReachablePath[];
  /** How a path is listed. */
  listingOf(p: ReachablePath): Listing;
  /** Absolute directories (or host paths) to allow wholesale, if no trusted path is below them. */
  allowedDirs: readonly string[];
  /** Absolute paths to allow exactly, whether or not they exist in the image (files the runtime provides). */
  allowedFiles: readonly string[];
}

/** Result of {@link fileLists}. */
export interface FileLists {
  trusted: TrustedFile[];
  /** `file:` URIs, directories with a trailing `/`. */
  allowed: string[];
  /** Plain directories that could not be allowed wholesale because authenticated files are below them. */
  narrowed: string[];
}

/** Gramine's test (libos/src/fs/chroot/allowed.c): does allowed entry `af` cover `path`? */
export function allowedCovers(af: string, path: string): boolean {
  if (af.length > path.length || !path.startsWith(af)) return false;
  if (af.length === path.length) return true;
  return af.endsWith('/') || path[af.length] === '/';
}

/** Sorted strings: is there one that starts with `prefix`? */
function hasPrefix(sorted: readonly string[], prefix: string): boolean {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareBytewise(sorted[mid], prefix) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo].startsWith(prefix);
}

/** Builds both lists; throws `GRAMINE_ALLOWED_COVERS_TRUSTED` if an allowed entry would still cover a trusted path. */
export function fileLists(input: FileListsInput): FileLists {
  const trusted = new Map<string, string>();
  const plainFiles: string[] = [];
  for (const p of input.paths) {
    const l = input.listingOf(p);
    if (l === 'trusted') trusted.set(p.alias, p.entry.sha256!);
    else if (l === 'allowed') plainFiles.push(p.alias);
  }
  const trustedPaths = [...trusted.keys()].sort(compareBytewise);
  const underTrusted = (dir: string) => trusted.has(dir) || hasPrefix(trustedPaths, `${dir}/`);
  const plainSet = new Set(plainFiles);
  const allowed = new Set<string>();
  const narrowed: string[] = [];

  // Allow `dir` wholesale, or its children that hold no trusted path.
  const cover = (dir: string, depth: number): void => {
    if (!underTrusted(dir)) {
      allowed.add(input.view.stat(dir)?.type === 'file' ? `file:${dir}` : `file:${dir}/`);
      return;
    }
    if (trusted.has(dir) || depth > 64) return; // the path itself is a trusted file
    narrowed.push(dir);
    const real = input.view.resolve(dir);
    for (const child of (real === undefined ? undefined : input.view.children(real)) ?? []) {
      const alias = `${dir === '/' ? '' : dir}/${baseName(child.path)}`;
      const target = child.type === 'symlink' ? input.view.stat(child.path) : child;
      if (target?.type === 'dir') cover(alias, depth + 1);
      else if (plainSet.has(alias)) allowed.add(`file:${alias}`);
    }
  };
  const dirs = [...new Set(input.allowedDirs.map((d) => d.replace(/\/+$/, '') || '/'))];
  for (const d of dirs) cover(d, 0);
  const coveredByDir = (p: string) => [...allowed].some((a) => allowedCovers(a.slice(5), p));
  for (const f of input.allowedFiles) {
    if (trusted.has(f)) continue; // the image pins it: keep the hash check
    if (!coveredByDir(f)) allowed.add(`file:${f}`);
  }
  const dirEntries = [...allowed].map((a) => a.slice(5));
  for (const p of plainFiles) {
    if (!dirEntries.some((a) => allowedCovers(a, p))) allowed.add(`file:${p}`);
  }

  const allowedList = [...allowed].sort(compareBytewise);
  // Defence in depth: Gramine must never find a trusted path in the allowed list first.
  const prefixes = allowedList.map((a) => a.slice(5));
  for (const t of trustedPaths) {
    const hit = prefixes.find((a) => allowedCovers(a, t));
    if (hit) throw new EnclavifyError('GRAMINE_ALLOWED_COVERS_TRUSTED', `allowed entry file:${hit} would disable the hash check of trusted file ${t}`);
  }
  return {
    trusted: trustedPaths.map((p) => ({ uri: `file:${p}`, sha256: trusted.get(p)! })),
    allowed: allowedList,
    narrowed,
  };
}
