/** A lock file so that two writers cannot interleave updates of one layout's index.json. */
import { open, readFile, rm } from 'node:fs/promises';
import { EnclavifyError } from '../oci/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding an exclusive lock file (created with O_EXCL, holding our pid). A lock whose
 * owner process is gone is taken over; a live one is waited for up to `timeoutMs`.
 */
export async function withLock<T>(lockFile: string, what: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    try {
      const fh = await open(lockFile, 'wx', 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
      if (Number.isFinite(owner) && owner > 0 && !alive(owner)) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() - start > timeoutMs) throw new EnclavifyError('LOCKED', `${what}: locked by another writer (pid ${owner || 'unknown'}, ${lockFile})`);
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}
