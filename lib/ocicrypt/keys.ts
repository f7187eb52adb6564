/**
 * Keys for ocicrypt, named as skopeo names them: recipients `jwe:PUBKEY` (PEM/DER SubjectPublicKeyInfo,
 * PKCS#1 RSA, or a JWK) and `provider:attestation-agent:keyid=kbs:///R/T/T[::keypath=F][::algorithm=A]`;
 * decryption keys `FILE[:PASSPHRASE]` holding a JWE private key (PKCS#8, PKCS#1, SEC1 — which
 * skopeo silently ignores — or a JWK) or a 32-byte KEK for attestation-agent layers.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EnclavifyError } from '../oci/errors.js';
import { parseKbsId, type AaAlgorithm } from './keyprovider-aa.js';

/** Where an encrypted layer's key goes. */
export type Recipient =
  | { readonly kind: 'jwe'; readonly key: KeyObject; readonly name: string }
  | { readonly kind: 'attestation-agent'; readonly kid: string; readonly algorithm: AaAlgorithm; readonly kek?: Uint8Array | undefined; readonly keypath?: string | undefined };

/** What can open encrypted layers. */
export interface DecryptionKeys {
  /** JWE private keys. */
  readonly jwe: readonly KeyObject[];
  /** 32-byte KEKs for attestation-agent packets, tried in order (a KEK file names no kid). */
  readonly keks: readonly Uint8Array[];
}

function jweUsable(key: KeyObject, what: string): KeyObject {
  const t = key.asymmetricKeyType;
  if (t === 'rsa') return key;
  if (t === 'ec') {
    const crv = (key.export({ format: 'jwk' }) as { crv?: string }).crv;
    if (crv === 'P-256' || crv === 'P-384' || crv === 'P-521') return key;
  }
  throw new EnclavifyError('OCICRYPT_BAD_KEY', `${what}: a JWE key must be RSA or EC on P-256/P-384/P-521 (this is ${t ?? 'not an asymmetric key'})`);
}

