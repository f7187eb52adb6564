/** `enclavify tree SRC`: the merged root file system, one line per path. */
import type { MergedEntry } from '../fs/merged.js';
import { layersRootFs } from '../oci/rootfs.js';
import { formatTreeLine } from '../fs/tree.js';
import { maxEntriesFlag, maxEntriesFrom } from './limit-options.js';
import { openImage } from '../store/images.js';
import { parsePlatform } from '../store/oci-layout.js';
import { UsageError } from './args.js';
import { COMMON, EXIT, type Command } from './command.js';
import { decryptedFrom, decryptionFlags } from './ocicrypt-options.js';
import { registryFlags, registryOptionsFrom } from './registry-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';

export const treeCommand: Command = {
  name: 'tree',
  summary: 'print the merged root file system of an image',
  usage: 'enclavify tree [options] SRC',
  description: `Prints the root file system that the image's layers produce, as a container runtime
(or umoci unpack) would see it, with OCI whiteouts applied. One line per path, sorted bytewise:
  PATH file MODE UID:GID SIZE SHA256 nlink=N
  PATH dir MODE UID:GID
  PATH symlink UID:GID -> TARGET
  PATH chardev|blockdev MODE UID:GID MAJOR,MINOR
  PATH fifo MODE UID:GID
Modes are octal without the file type; nlink counts the paths sharing a file through hard links.`,
  options: {
    platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index' },
    ...registryFlags,
    ...decryptionFlags,
    ...sourceFlags,
    ...maxEntriesFlag,
    ...COMMON,
  },
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('tree needs one image reference');
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : undefined;
    const image = await decryptedFrom(await openImage(args.positionals[0], { platform, signal: io.signal, registry: registryOptionsFrom(args, 'one'), onProgress: io.progress, ...sourceOptionsFrom(args) }), args);
    const layers = await image.layers();
    io.progress({ phase: 'scan', image: image.name, message: `scanning ${layers.length} layers of ${image.name}` });
    const fs = await layersRootFs(layers, { onProgress: io.progress, signal: io.signal, progressEvent: { image: image.name }, image: image.name, ...maxEntriesFrom(args) });
    // Written in chunks of lines (io.out adds a newline to each): a million paths are never one string.
    const CHUNK = 2000;
    let lines: string[] = [];
    if (args.flags.json) {
      const head = JSON.stringify({ image: image.name, digest: await image.digest(), entries: [] });
      const json = (e: MergedEntry) => JSON.stringify({
        path: e.path,
        type: e.type,
        mode: e.mode.toString(8).padStart(4, '0'),
        uid: e.uid,
        gid: e.gid,
        ...(e.type === 'file' ? { size: e.size, sha256: e.sha256, nlink: e.nlink } : {}),
        ...(e.linkname !== undefined && e.type === 'symlink' ? { target: e.linkname } : {}),
        ...(e.type === 'chardev' || e.type === 'blockdev' ? { major: e.devmajor, minor: e.devminor } : {}),
        mtime: e.mtime,
      });
      // Valid JSON with one entry per line (io.out adds the newline after each chunk).
      let prefix = head.slice(0, -2); // `{"image":…,"entries":[`
      let n = 0;
      for (const e of fs.walk()) {
        lines.push((n++ ? ',' : '') + json(e));
        if (lines.length >= CHUNK) {
          io.out(prefix + lines.join('\n'));
          prefix = '';
          lines = [];
        }
      }
      io.out(prefix + lines.join('\n') + ']}');
    } else {
      let any = false;
      for (const e of fs.walk()) {
        lines.push(formatTreeLine(e));
        if (lines.length >= CHUNK) {
          io.out(lines.join('\n'));
          lines = [];
          any = true;
        }
      }
      if (lines.length || !any) io.out(lines.join('\n'));
    }
    return EXIT.ok;
  },
};
