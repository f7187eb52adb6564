/** `enclavify copy SRC DST` (or `--from SRC --to DST`, as convert): like `skopeo copy` between the transports we support. */
import { rm } from 'node:fs/promises';
import { copyImage } from '../store/images.js';
import { parsePlatform } from '../store/oci-layout.js';
import { ACCEPTED_FORMS } from '../store/ref.js';
import { UsageError } from './args.js';
import { COMMON, EXIT, type Command } from './command.js';
import { decryptionFlags, decryptionKeysFrom, encryptionFlags, encryptionFrom } from './ocicrypt-options.js';
import { copyRegistryFlags, registryOptionsFrom } from './registry-options.js';
import { maxEntriesFlag, maxEntriesFrom } from './limit-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';

/** SRC and DST from `copy SRC DST` (skopeo's form) or `copy --from SRC --to DST` (convert's); mixing them is a usage error. */
export function copyEnds(positionals: string[], from: string | undefined, to: string | undefined): { from: string; to: string } {
  if (from === undefined && to === undefined) {
    if (positionals.length !== 2) throw new UsageError(`copy needs SRC and DST: copy SRC DST, or copy --from SRC --to DST${positionals.length > 2 ? ` (got ${positionals.length} arguments)` : ''}`);
    return { from: positionals[0]!, to: positionals[1]! };
  }
  if (positionals.length) throw new UsageError(`copy: give SRC and DST either as arguments or as --from/--to, not both (unexpected argument ${JSON.stringify(positionals[0])})`);
  if (from === undefined || to === undefined) throw new UsageError(`copy --${from === undefined ? 'to' : 'from'} needs --${from === undefined ? 'from SRC' : 'to DST'} too`);
  return { from, to };
}

export const copyCommand: Command = {
  name: 'copy',
  summary: 'copy an image between transports, verifying every blob',
  usage: 'enclavify copy [options] SRC DST   |   enclavify copy [options] --from SRC --to DST',
  description: `Copies the image SRC to DST without a Docker daemon. SRC and DST are given as skopeo takes
them (two arguments) or as convert takes them (--from SRC --to DST); not both. Layers are streamed, verified
against their digests and written byte-identical; Docker schema2 images are written with OCI
media types. A copy of an OCI image keeps its manifest digest. Before anything is written, the
layers' contents are checked (tar well formed, diff_ids, no entry escaping the root or writing
through a symlink): an unsafe image is refused and no destination is left behind. Prints the manifest digest of the
written image on stdout.

With a docker:// source, layers stream from the registry (resumed when a download is cut); with a
docker:// destination, blobs the registry has are skipped, blobs another repository of the same
registry holds are mounted, the rest are uploaded, and the manifest is pushed last, as it is (a
registry copy keeps the Docker or OCI manifest and its digest). --json lists every blob pushed,
mounted or skipped. Credentials are looked up per registry (auth files, credential helpers)
unless --creds/--src-creds/--dest-creds give them; see docs/registry.md.

Layer encryption (ocicrypt, as skopeo): --encryption-key jwe:PUB.pem encrypts every layer (or the
--encrypt-layer ones) for that public key; provider:attestation-agent:keyid=kbs:///R/T/T wraps the
layer keys under a key-encryption key released by a CoCo Trustee KBS (keypath=FILE, or generated
into --kek-out). --decryption-key opens an encrypted source; without it an encrypted image is
copied as it is only with --no-validate (its contents cannot be checked). See docs/ocicrypt.md.

References:
  ${ACCEPTED_FORMS}`,
  options: {
    from: { kind: 'string', arg: 'SRC', help: 'the image to copy (instead of the first argument)' },
    to: { kind: 'string', arg: 'DST', help: 'where to write it (instead of the second argument)' },
    'no-validate': { kind: 'flag', help: 'skip the check of layer contents (tar well-formed, diff_ids, no ".." or writes through symlinks); blob digests are still verified' },
    platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index (default linux/<host arch>)' },
    ...copyRegistryFlags,
    ...decryptionFlags,
    ...encryptionFlags,
    ...sourceFlags,
    ...maxEntriesFlag,
    ...COMMON,
  },
  async run(args, io) {
    const { from, to } = copyEnds(args.positionals, args.strings.from, args.strings.to);
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : undefined;
    const encryption = await encryptionFrom(args);
    const decryptionKeys = await decryptionKeysFrom(args);
    let res;
    try {
      res = await copyImage(from, to, {
        ...(encryption ? { encryption: encryption.encryption } : {}), ...(decryptionKeys ? { decryptionKeys } : {}),
        platform, validate: !args.flags['no-validate'], onProgress: io.progress, signal: io.signal, ...sourceOptionsFrom(args), ...maxEntriesFrom(args),
        sourceRegistry: registryOptionsFrom(args, 'src'), destinationRegistry: registryOptionsFrom(args, 'dest'),
      });
    } catch (e) {
      // A generated KEK of an image that was not written would only mislead.
      if (encryption?.kekFile) await rm(encryption.kekFile, { force: true });
      throw e;
    }
    io.out(args.flags.json ? JSON.stringify({ digest: res.digest, size: res.size, mediaType: res.mediaType, destination: res.reference, ...(encryption?.kekFile ? { kekFile: encryption.kekFile } : {}), ...(res.blobs ? { blobs: res.blobs } : {}) }) : res.digest);
    return EXIT.ok;
  },
};
