/** The merged root file system of an image's layers, with blob corruption named as such. */
import { Writable } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { RootFs } from '../fs/merged.js';
import type { Layer } from './image.js';

/**
 * Scans layers into a {@link RootFs}. A corrupt compressed blob usually first shows up as a
 * decompression or tar error (gzip checks its CRC only at the end); when the scan fails, the
 * stored blobs are re-checked so that the error names the real cause, a digest mismatch.
 */
export async function layersRootFs(layers: readonly Layer[]): Promise<RootFs> {
  try {
    return await RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() })));
  } catch (e) {
    for (const l of layers) {
      try {
        await pipe(await l.compressed(), new Writable({ write: (_c, _e, cb) => cb() }));
      } catch (digestError) {
        throw digestError;
      }
    }
    throw e;
  }
}
