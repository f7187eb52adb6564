/**
 * Who owns a temporary file: proof of life for the sweeps that remove what killed processes left
 * (`$TMPDIR/enclavify-*`, `blobs/ALG/*.tmp-*` in layouts, `.NAME.tmp-*` next to atomically
 * written files).
 *
 * Why a listening Unix domain socket: Node has no flock(), and process ids prove nothing when
 * containers (each with its own pid namespace) share a directory: pid 7 in one container is
 * unrelated to pid 7 in another. So each temporary has an owner socket, bound before the
 * temporary is created and listening for as long as it exists: `DIR/.owner` inside a temporary
 * directory, `.owner-ID` next to a temporary file `NAME.tmp-ID`. The kernel closes a listening socket when its
 * process dies, however it dies (kill -9 included); the socket file stays. A sweeper connects:
 * accepted ⇒ the owner lives (even when stopped: the kernel accepts into the backlog); refused ⇒
 * the owner is dead, and the temporary and its socket file are removed. This works across
 * containers on one kernel (a socket is found by its inode, as /var/run/docker.sock is) and needs
 * no timing. A helper process holding a lock would cost a process per command for the same proof,
 * and a socket per temporary (not per process) leaves nothing behind once the temporary is gone.
 *
 * Limits: a directory shared between hosts (NFS) cannot be probed (connect is refused there), so
 * do not share a layout being written between hosts (the layout lock does not coordinate hosts
 * either). When no socket can be made (no /proc for long paths, a file system without sockets),
 * temporaries carry the token but no proof, and sweeps remove them only once they are older than
 * {@link ORPHAN_AGE_MS}.
 */
import { closeSync, constants, existsSync, openSync, unlinkSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';

/** This process's token (12 hex digits), part of every temporary name it makes. */
export const OWNER_TOKEN = randomBytes(6).toString('hex');

/** Temporaries without an owner socket are removed once untouched for this long. */
export const ORPHAN_AGE_MS = 3600_000;

/** Longest socket address used (sun_path is 108 bytes with its NUL; Node truncates silently). */
const MAX_SOCKET_PATH = 100;

/** Live claims: socket path -> server. */
const claims = new Map<string, net.Server>();
let hooked = false;

function cleanupAtExit(): void {
  for (const [file, server] of claims) {
    server.close();
    try {
      unlinkSync(file);
    } catch {
      // already gone (its directory was removed)
    }
  }
  claims.clear();
}

/**
 * Runs `fn` with a path to `file` short enough for a socket address (sun_path holds 107 bytes and
 * Node truncates longer paths silently): through `/proc/self/fd/N` of its directory on Linux.
 */
async function withSocketPath<T>(file: string, fn: (p: string) => Promise<T>): Promise<T | undefined> {
  if (Buffer.byteLength(file) <= MAX_SOCKET_PATH) return fn(file);
  if (!existsSync('/proc/self/fd') || Buffer.byteLength(path.basename(file)) > MAX_SOCKET_PATH - 24) return undefined;
  let fd: number;
  try {
    fd = openSync(path.dirname(file), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return await fn(`/proc/self/fd/${fd}/${path.basename(file)}`);
  } finally {
    closeSync(fd);
  }
}

/** A claim on a temporary: its owner socket, listening until {@link OwnerClaim.release}. */
export interface OwnerClaim {
  /** The socket file (undefined when none could be made: the temporary then ages out instead). */
  readonly socket: string | undefined;
  /** Stops listening and removes the socket file (idempotent). */
  release(): Promise<void>;
}

/**
 * Binds the owner socket `socketFile` (for a temporary directory `DIR/.owner`, for a temporary
 * file {@link tmpOwnerSocket}), listening until released or until the process dies. Never fails: when no
 * socket can be made the claim holds none.
 */
export async function claimOwnership(socketFile: string): Promise<OwnerClaim> {
  if (!hooked) {
    process.on('exit', cleanupAtExit);
    hooked = true;
  }
  const server = net.createServer((c) => c.destroy());
  const ok = await withSocketPath(socketFile, (addr) => new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(addr, () => resolve(true));
  }));
  if (!ok) {
    server.close();
    return { socket: undefined, release: async () => {} };
  }
  server.unref(); // never keeps the process alive
  claims.set(socketFile, server);
  let released: Promise<void> | undefined;
  return {
    socket: socketFile,
    release: () => (released ??= (async () => {
      claims.delete(socketFile);
      await new Promise<void>((r) => server.close(() => r()));
      await rm(socketFile, { force: true }).catch(() => undefined);
    })()),
  };
}

