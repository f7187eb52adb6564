/** `enclavify verify IMAGE --keys FILE`: offline check of a converted image's file protection. */
import { readKeysFile } from '../protect/keys.js';
import { verify } from '../protect/verify.js';
import { formatFindings } from './format.js';
import { openImage, parsePlatform } from '../store/index.js';
import { UsageError } from './args.js';
import { COMMON, EXIT, type Command } from './command.js';
import { registryFlags, registryOptionsFrom } from './registry-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a converted image against its keys and protection manifest',
  usage: 'enclavify verify [options] IMAGE --keys FILE',
  description: `Checks, without running the image, that its file protection is intact: every encrypted
file decrypts with its key, bound to its path, to the recorded size (every 4 KiB node's MAC is
checked) and is the ciphertext the protection manifest records; every authenticated file has its
recorded SHA-256; no file under an encrypted directory is plaintext, in any layer (entries hidden
by later layers included); every recorded file, symlink, directory, device and FIFO has its
recorded mode, owner, group and xattrs; no hidden layer entry holds an encrypted file's
plaintext; nothing unlisted was added and nothing listed is missing.

The protection manifest must be the one the keys file records (its SHA-256), unless
--manifest-sha256 gives another digest (a policy's). Records a later step added to it (e.g. the
signature files of enclavify sign) are accepted and listed after the findings; --strict-manifest
reports them instead. Keys no region uses, and regions without a key, are findings.

Exit codes: 0 intact, 3 findings (listed on stdout, one per line: PATH: CODE: reason),
1 the image or the keys file cannot be read.`,
  options: {
    keys: { kind: 'string', arg: 'FILE', help: 'the keys file written by enclavify convert' },
    'manifest-sha256': { kind: 'string', arg: 'HEX', help: 'the protection manifest digest a policy expects (default: the one the keys file records)' },
    'strict-manifest': { kind: 'flag', help: 'report records added to the manifest after the pinned one (e.g. by enclavify sign) as findings' },
    platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index' },
    ...registryFlags,
    ...sourceFlags,
    ...COMMON,
  },
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('verify needs one image reference');
    const keysPath = args.strings.keys;
    if (!keysPath) throw new UsageError('verify needs --keys FILE');
    const expected = args.strings['manifest-sha256'];
    if (expected !== undefined && !/^(sha256:)?[0-9a-fA-F]{64}$/.test(expected)) throw new UsageError('--manifest-sha256 needs 64 hex digits');
    const keys = await readKeysFile(keysPath);
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : undefined;
    const image = await openImage(args.positionals[0], { platform, signal: io.signal, registry: registryOptionsFrom(args, 'one'), onProgress: io.progress, ...sourceOptionsFrom(args) });
    const r = await verify(image, {
      keys,
      ...(expected ? { expectedManifestSha256: expected.replace(/^sha256:/, '') } : {}),
      ...(args.flags['strict-manifest'] ? { amendments: 'refuse' as const } : {}),
      onProgress: io.progress,
      signal: io.signal,
    });
    if (args.flags.json) io.out(JSON.stringify({ image: image.name, ...r }));
    else io.out(formatFindings(r));
    return r.ok ? EXIT.ok : EXIT.findings;
  },
};
