/** A lock file so that two writers cannot interleave updates of one layout's index.json. */
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { EnclavifyError } from '../oci/errors.js';
import { claimOwnership, OWNER_TOKEN, probeOwner } from '../oci/owner.js';

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
 * Runs `fn` holding an exclusive lock file (created with O_EXCL). The lock names its owner's
 * socket (`pid P owner .owner-ID`, the socket next to it; lib/oci/owner.ts): a lock whose socket
 * refuses connections belongs to a dead process and is taken over; a live one is waited for up
 * to `timeoutMs`. Pids are not unique across containers sharing a layout, so the pid decides only
 * when there is no socket (an older writer, or one that could not bind). As for umoci and skopeo,
 * layouts on network volumes shared between hosts are not coordinated.
 */
export async function withLock<T>(lockFile: string, what: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  const socketName = `.owner-${OWNER_TOKEN}-${randomBytes(4).toString('hex')}`;
  const claim = await claimOwnership(path.join(path.dirname(lockFile), socketName));
  try {
    return await locked(lockFile, what, fn, timeoutMs, start, claim.socket ? socketName : undefined);
  } finally {
    await claim.release();
  }
}

async function locked<T>(lockFile: string, what: string, fn: () => Promise<T>, timeoutMs: number, start: number, socketName: string | undefined): Promise<T> {
  for (;;) {
    try {
      const fh = await open(lockFile, 'wx', 0o644);
      await fh.writeFile(`pid ${process.pid}${socketName ? ` owner ${socketName}` : ''}`);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await stat(lockFile).catch(() => undefined);
      if (!st) continue;
      const text = await readFile(lockFile, 'utf8').catch(() => '');
      const owner = Number.parseInt(text.replace(/^pid /, ''), 10);
      const sock = /owner (\.owner-[0-9a-f]{12}-[0-9a-f]+)/.exec(text)?.[1];
      const verdict = sock ? await probeOwner(path.join(path.dirname(lockFile), sock)) : 'unknown';
      const stale = verdict !== 'unknown'
        ? verdict === 'dead'
        : Number.isFinite(owner) && owner > 0 ? !alive(owner) : Date.now() - st.mtimeMs > EMPTY_STALE_MS;
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