/** Whether the owner listening on `socketFile` lives: 'live', 'dead' (connection refused) or 'unknown' (no socket file). */
export async function probeOwner(socketFile: string): Promise<'live' | 'dead' | 'unknown'> {
  if (claims.has(socketFile)) return 'live';
  const st = await lstat(socketFile).catch(() => undefined);
  if (!st) return 'unknown';
  const r = await withSocketPath(socketFile, (addr) => new Promise<'live' | 'dead' | 'unknown'>((resolve) => {
    const c = net.connect(addr);
    c.once('connect', () => {
      c.destroy();
      resolve('live');
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      c.destroy();
      // ECONNREFUSED: nobody listens (the owner died; also a file that is no socket). Anything
      // else (EACCES, EAGAIN: backlog full) is no proof of death.
      resolve(e.code === 'ECONNREFUSED' ? 'dead' : 'live');
    });
  }));
  return r ?? 'unknown';
}

/** Options of {@link sweepDir}. */
export interface SweepOptions {
  /** Whether an entry's name is one of our temporaries. */
  isTemp: (name: string) => boolean;
  /** The owner socket of the temporary at `file`. */
  socketOf: (file: string) => string;
}

/**
 * Removes from `dir` the temporaries (names `opts.isTemp` accepts) whose owner is dead (with
 * their socket files), and those without an owner socket once older than {@link ORPHAN_AGE_MS}.
 * Best effort: what cannot be read or removed is left. Resolves to the removed names.
 */
export async function sweepDir(dir: string, opts: SweepOptions): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  await Promise.all(names.filter(opts.isTemp).map(async (n) => {
    const file = path.join(dir, n);
    const socket = opts.socketOf(file);
    const v = await probeOwner(socket);
    if (v === 'live') return;
    if (v === 'unknown') {
      const st = await lstat(file).catch(() => undefined);
      if (!st || Date.now() - st.mtimeMs <= ORPHAN_AGE_MS) return;
    }
    // rm never follows a symlink: a link planted under a temporary name is removed, not its target.
    await rm(file, { recursive: true, force: true }).then(() => removed.push(n), () => undefined);
    await rm(socket, { force: true }).catch(() => undefined);
  }));
  // Socket files whose temporary is gone (killed between the two removals).
  const sockets = new Set(names.filter(opts.isTemp).map((n) => path.basename(opts.socketOf(path.join(dir, n)))));
  for (const n of names) {
    if (!OWNER_SOCKET_RE.test(n) || sockets.has(n)) continue;
    if ((await probeOwner(path.join(dir, n))) === 'dead') await rm(path.join(dir, n), { force: true }).then(() => removed.push(n), () => undefined);
  }
  return removed;
}

const TMP_RE = /\.tmp-([0-9a-f]{12}(?:-[0-9a-f]+)?)$/;
const OWNER_SOCKET_RE = /^\.owner-[0-9a-f]{12}-[0-9a-f]+$/;

/** Whether `name` is a temporary file name `...tmp-TOKEN[-R]` (blobs, atomically written files). */
export function isTmpFileName(name: string): boolean {
  return TMP_RE.test(name);
}

/**
 * The owner socket of the temporary file `file` (`NAME.tmp-ID`): `.owner-ID` in its directory,
 * short so that its address fits a socket address even next to a blob's 64-digit name.
 */
export function tmpOwnerSocket(file: string): string {
  const id = TMP_RE.exec(path.basename(file))?.[1] ?? 'none';
  return path.join(path.dirname(file), `.owner-${id}`);
}

/** A fresh temporary name for `file` (same directory): `FILE.tmp-TOKEN-R`, or `.BASE.tmp-TOKEN-R` when `hidden`. */
export function tmpFileName(file: string, hidden = false): string {
  const r = randomBytes(4).toString('hex');
  const base = path.basename(file);
  return path.join(path.dirname(file), `${hidden ? '.' : ''}${base}.tmp-${OWNER_TOKEN}-${r}`);
}