/** A public key from PEM, DER or JWK bytes. */
export function parsePublicKey(bytes: Uint8Array, what: string): KeyObject {
  const text = Buffer.from(bytes).toString('utf8').trim();
  try {
    if (text.startsWith('{')) return jweUsable(createPublicKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' }), what);
    if (text.includes('-----BEGIN')) {
      if (/PRIVATE KEY-----/.test(text)) throw new EnclavifyError('OCICRYPT_BAD_KEY', `${what}: this is a private key; encryption takes the public key`);
      return jweUsable(createPublicKey(text), what);
    }
    return jweUsable(createPublicKey({ key: Buffer.from(bytes), format: 'der', type: 'spki' }), what);
  } catch (e) {
    if (e instanceof EnclavifyError) throw e;
    throw new EnclavifyError('OCICRYPT_BAD_KEY', `${what}: not a public key in PEM, DER or JWK form`);
  }
}

/** A private key from PEM (PKCS#8, PKCS#1, SEC1, optionally encrypted), DER or JWK bytes. */
export function parsePrivateKey(bytes: Uint8Array, what: string, passphrase?: string): KeyObject {
  const text = Buffer.from(bytes).toString('utf8').trim();
  try {
    if (text.startsWith('{')) return jweUsable(createPrivateKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' }), what);
    if (text.includes('-----BEGIN')) return jweUsable(createPrivateKey({ key: text, ...(passphrase !== undefined ? { passphrase } : {}) }), what);
    for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
      try {
        return jweUsable(createPrivateKey({ key: Buffer.from(bytes), format: 'der', type }), what);
      } catch (e) {
        if (e instanceof EnclavifyError) throw e;
      }
    }
  } catch (e) {
    if (e instanceof EnclavifyError) throw e;
  }
  throw new EnclavifyError('OCICRYPT_BAD_KEY', `${what}: not a private key in PEM, DER or JWK form (or a wrong passphrase)`);
}

/**
 * Parses one `--encryption-key` value (skopeo's syntax). `jwe:PATH` reads the public key;
 * `provider:attestation-agent:keyid=…[::keypath=FILE][::algorithm=A256GCM|A256CTR]` reads the KEK
 * from `keypath` when given (else one is generated for the image by the caller).
 */
export async function parseRecipient(spec: string): Promise<Recipient> {
  if (spec.startsWith('jwe:')) {
    const file = spec.slice(4);
    if (!file) throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${spec}: name the public key file (jwe:PUB.pem)`);
    const bytes = await readFile(file).catch(() => { throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key: cannot read the public key ${file}`); });
    return { kind: 'jwe', key: parsePublicKey(bytes, file), name: file };
  }
  const aa = 'provider:attestation-agent';
  if (spec === aa || spec.startsWith(aa + ':')) {
    const params = new Map<string, string>();
    for (const part of spec.slice(aa.length + 1).split('::').filter(Boolean)) {
      const i = part.indexOf('=');
      if (i < 0) throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${aa}: parameter "${part}" is not KEY=VALUE`);
      const k = part.slice(0, i);
      if (!['keyid', 'keypath', 'algorithm'].includes(k)) throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${aa}: unknown parameter ${k} (keyid, keypath, algorithm)`);
      params.set(k, part.slice(i + 1));
    }
    const kid = params.get('keyid');
    if (!kid) throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${aa}: keyid=kbs:///REPO/TYPE/TAG is required (the guest only fetches kbs:// resources)`);
    parseKbsId(kid, '--encryption-key keyid');
    const alg = params.get('algorithm') ?? 'A256GCM';
    if (alg !== 'A256GCM' && alg !== 'A256CTR') throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${aa}: algorithm must be A256GCM or A256CTR (got ${alg})`);
    const keypath = params.get('keypath');
    const kek = keypath === undefined ? undefined : await readKek(keypath);
    return { kind: 'attestation-agent', kid, algorithm: alg, kek, keypath };
  }
  if (spec.startsWith('provider:')) throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${spec}: the only key provider built in is attestation-agent (CoCo); other providers need an ocicrypt provider server`);
  throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `--encryption-key ${spec}: expected jwe:PUBKEY or provider:attestation-agent:keyid=kbs:///…`);
}

/** A KEK file: exactly 32 raw bytes (as coco_keyprovider and the KBS resource hold it). */
export async function readKek(file: string): Promise<Uint8Array> {
  const b = await readFile(file).catch(() => { throw new EnclavifyError('OCICRYPT_BAD_KEY', `cannot read the key-encryption key ${file}`); });
  if (b.length !== 32) throw new EnclavifyError('OCICRYPT_BAD_KEY', `${file}: a key-encryption key is 32 raw bytes (this file has ${b.length})`);
  return new Uint8Array(b);
}

/**
 * Reads `--decryption-key` files: each is a JWE private key (`FILE[:PASSPHRASE]`) or, when it is
 * exactly 32 bytes and not a key in any text form, an attestation-agent KEK.
 */
export async function readDecryptionKeys(specs: readonly string[]): Promise<DecryptionKeys> {
  const jwe: KeyObject[] = [];
  const keks: Uint8Array[] = [];
  for (const spec of specs) {
    let file = spec;
    let pass: string | undefined;
    const b = await readFile(file).catch(async () => {
      const i = spec.lastIndexOf(':');
      if (i > 0) {
        file = spec.slice(0, i);
        pass = spec.slice(i + 1);
        return readFile(file).catch(() => undefined);
      }
      return undefined;
    });
    if (!b) throw new EnclavifyError('OCICRYPT_BAD_KEY', `--decryption-key: cannot read ${file}`);
    if (b.length === 32 && !b.toString('latin1').includes('-----') && b[0] !== 0x7b) keks.push(new Uint8Array(b));
    else jwe.push(parsePrivateKey(b, file, pass));
  }
  return { jwe, keks };
}
