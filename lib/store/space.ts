/**
 * Disk space: which file system a path is on, how much it has free, and `NO_SPACE` errors that
 * say which file system filled up (the temporary directory's or the destination's), at which path,
 * while writing what. Before staging something large, {@link ensureFreeSpace} fails early with the
 * numbers instead of filling the disk and failing half way.
 */
import { readFileSync } from 'node:fs';
import { realpath, statfs } from 'node:fs/promises';
import path from 'node:path';
import { EnclavifyError } from '../oci/errors.js';

/** A file system, as messages describe it. */
export interface FileSystemInfo {
  /** Mount point (Linux; otherwise the path asked about). */
  mount: string;
  /** File system type from /proc/self/mountinfo, when known (e.g. `tmpfs`, `ext4`). */
  type?: string | undefined;
  /** Bytes available to this user, and the size. */
  free: number;
  size: number;
}

/** Bytes as `12.3 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The nearest existing ancestor of `p` (or `p`), resolved. */
async function existing(p: string): Promise<string> {
  let cur = path.resolve(p);
  for (;;) {
    const r = await realpath(cur).catch(() => undefined);
    if (r) return r;
    const up = path.dirname(cur);
    if (up === cur) return cur;
    cur = up;
  }
}

/** Mount point and type of the file system holding `real` (a resolved path), from /proc/self/mountinfo. */
function mountOf(real: string): { mount: string; type?: string } {
  let best: { mount: string; type?: string } = { mount: real };
  let bestLen = -1;
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return best;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (f.length < 5 || sep < 0) continue;
    const mount = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    const inside = mount === '/' || real === mount || real.startsWith(mount + '/');
    if (inside && mount.length >= bestLen) {
      bestLen = mount.length;
      best = { mount, type: f[sep + 1] };
    }
  }
  return best;
}

/** The file system holding `p` (or its nearest existing ancestor). */
export async function fileSystemOf(p: string): Promise<FileSystemInfo> {
  const real = await existing(p);
  const m = mountOf(real);
  const s = await statfs(real).catch(() => undefined);
  return { mount: m.mount, type: m.type, free: s ? s.bavail * s.bsize : 0, size: s ? s.blocks * s.bsize : 0 };
}

const describe = (fs: FileSystemInfo) => `the file system at ${fs.mount}${fs.type ? ` (${fs.type})` : ''}, ${formatBytes(fs.free)} free of ${formatBytes(fs.size)}`;

/**
 * `NO_SPACE` for `err` when it is ENOSPC or EDQUOT, naming `file`, the file system it is on and
 * `what` was being written; undefined for any other error.
 */
export async function noSpaceError(err: unknown, file: string, what: string): Promise<EnclavifyError | undefined> {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  const fs = await fileSystemOf(path.dirname(file)).catch(() => undefined);
  const full = code === 'EDQUOT' ? 'the disk quota is exhausted' : 'no space left';
  return new EnclavifyError('NO_SPACE', `${what}: ${full} on ${fs ? describe(fs) : 'its file system'} (writing ${file})`, { cause: err });
}

/**
 * Fails with `NO_SPACE` before `bytes` are written under `dir` when its file system has less
 * free (plus a 1 MiB margin). `what` says what would be written, `role` which directory it is
 * (e.g. "temporary directory"). File systems that report no sizes are not checked.
 */
export async function ensureFreeSpace(dir: string, bytes: number, what: string, role: string): Promise<void> {
  const fs = await fileSystemOf(dir).catch(() => undefined);
  if (!fs || fs.size === 0) return;
  const need = bytes + (1 << 20);
  if (fs.free < need) {
    throw new EnclavifyError('NO_SPACE', `${what}: needs ${formatBytes(bytes)} in the ${role} ${dir}, but ${describe(fs)}; free space there or choose another ${role}`);
  }
}
