/**
 * Atomic file writes for everything enclavify writes outside blobs (index.json, policies, keys,
 * reports): a reader sees the old file or the complete new one, never a torn write. The default
 * mode is 0600, so anything holding secrets (keys, a SCONE session with `fspf_key`) is private
 * unless a caller asks otherwise.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { asEnclavifyError } from '../oci/errors.js';

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** File mode of the result, applied exactly (not masked by umask). Default 0o600. */
  mode?: number;
}

/**
 * Writes `data` to `file` atomically: a temporary file in the same directory (created exclusively
 * with `mode`), fsync, rename over `file`, then fsync of the directory. On failure the temporary
 * file is removed and `file` is untouched.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    const fh = await open(tmp, 'wx', mode);
    created = true;
    try {
      await fh.chmod(mode); // the umask may have cleared bits we asked for
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    if (created) await unlink(tmp).catch(() => {});
    throw asEnclavifyError(err, `writing ${file}`, 'WRITE_FAILED');
  }
  // Persist the rename itself; some file systems cannot fsync a directory, which is harmless here.
  const d = await open(dir, 'r').catch(() => undefined);
  if (d) await d.sync().catch(() => {}).finally(() => d.close());
}
