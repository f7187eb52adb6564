/**
 * The environment a Gramine enclave starts with. Gramine passes no host variable into the enclave
 * unless the manifest says so, so the image's Env becomes `loader.env`, plus what a container
 * runtime would have added (a default PATH) and what Gramine's patched glibc needs to be found
 * (`LD_LIBRARY_PATH`, as GSC sets it).
 */
import { posix } from 'node:path';
import type { FileLookup, DirectoryLookup } from '../../fs/lookup.js';
import { DEFAULT_PATH } from '../../protect/deps.js';

/** A `loader.env` value: fixed (measured) or taken from the host at run time (not measured). */
export type LoaderEnvValue = string | { passthrough: true };

/** `KEY=value` strings to an ordered map; later duplicates win, as in Docker. */
export function parseEnv(env: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) continue; // `KEY` alone means "take it from the host" in Docker; images do not carry it
    m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** Multiarch library directories searched by default (glibc's own, plus Debian's multiarch ones). */
export const DEFAULT_LIBRARY_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];

/**
 * Directories listed in the image's `/etc/ld.so.conf` (following `include` lines, with `*` globs
 * in the last component), in order. What `ldconfig` would put in the cache; missing files give [].
 */
export async function ldSoConfDirs(fs: FileLookup & Partial<DirectoryLookup>): Promise<string[]> {
  const dirs: string[] = [];
  const seen = new Set<string>();
  const read = async (file: string): Promise<string | undefined> => {
    try {
      const m = await fs.readFiles([file]);
      return new TextDecoder().decode(m.get(file));
    } catch {
      return undefined;
    }
  };
  const expand = (pattern: string, base: string): string[] => {
    const abs = pattern.startsWith('/') ? pattern : posix.join(base, pattern);
    if (!abs.includes('*') && !abs.includes('?')) return [abs];
    const dir = posix.dirname(abs);
    const re = new RegExp(`^${posix.basename(abs).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return (fs.readdir?.(dir.slice(1)) ?? []).filter((n) => re.test(n)).sort().map((n) => posix.join(dir, n));
  };
  const visit = async (file: string, depth: number): Promise<void> => {
    if (depth > 8 || seen.has(file)) return;
    seen.add(file);
    const text = await read(file.slice(1));
    if (text === undefined) return;
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const inc = /^include\s+(.+)$/.exec(line);
      if (inc) {
        for (const pat of inc[1].split(/\s+/)) for (const f of expand(pat, posix.dirname(file))) await visit(f, depth + 1);
      } else {
        for (const d of line.split(/[\s:,]+/)) if (d.startsWith('/') && !dirs.includes(d)) dirs.push(d.replace(/\/+$/, '') || '/');
      }
    }
  };
  await visit('/etc/ld.so.conf', 0);
  return dirs;
}

/** Inputs of {@link loaderEnv}. */
export interface LoaderEnvInput {
  /** The image config's Env. */
  imageEnv: readonly string[] | undefined;
  /** Gramine's patched glibc directory in the image, when the program uses glibc. */
  runtimeGlibc?: string | undefined;
  /** Library directories of the image (ld.so.conf) to keep after the runtime glibc. */
  libraryDirs?: readonly string[] | undefined;
  /** Directory of the program interpreter (PT_INTERP), so Gramine finds it when LD_LIBRARY_PATH is set. */
  interpreterDir?: string | undefined;
  /** Variables taken from the host at run time (`{ passthrough = true }`). */
  passthrough?: readonly string[] | undefined;
  /** Added or overriding variables (secret provisioning, user options). */
  extra?: Record<string, string> | undefined;
}

/**
 * `loader.env` for the manifest: the image's Env in order, PATH defaulted as a container runtime
 * does, LD_LIBRARY_PATH led by Gramine's glibc (then the image's own value and library dirs), extras
 * and passthrough variables last.
 */
export function loaderEnv(input: LoaderEnvInput): Map<string, LoaderEnvValue> {
  const env = new Map<string, LoaderEnvValue>(parseEnv(input.imageEnv));
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  const own = env.get('LD_LIBRARY_PATH');
  const ownDirs = typeof own === 'string' ? own.split(':').filter(Boolean) : [];
  if (input.runtimeGlibc) {
    const dirs = [input.runtimeGlibc, ...ownDirs, ...(input.libraryDirs ?? []), ...DEFAULT_LIBRARY_DIRS];
    env.set('LD_LIBRARY_PATH', [...new Set(dirs)].join(':'));
  } else if (ownDirs.length && input.interpreterDir && !ownDirs.includes(input.interpreterDir)) {
    // Gramine looks for the ELF interpreter only in LD_LIBRARY_PATH when it is set.
    env.set('LD_LIBRARY_PATH', [...ownDirs, input.interpreterDir].join(':'));
  }
  for (const [k, v] of Object.entries(input.extra ?? {})) env.set(k, v);
  for (const k of input.passthrough ?? []) env.set(k, { passthrough: true });
  return env;
}
