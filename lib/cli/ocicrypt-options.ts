/** The ocicrypt flags, as skopeo spells them: --encryption-key, --encrypt-layer, --decryption-key. */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Image } from '../oci/image.js';
import { EnclavifyError } from '../oci/errors.js';
import type { Parsed, OptionSpec } from './args.js';
import { UsageError } from './args.js';
// ocicrypt itself loads only when one of its flags is given (a plain copy need not compile it).
import type { DecryptionKeys } from '../ocicrypt/keys.js';
import type { EncryptImageOptions, ResolvedRecipient } from '../ocicrypt/layers.js';

/** `--decryption-key`: every command that opens an image. */
export const decryptionFlags: Record<string, OptionSpec> = {
  'decryption-key': { kind: 'list', arg: 'FILE[:PASS]', help: 'open ocicrypt-encrypted layers: a JWE private key (PEM PKCS#8/PKCS#1/SEC1, DER or JWK) or a 32-byte attestation-agent KEK file; repeatable' },
};

/** `--encryption-key`, `--encrypt-layer`, `--kek-out`: commands that write an image. */
export const encryptionFlags: Record<string, OptionSpec> = {
  'encryption-key': { kind: 'list', arg: 'SPEC', help: 'encrypt layers (ocicrypt) for jwe:PUB.pem, or provider:attestation-agent:keyid=kbs:///REPO/TYPE/TAG[::keypath=KEK][::algorithm=A256GCM|A256CTR]; repeatable' },
  'encrypt-layer': { kind: 'list', arg: 'N', help: 'encrypt only layer N (0-based, negative counts from the top); repeatable; default every layer' },
  'kek-out': { kind: 'string', arg: 'FILE', help: 'where a generated attestation-agent KEK is written (mode 0600, never overwritten); needed when keypath= is not given' },
};

/** The keys of `--decryption-key`, or undefined when none is given. */
export async function decryptionKeysFrom(args: Parsed): Promise<DecryptionKeys | undefined> {
  const specs = args.lists['decryption-key'] ?? [];
  return specs.length ? (await import('../ocicrypt/keys.js')).readDecryptionKeys(specs) : undefined;
}

/** The image with its encrypted layers opened by `--decryption-key` (unchanged without it). */
export async function decryptedFrom(image: Image, args: Parsed): Promise<Image> {
  const keys = await decryptionKeysFrom(args);
  return keys ? (await import('../ocicrypt/layers.js')).decryptingImage(image, keys) : image;
}

/** Writes a new KEK to `file` (exclusive create, mode 0600). */
async function writeKek(file: string, kek: Uint8Array): Promise<void> {
  const fh = await open(file, 'wx', 0o600).catch((e: NodeJS.ErrnoException) => {
    throw new EnclavifyError(e.code === 'EEXIST' ? 'EXISTS' : 'WRITE_FAILED', `--kek-out ${file}: ${e.code === 'EEXIST' ? 'exists; a KEK is never overwritten' : 'cannot be created'}`);
  });
  try {
    await fh.writeFile(kek);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The encryption `--encryption-key` asks for, or undefined. An attestation-agent recipient
 * without `keypath` gets one KEK for the whole image (coco_keyprovider draws one per layer, losing
 * all but the last), written to `--kek-out`.
 */
export async function encryptionFrom(args: Parsed): Promise<{ encryption: EncryptImageOptions; kekFile?: string } | undefined> {
  const specs = args.lists['encryption-key'] ?? [];
  const layerArgs = args.lists['encrypt-layer'] ?? [];
  if (!specs.length) {
    if (layerArgs.length) throw new UsageError('--encrypt-layer needs --encryption-key');
    if (args.strings['kek-out']) throw new UsageError('--kek-out needs --encryption-key provider:attestation-agent:…');
    return undefined;
  }
  const layers = layerArgs.map((v) => {
    if (!/^-?\d+$/.test(v)) throw new UsageError(`--encrypt-layer ${v}: not an integer (0-based; negative counts from the top)`);
    return Number(v);
  });
  const recipients: ResolvedRecipient[] = [];
  let kek: Uint8Array | undefined;
  let kekFile: string | undefined;
  const { parseRecipient } = await import('../ocicrypt/keys.js');
  for (const spec of specs) {
    const r = await parseRecipient(spec);
    if (r.kind === 'jwe') recipients.push(r);
    else if (r.kek) recipients.push({ ...r, kek: r.kek });
    else {
      kekFile = args.strings['kek-out'];
      if (!kekFile) throw new UsageError(`--encryption-key ${spec}: give keypath=FILE, or --kek-out FILE for a generated key-encryption key (it must be registered in the KBS under ${r.kid})`);
      kek ??= randomBytes(32);
      recipients.push({ ...r, kek });
    }
  }
  if (kek && kekFile) await writeKek(kekFile, kek);
  return { encryption: { recipients, layers }, ...(kekFile ? { kekFile } : {}) };
}
