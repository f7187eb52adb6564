/**
 * JWE (RFC 7516) as ocicrypt's `jwe` key wrapper writes and reads it (keywrap/jwe, go-jose):
 * content encryption A256GCM; the content key wrapped per recipient with RSA-OAEP-256 (RSA keys)
 * or ECDH-ES+A256KW (EC keys on P-256, P-384, P-521); flattened JSON for one recipient, general
 * JSON for several. Decryption also takes what go-jose writes or accepts: RSA-OAEP (SHA-1),
 * ECDH-ES+A128KW/A192KW, A128GCM/A192GCM, the compact form, `epk` in any header. Written on
 * node:crypto only: every primitive is OpenSSL's.
 */
import { createCipheriv, createDecipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';

type Json = Record<string, unknown>;

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
function unb64u(s: unknown, what: string): Buffer {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: not base64url`);
  return Buffer.from(s, 'base64url');
}

const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const KW_BITS: Record<string, number> = { 'ECDH-ES+A128KW': 128, 'ECDH-ES+A192KW': 192, 'ECDH-ES+A256KW': 256 };
const GCM_BITS: Record<string, number> = { A128GCM: 128, A192GCM: 192, A256GCM: 256 };

/** RFC 7518 §4.6.2: the Concat KDF with SHA-256, empty PartyUInfo/PartyVInfo (as go-jose without apu/apv). */
export function concatKdf(z: Uint8Array, bits: number, algorithmId: string, apu: Uint8Array = new Uint8Array(), apv: Uint8Array = new Uint8Array()): Buffer {
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const lp = (b: Uint8Array) => Buffer.concat([u32(b.length), b]);
  const other = Buffer.concat([lp(Buffer.from(algorithmId)), lp(apu), lp(apv), u32(bits)]);
  const out: Buffer[] = [];
  for (let i = 1; out.length * 256 < bits; i++) out.push(createHash('sha256').update(u32(i)).update(z).update(other).digest());
  return Buffer.concat(out).subarray(0, bits / 8);
}

function aesKw(kek: Buffer, data: Buffer, unwrap: boolean): Buffer {
  const name = `id-aes${kek.length * 8}-wrap`;
  const c = unwrap ? createDecipheriv(name, kek, KW_IV) : createCipheriv(name, kek, KW_IV);
  return Buffer.concat([c.update(data), c.final()]);
}

/** The JWK curve name of an EC key, or undefined for other keys. */
function ecCurve(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  return (key.export({ format: 'jwk' }) as { crv?: string }).crv;
}

function wrapFor(recipient: KeyObject, cek: Buffer): { header: Json; encryptedKey: Buffer } {
  if (recipient.asymmetricKeyType === 'rsa') {
    return { header: { alg: 'RSA-OAEP-256' }, encryptedKey: publicEncrypt({ key: recipient, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek) };
  }
  const crv = ecCurve(recipient);
  if (crv === 'P-256' || crv === 'P-384' || crv === 'P-521') {
    const eph = generateKeyPairSync('ec', { namedCurve: crv });
    const z = diffieHellman({ privateKey: eph.privateKey, publicKey: recipient });
    const kek = concatKdf(z, 256, 'ECDH-ES+A256KW');
    const { kty, x, y } = eph.publicKey.export({ format: 'jwk' }) as Json;
    return { header: { alg: 'ECDH-ES+A256KW', epk: { kty, crv, x, y } }, encryptedKey: aesKw(kek, cek, false) };
  }
  throw new EnclavifyError('OCICRYPT_BAD_KEY', `a JWE recipient must be an RSA key or an EC key on P-256, P-384 or P-521 (got ${recipient.asymmetricKeyType ?? 'unknown'}${crv ? ' ' + crv : ''})`);
}

/**
 * Encrypts `plaintext` to every recipient (public keys). One recipient: flattened JSON with the
 * recipient's header in the protected header (as go-jose writes it); several: general JSON.
 */
export function jweEncrypt(plaintext: Uint8Array, recipients: readonly KeyObject[]): string {
  if (!recipients.length) throw new EnclavifyError('OCICRYPT_BAD_KEY', 'JWE encryption needs at least one recipient');
  const cek = randomBytes(32);
  const iv = randomBytes(12);
  const wrapped = recipients.map((r) => wrapFor(r, cek));
  const protectedHeader = wrapped.length === 1 ? { ...wrapped[0].header, enc: 'A256GCM' } : { enc: 'A256GCM' };
  const p = b64u(Buffer.from(JSON.stringify(protectedHeader)));
  const c = createCipheriv('aes-256-gcm', cek, iv);
  c.setAAD(Buffer.from(p, 'ascii'));
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  const body = { iv: b64u(iv), ciphertext: b64u(ciphertext), tag: b64u(c.getAuthTag()) };
  if (wrapped.length === 1) return JSON.stringify({ protected: p, encrypted_key: b64u(wrapped[0].encryptedKey), ...body });
  return JSON.stringify({ protected: p, recipients: wrapped.map((w) => ({ header: w.header, encrypted_key: b64u(w.encryptedKey) })), ...body });
}

interface ParsedJwe { protectedB64: string; shared: Json; recipients: Array<{ header: Json; encryptedKey: Buffer }>; iv: Buffer; ciphertext: Buffer; tag: Buffer; aad?: string }

function parseJwe(text: string, what: string): ParsedJwe {
  const t = text.trim();
  if (/^[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){4}$/.test(t)) {
    const [p, k, iv, c, tag] = t.split('.');
    return { protectedB64: p, shared: {}, recipients: [{ header: {}, encryptedKey: unb64u(k, what) }], iv: unb64u(iv, what), ciphertext: unb64u(c, what), tag: unb64u(tag, what) };
  }
  let j: Json;
  try {
    j = JSON.parse(t) as Json;
  } catch {
    throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: not a JWE (neither JSON nor the compact form)`);
  }
  if (typeof j !== 'object' || j === null) throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: not a JWE object`);
  const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
  const recips = Array.isArray(j.recipients)
    ? j.recipients.map((r: unknown) => ({ header: obj(obj(r).header), encryptedKey: unb64u(obj(r).encrypted_key ?? '', what) }))
    : [{ header: obj(j.header), encryptedKey: unb64u(j.encrypted_key ?? '', what) }];
  return {
    protectedB64: typeof j.protected === 'string' ? j.protected : '',
    shared: obj(j.unprotected),
    recipients: recips,
    iv: unb64u(j.iv, what),
    ciphertext: unb64u(j.ciphertext, what),
    tag: unb64u(j.tag, what),
    ...(typeof j.aad === 'string' ? { aad: j.aad } : {}),
  };
}

function unwrapWith(header: Json, encryptedKey: Buffer, key: KeyObject): Buffer | undefined {
  const alg = header.alg;
  try {
    if ((alg === 'RSA-OAEP' || alg === 'RSA-OAEP-256') && key.asymmetricKeyType === 'rsa') {
      return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, encryptedKey);
    }
    if (typeof alg === 'string' && KW_BITS[alg] && key.asymmetricKeyType === 'ec') {
      const epk = createPublicKey({ key: header.epk as import('node:crypto').JsonWebKey, format: 'jwk' });
      const z = diffieHellman({ privateKey: key, publicKey: epk });
      const apu = typeof header.apu === 'string' ? Buffer.from(header.apu, 'base64url') : undefined;
      const apv = typeof header.apv === 'string' ? Buffer.from(header.apv, 'base64url') : undefined;
      return aesKw(concatKdf(z, KW_BITS[alg], alg, apu, apv), encryptedKey, true);
    }
  } catch {
    return undefined; // not this key (or a broken recipient): try the next
  }
  return undefined;
}

/**
 * Decrypts a JWE with the first private key that opens one of its recipients. Throws
 * `OCICRYPT_NO_KEY` when none does, `OCICRYPT_BAD_JWE` when it is malformed or fails its tag.
 */
export function jweDecrypt(text: string, keys: readonly KeyObject[], what: string): Buffer {
  const j = parseJwe(text, what);
  let prot: Json = {};
  if (j.protectedB64) {
    try {
      prot = JSON.parse(unb64u(j.protectedB64, what).toString('utf8')) as Json;
    } catch {
      throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: its protected header is not JSON`);
    }
  }
  for (const r of j.recipients) {
    const header = { ...j.shared, ...r.header, ...prot };
    const enc = header.enc;
    if (typeof enc !== 'string' || !GCM_BITS[enc]) throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: content encryption ${String(enc)} is not supported (A128GCM, A192GCM, A256GCM)`);
    if (header.zip !== undefined) throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: compressed JWE payloads are not supported`);
    for (const key of keys) {
      const cek = unwrapWith(header, r.encryptedKey, key);
      if (!cek || cek.length * 8 !== GCM_BITS[enc]) continue;
      const d = createDecipheriv(`aes-${GCM_BITS[enc]}-gcm` as 'aes-256-gcm', cek, j.iv);
      d.setAAD(Buffer.from(j.aad === undefined ? j.protectedB64 : `${j.protectedB64}.${j.aad}`, 'ascii'));
      d.setAuthTag(j.tag);
      try {
        return Buffer.concat([d.update(j.ciphertext), d.final()]);
      } catch {
        throw new EnclavifyError('OCICRYPT_BAD_JWE', `${what}: the JWE fails its authentication tag (it was changed)`);
      }
    }
  }
  throw new EnclavifyError('OCICRYPT_NO_KEY', `${what}: none of the given decryption keys is a recipient`);
}
