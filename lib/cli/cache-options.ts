/** `--cache-dir DIR`, `--no-cache`, `--cache-max-size SIZE`: the scan cache of `convert` (lib/store/scan-cache.ts). */
import { UsageError, type OptionSpec, type Parsed } from './args.js';
import { defaultCacheDir } from '../store/scan-cache.js';

export const cacheFlags: Record<string, OptionSpec> = {
  'cache-dir': {
    kind: 'string',
    arg: 'DIR',
    help: 'cache layer scans here, so that a reconversion with unchanged base layers does not read them again (default $XDG_CACHE_HOME/enclavify, else ~/.cache/enclavify; must be yours and not group/other-writable)',
  },
  'no-cache': { kind: 'flag', help: 'neither read nor write the scan cache' },
  'cache-max-size': { kind: 'string', arg: 'SIZE', help: 'bound of the cache directory, e.g. 512M or 2G (default 1G); least recently used entries are removed beyond it' },
};

/** `PipelineOptions.cache` (and its bound) from the flags; the environment gives the default directory. `readOnly` for a dry run (it writes nothing). */
export async function cacheFrom(args: Parsed, env: NodeJS.ProcessEnv = process.env, onWarning?: (m: string) => void, readOnly = false): Promise<{ cache?: import('../store/scan-cache.js').ScanCache | false }> {
  const dir = args.strings['cache-dir'];
  const max = args.strings['cache-max-size'];
  if (args.flags['no-cache']) {
    if (dir !== undefined) throw new UsageError('--no-cache and --cache-dir exclude each other');
    if (max !== undefined) throw new UsageError('--no-cache and --cache-max-size exclude each other');
    return { cache: false };
  }
  if (dir === '') throw new UsageError('--cache-dir: an empty directory name');
  const maxBytes = max === undefined ? undefined : parseByteSize(max, '--cache-max-size');
  const { ScanCache } = await import('../store/scan-cache.js');
  const cache = await ScanCache.open(dir ?? defaultCacheDir(env), { maxBytes, onWarning, readOnly });
  return cache ? { cache } : {};
}

/** `N`, `NK`, `NM`, `NG` (powers of 1024) as bytes. */
export function parseByteSize(v: string, what: string): number {
  const m = /^([0-9]{1,15})([KMG]?)$/i.exec(v);
  if (!m) throw new UsageError(`${what}: ${JSON.stringify(v)} is not a size such as 512M or 2G`);
  const n = Number(m[1]) * ({ '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2].toUpperCase()];
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what}: ${JSON.stringify(v)} is too large`);
  return n;
}
