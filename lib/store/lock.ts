/** A lock file so that two writers cannot interleave updates of one layout's index.json. */
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file left empty (its writer died between creating it and writing its pid) is stale after this. */
const EMPTY_STALE_MS = 10_000;

/**
 * Takes over a stale lock without ever removing a live one: the stale file is renamed aside (only
 * one contender can rename a given file), and if what was renamed is not the file judged stale
 * (another contender already replaced it with a fresh lock), it is put back.
 */
async function takeOver(lockFile: string, stale: { ino: number; mtimeMs: number }): Promise<void> {
  const aside = `${lockFile}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(lockFile, aside);
  } catch {
    return; // someone else took it over first
  }
  const st = await stat(aside).catch(() => undefined);
  // Inode numbers are reused at once by many file systems, so the modification time is compared too.
  if (st && (st.ino !== stale.ino || st.mtimeMs !== stale.mtimeMs)) {
    // We moved a fresh lock: restore it (link fails if a third writer created one meanwhile, and
    // then that writer holds the lock while the fresh one's owner is unaffected: it never rereads).
    await link(aside, lockFile).catch(() => undefined);
  }
  await rm(aside, { force: true });
}

/**
 * Runs `fn` holding an exclusive lock file (created with O_EXCL, holding our pid). A lock whose
 * owner process is gone is taken over; a live one is waited for up to `timeoutMs`.
 * Staleness is judged by pid, so the lock serialises writers on one machine (as for umoci and
 * skopeo, layouts on shared network volumes are not coordinated across hosts).
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
      const st = await stat(lockFile).catch(() => undefined);
      if (!st) continue;
      const text = await readFile(lockFile, 'utf8').catch(() => '');
      const owner = Number.parseInt(text, 10);
      const stale = Number.isFinite(owner) && owner > 0 ? !alive(owner) : Date.now() - st.mtimeMs > EMPTY_STALE_MS;
      if (stale) {
        await takeOver(lockFile, st);
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
