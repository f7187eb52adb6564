/**
 * The library's temporary directories, in one registry: each is removed by its owner's
 * `dispose()`, on failure, or, for whatever is left when the process exits, by a synchronous
 * `exit` handler. The library installs no signal handler (the CLI does, and calls
 * {@link removeAllTemps} before it exits).
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EnclavifyError } from './errors.js';
import { withLayerObjects, type Image } from './image.js';
import { claimOwnership, OWNER_TOKEN, sweepDir, type OwnerClaim } from './owner.js';

/** Prefix of every temporary directory the library makes. */
export const TEMP_PREFIX = 'enclavify-';

const live = new Set<string>();
const owners = new Map<string, OwnerClaim>();
let hooked = false;

function removeLeftovers(): void {
  for (const dir of live) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // exiting anyway: nothing better to do
    }
  }
  live.clear();
}

/**
 * Makes a fresh directory `<parent>/<prefix>TOKEN-XXXXXX` (default parent: the OS temp dir) and
 * registers it. While it exists this process listens on the socket `DIR/.owner` (lib/oci/owner.ts),
 * so that {@link sweepTemps} in another process leaves the directory alone, and removes it once
 * this process was killed (kill -9 included).
 */
export async function makeTempDir(prefix = TEMP_PREFIX, parent?: string): Promise<string> {
  const base = parent ?? tmpdir();
  const dir = await mkdtemp(path.join(base, `${prefix}${OWNER_TOKEN}-`));
  owners.set(dir, await claimOwnership(path.join(dir, '.owner')));
  live.add(dir);
  if (!hooked) {
    process.on('exit', removeLeftovers);
    hooked = true;
  }
  return dir;
}

/** Removes a directory made by {@link makeTempDir} (idempotent). */
export async function removeTemp(dir: string): Promise<void> {
  const owner = owners.get(dir);
  owners.delete(dir);
  await owner?.release();
  await rm(dir, { recursive: true, force: true });
  live.delete(dir);
}

/** Removes every registered directory (the CLI calls this when interrupted). */
export async function removeAllTemps(): Promise<void> {
  await Promise.all([...live].map((d) => removeTemp(d).catch(() => undefined)));
}

/** A temporary directory's name: `enclavify-[KIND-]TOKEN-XXXXXX`. */
const TEMP_DIR_RE = /^enclavify-(?:[a-z-]+-)?([0-9a-f]{12})-[A-Za-z0-9]{6}$/;

/**
 * Removes the temporary directories that killed processes left in `parent` (default: the OS temp
 * dir): those whose owner socket refuses connections, and those without one once an hour old.
 * Every CLI command calls it first; live owners' directories (other processes, other containers
 * sharing the directory) are never touched. Resolves to the names removed.
 */
export function sweepTemps(parent?: string): Promise<string[]> {
  return sweepDir(parent ?? tmpdir(), { isTemp: (n) => TEMP_DIR_RE.test(n), socketOf: (d) => path.join(d, '.owner') });
}

/** The registered directories not removed yet. */
export function liveTemps(): string[] {
  return [...live];
}

/**
 * A temporary directory owned by a result (a pipeline's staged layers, an image built from a
 * directory): `dispose()` removes it, and what was staged in it refuses to be read afterwards
 * (`DISPOSED`, naming the owner) instead of failing with a bare ENOENT.
 */
export class TempScope implements AsyncDisposable {
  private done = false;
  private removing?: Promise<void>;

  private constructor(
    /** The directory. */
    readonly dir: string,
    /** What owns it, for messages (e.g. the image name). */
    readonly owner: string,
  ) {}

  /** Makes the directory (inside `parent`, default the OS temp dir). */
  static async create(owner: string, parent?: string): Promise<TempScope> {
    return new TempScope(await makeTempDir(TEMP_PREFIX, parent), owner);
  }

  get disposed(): boolean {
    return this.done;
  }

  /** Throws `DISPOSED` naming `what` once the scope is disposed. */
  check(what: string = this.owner): void {
    if (this.done) {
      throw new EnclavifyError('DISPOSED', `${what}: used after dispose(): the temporary files of ${this.owner} were removed; write or read the image before disposing it`);
    }
  }

  /** Removes the directory (idempotent; concurrent calls share one removal). */
  dispose(): Promise<void> {
    this.done = true;
    return (this.removing ??= removeTemp(this.dir));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/**
 * `image`, whose layers refuse to be used once `scope` is disposed (`DISPOSED`, naming the
 * image): their bytes live in the scope's directory. The manifest and config (in memory) stay
 * readable.
 */
export function scopedImage(image: Image, scope: TempScope): Image {
  return withLayerObjects(image, async () => {
    scope.check(image.name);
    return image.layers();
  });
}
