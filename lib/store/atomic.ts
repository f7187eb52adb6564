/**
 * Atomic file writes for everything enclavify writes outside blobs (index.json, policies, keys,
 * reports): a reader sees the old file or the complete new one, never a torn write. The default
 * mode is 0600, so anything holding secrets (keys, a SCONE session with `fspf_key`) is private
 * unless a caller asks otherwise.
 */
import { lstat, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { asEnclavifyError, EnclavifyError } from '../oci/errors.js';
import { claimOwnership, tmpFileName, tmpOwnerSocket } from '../oci/owner.js';
import { CREATE_NOFOLLOW } from './no-follow.js';
import { noSpaceError } from './space.js';

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** File mode of the result, applied exactly (not masked by umask). Default 0o600. */
  mode?: number;
}

/**
 * Writes `data` to `file` atomically: a temporary file `.NAME.tmp-TOKEN-R` in the same directory
 * (created exclusively with `mode`, never through a symlink, with an owner socket so that a sweep
 * removes it if this process is killed), fsync, rename over `file`, then fsync of the directory.
 * A `file` that is a symlink is refused (`WRITE_THROUGH_SYMLINK`), not replaced. On failure the
 * temporary file is removed and `file` is untouched; a full disk is `NO_SPACE` naming the file
 * system. `data` may be pieces of text (a generator: a large JSON document), written as they come.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<string>, options: WriteFileAtomicOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = path.dirname(file);
  if ((await lstat(file).catch(() => undefined))?.isSymbolicLink()) {
    throw new EnclavifyError('WRITE_THROUGH_SYMLINK', `writing ${file}: it is a symlink; enclavify does not write through symlinks (remove it or write elsewhere)`);
  }
  const tmp = tmpFileName(file, true);
  const owner = await claimOwnership(tmpOwnerSocket(tmp));
  let created = false;
  try {
    const fh = await open(tmp, CREATE_NOFOLLOW, mode);
    created = true;
    try {
      await fh.chmod(mode); // the umask may have cleared bits we asked for
      await fh.writeFile(data as string | Uint8Array); // FileHandle.writeFile takes iterables too
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    if (created) await unlink(tmp).catch(() => {});
    throw (await noSpaceError(err, file, `writing ${file}`)) ?? asEnclavifyError(err, `writing ${file}`, 'WRITE_FAILED');
  } finally {
    await owner.release();
  }
  // Persist the rename itself; some file systems cannot fsync a directory, which is harmless here.
  const d = await open(dir, 'r').catch(() => undefined);
  if (d) await d.sync().catch(() => {}).finally(() => d.close());
}
