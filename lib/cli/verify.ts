/** `enclavify verify IMAGE [--keys FILE]`: offline check of a converted image's file protection. */
import { readKeysFile } from '../protect/keys.js';
import { verify } from '../protect/verify.js';
import { formatFindings } from './format.js';
import { openImage } from '../store/images.js';
import { parsePlatform } from '../store/oci-layout.js';
import { UsageError } from './args.js';
import { COMMON, EXIT, type Command } from './command.js';
import { decryptionFlags, decryptionKeysFrom } from './ocicrypt-options.js';
import { bundleKeks, verifyOcicrypt, type OcicryptReport } from '../ocicrypt/verify.js';
import { decryptingImage, isEncryptedImage } from '../ocicrypt/layers.js';
import type { DecryptionKeys } from '../ocicrypt/keys.js';
import { registryFlags, registryOptionsFrom } from './registry-options.js';
import { maxEntriesFlag, maxEntriesFrom } from './limit-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a converted image against its protection manifest (and its keys)',
  usage: 'enclavify verify [options] IMAGE [--keys FILE] [--manifest-sha256 HEX] [--require-pin]',
  description: `Checks, without running the image, that its file protection is intact: with --keys, every encrypted
file decrypts with its key, bound to its path, to the recorded size (every 4 KiB node's MAC is
checked) and is the ciphertext the protection manifest records; every authenticated file has its
recorded SHA-256; no file under an encrypted directory is plaintext, in any layer (entries hidden
by later layers included); every recorded file, symlink, directory, device and FIFO has its
recorded mode, owner, group and xattrs; no hidden layer entry holds an encrypted file's
plaintext; nothing unlisted was added and nothing listed is missing.

Without --keys (conversions without --dir write no keys file: every SCONE conversion and
authenticate-only Gramine ones) every authenticated and plain record is checked all the same;
encrypted files are not decrypted (their ciphertext is still compared with the digest the
manifest records) and are reported as "not checked".

The protection manifest must be the one the keys file records (its SHA-256), unless
--manifest-sha256 gives another digest (a policy's, or the one convert printed). Without
either the manifest is not pinned: whoever changed a file could have rewritten the manifest too,
so verify warns (exit 0 when there is no finding); --require-pin makes that an error. Records a later step added to it (e.g. the
signature files of enclavify sign) are accepted and listed after the findings; --strict-manifest
reports them instead. Keys no region uses, and regions without a key, are findings.

Exit codes: 0 intact, 3 findings (listed on stdout, one per line: PATH: CODE: reason; with
--require-pin an unpinned manifest too), 2 usage error, 1 the image or the keys file cannot be read.

A keys file readable by group or others gives a warning (stderr; "warnings" with --json). A keys
file reached through a symlink is refused unless every directory on the way is writable only by
its owner (root or you), or is sticky with the entry owned by root or you (a Kubernetes Secret
volume passes); --allow-keys-symlink overrides.`,
  options: {
    keys: { kind: 'string', arg: 'FILE', help: 'the keys file written by enclavify convert: also decrypt and check the encrypted files (default: they are reported as not checked)' },
    'manifest-sha256': { kind: 'string', arg: 'HEX', help: 'the protection manifest digest to pin (a policy\'s, or the one convert printed; default: the one the keys file records)' },
    'require-pin': { kind: 'flag', help: 'an unpinned manifest (no --manifest-sha256, no keys file digest) is an error, not a warning' },
    'strict-manifest': { kind: 'flag', help: 'report records added to the manifest after the pinned one (e.g. by enclavify sign) as findings' },
    platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index' },
    trustee: { kind: 'string', arg: 'DIR', help: 'ocicrypt/CoCo: check the Trustee bundle (OUTPUT/trustee) against the image, and open its layers with the bundle\'s KEKs' },
    'expect-encrypted': { kind: 'flag', help: 'ocicrypt: every layer must be encrypted (a plain layer is a finding)' },
    'allow-keys-symlink': { kind: 'flag', help: 'read a keys file reached through a symlink even where other users could redirect the link' },
    ...registryFlags,
    ...decryptionFlags,
    ...sourceFlags,
    ...maxEntriesFlag,
    ...COMMON,
  },
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('verify needs one image reference');
    const keysPath = args.strings.keys;
    const expected = args.strings['manifest-sha256'];
    if (expected !== undefined && !/^(sha256:)?[0-9a-fA-F]{64}$/.test(expected)) throw new UsageError('--manifest-sha256 needs 64 hex digits');
    const requirePin = args.flags['require-pin'] === true;
    if (requirePin && !keysPath && expected === undefined) throw new UsageError('--require-pin needs the digest to pin: --manifest-sha256 HEX (printed by convert, or a policy\'s), or --keys FILE');
    const keys = keysPath ? await readKeysFile(keysPath, { allowSymlink: args.flags['allow-keys-symlink'] === true }) : undefined;
    const warnings = keys?.warnings ?? [];
    for (const w of warnings) io.err(`enclavify verify: WARNING: ${w}`);
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : undefined;
    const raw = await openImage(args.positionals[0], { platform, signal: io.signal, registry: registryOptionsFrom(args, 'one'), onProgress: io.progress, ...sourceOptionsFrom(args) });
    // ocicrypt layers: their structure always, their decryption with --decryption-key or the
    // bundle's KEKs; the protection manifest can only be checked when every layer opens.
    const trustee = args.strings.trustee;
    const given = await decryptionKeysFrom(args);
    let oc: OcicryptReport | undefined;
    let layerKeys: DecryptionKeys | undefined = given;
    if (trustee || args.flags['expect-encrypted'] || (await isEncryptedImage(raw))) {
      const keks = trustee ? await bundleKeks(trustee, raw) : [];
      if (keks.length) layerKeys = { jwe: given?.jwe ?? [], keks: [...(given?.keks ?? []), ...keks] };
      oc = await verifyOcicrypt(raw, { keys: layerKeys, bundleDir: trustee, expectEncrypted: args.flags['expect-encrypted'] ? 'all' : undefined, signal: io.signal });
      const lines = oc.findings.map((f) => `${f.layer < 0 ? 'trustee bundle' : `layer ${f.layer}`}: ${f.code}: ${f.message}`);
      if (oc.layers.some((l) => l.encrypted && !l.decrypted)) {
        // Layers that did not open: nothing more can be read.
        if (args.flags.json) io.out(JSON.stringify({ image: raw.name, ok: oc.ok, ocicrypt: oc, protection: 'not checked: encrypted layers without a key' }));
        else io.out([...lines, `ocicrypt: ${oc.layers.filter((l) => l.encrypted).length} of ${oc.layers.length} layers encrypted; protection manifest not checked: ${trustee || given ? 'the keys given do not open every layer' : 'give --decryption-key or --trustee to open the layers'}`].join('\n'));
        return oc.ok ? EXIT.ok : EXIT.findings;
      }
      if (!args.flags.json) io.out([...lines, `ocicrypt: ${oc.layers.filter((l) => l.encrypted).length} of ${oc.layers.length} layers encrypted, every one decrypted and checked (HMAC, digest, diff_id)${trustee ? `; Trustee bundle ${trustee} ${oc.findings.some((f) => f.layer < 0) ? 'has findings' : 'agrees with the image'}` : ''}`].join('\n'));
    }
    const image = layerKeys ? await decryptingImage(raw, layerKeys) : raw;
    const r = await verify(image, {
      ...(keys ? { keys } : {}),
      ...(expected ? { expectedManifestSha256: expected.replace(/^sha256:/, '') } : {}),
      ...(args.flags['strict-manifest'] ? { amendments: 'refuse' as const } : {}),
      onProgress: io.progress,
      signal: io.signal,
      ...maxEntriesFrom(args),
    });
    const unpinned = r.manifestSha256 !== undefined && !r.pin;
    if (args.flags.json) io.out(JSON.stringify({ image: image.name, ...r, ok: r.ok && (oc?.ok ?? true), pinned: !unpinned, warnings, ...(oc ? { ocicrypt: oc } : {}) }));
    else io.out(formatFindings(r));
    if (unpinned) {
      io.err(`enclavify verify: ${requirePin ? 'error' : 'warning'}: the protection manifest (sha256:${r.manifestSha256}) is not pinned: a changed file with a rewritten manifest would pass; give --manifest-sha256 with the digest convert printed or the policy holds${requirePin ? '' : ' (--require-pin makes this an error)'}`);
      if (requirePin) return EXIT.findings;
    }
    return r.ok && (oc?.ok ?? true) ? EXIT.ok : EXIT.findings;
  },
};
