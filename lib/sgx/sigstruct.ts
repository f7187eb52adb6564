/**
 * SIGSTRUCT, the 1808-byte enclave signature structure EINIT checks (Intel SDM vol. 3D, "Enclave
 * Signature Structure"): read it, check its signature, and build one. All fields little-endian;
 * the RSA-3072 (e = 3) PKCS#1 v1.5 SHA-256 signature covers bytes 0..127 and 900..1027.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';
import { SE_KEY_SIZE, SGX_FLAGS_DEBUG, SGX_RSA_EXPONENT, SIGSTRUCT, SIGSTRUCT_HEADER, SIGSTRUCT_HEADER2 } from './constants.js';
import type { SgxAttributes } from './manifest.js';

/** The fields of a SIGSTRUCT, as {@link parseSigstruct} returns them. */
export interface Sigstruct {
  /** MRENCLAVE (ENCLAVEHASH), lowercase hex. */
  mrenclave: string;
  /** MRSIGNER: SHA-256 of the 384 modulus bytes as stored (little-endian), lowercase hex. */
  mrsigner: string;
  /** ISVPRODID. */
  isvProdId: number;
  /** ISVSVN. */
  isvSvn: number;
  /** True if ATTRIBUTES.DEBUG is set. */
  debug: boolean;
  /** ATTRIBUTES (FLAGS, XFRM). */
  attributes: SgxAttributes;
  /** ATTRIBUTEMASK. */
  attributeMask: SgxAttributes;
  /** MISCSELECT. */
  miscSelect: number;
  /** MISCMASK. */
  miscMask: number;
  /** DATE as `YYYY-MM-DD`, read as binary-coded decimal (the stored hex digits). */
  date: string;
  /** VENDOR: 0, or 0x8086 for Intel's own enclaves. */
  vendor: number;
  /** MODULUS, 384 bytes little-endian as stored. */
  modulus: Uint8Array;
  /** EXPONENT (3 for a valid SIGSTRUCT). */
  exponent: number;
  /** SIGNATURE, 384 bytes little-endian as stored. */
  signature: Uint8Array;
}

/** The signed content of a SIGSTRUCT, input of {@link buildSigstruct}. */
export interface SigstructBody {
  /** MRENCLAVE: 32 bytes or 64 hex digits. */
  mrenclave: Uint8Array | string;
  isvProdId: number;
  isvSvn: number;
  attributes: SgxAttributes;
  attributeMask: SgxAttributes;
  miscSelect: number;
  miscMask: number;
  /** Signing date, `YYYY-MM-DD` (stored as BCD, as Gramine and the Intel SDK do) or a Date (UTC). */
  date: string | Date;
  /** VENDOR, default 0. */
  vendor?: number;
}

const fail = (what: string): never => {
  throw new EnclavifyError('SGX_BAD_SIGSTRUCT', `SIGSTRUCT: ${what}`);
};

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Little-endian bytes to an unsigned integer. */
export function leToBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
}

/** An unsigned integer to `len` little-endian bytes. */
export function bigIntToLe(n: bigint, len: number): Uint8Array {
  if (n < 0n || n >> BigInt(len * 8) !== 0n) throw new EnclavifyError('BAD_ARGUMENT', `integer does not fit in ${len} bytes`);
  return Uint8Array.from(Buffer.from(n.toString(16).padStart(len * 2, '0'), 'hex').reverse());
}

function checkLength(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== SIGSTRUCT.SIZE) {
    fail(`expected ${SIGSTRUCT.SIZE} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

/**
 * Reads the fields of a SIGSTRUCT. Does not check the signature (see
 * {@link verifySigstructSignature}).
 * @throws EnclavifyError `SGX_BAD_SIGSTRUCT` if the size or the fixed headers are wrong.
 */
export function parseSigstruct(bytes: Uint8Array): Sigstruct {
  checkLength(bytes);
  if (!equalBytes(bytes.subarray(SIGSTRUCT.HEADER, SIGSTRUCT.HEADER + 16), SIGSTRUCT_HEADER)) fail('HEADER does not match');
  if (!equalBytes(bytes.subarray(SIGSTRUCT.HEADER2, SIGSTRUCT.HEADER2 + 16), SIGSTRUCT_HEADER2)) fail('HEADER2 does not match');
  const dv = view(bytes);
  const modulus = new Uint8Array(bytes.subarray(SIGSTRUCT.MODULUS, SIGSTRUCT.MODULUS + SE_KEY_SIZE));
  const hex2 = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  const flags = dv.getBigUint64(SIGSTRUCT.ATTRIBUTES, true);
  return {
    mrenclave: Buffer.from(bytes.subarray(SIGSTRUCT.ENCLAVE_HASH, SIGSTRUCT.ENCLAVE_HASH + 32)).toString('hex'),
    mrsigner: createHash('sha256').update(modulus).digest('hex'),
    isvProdId: dv.getUint16(SIGSTRUCT.ISV_PROD_ID, true),
    isvSvn: dv.getUint16(SIGSTRUCT.ISV_SVN, true),
    debug: (flags & SGX_FLAGS_DEBUG) !== 0n,
    attributes: { flags, xfrm: dv.getBigUint64(SIGSTRUCT.ATTRIBUTES + 8, true) },
    attributeMask: {
      flags: dv.getBigUint64(SIGSTRUCT.ATTRIBUTE_MASK, true),
      xfrm: dv.getBigUint64(SIGSTRUCT.ATTRIBUTE_MASK + 8, true),
    },
    miscSelect: dv.getUint32(SIGSTRUCT.MISC_SELECT, true),
    miscMask: dv.getUint32(SIGSTRUCT.MISC_MASK, true),
    date: `${hex2(dv.getUint16(SIGSTRUCT.DATE + 2, true), 4)}-${hex2(bytes[SIGSTRUCT.DATE + 1], 2)}-${hex2(bytes[SIGSTRUCT.DATE], 2)}`,
    vendor: dv.getUint32(SIGSTRUCT.VENDOR, true),
    modulus,
    exponent: dv.getUint32(SIGSTRUCT.EXPONENT, true),
    signature: new Uint8Array(bytes.subarray(SIGSTRUCT.SIGNATURE, SIGSTRUCT.SIGNATURE + SE_KEY_SIZE)),
  };
}

/** The 256 bytes the SIGSTRUCT signature covers: bytes 0..127 and 900..1027. */
export function sigstructSigningData(bytes: Uint8Array): Uint8Array {
  checkLength(bytes);
  const out = new Uint8Array(256);
  out.set(bytes.subarray(0, 128), 0);
  out.set(bytes.subarray(SIGSTRUCT.MISC_SELECT, SIGSTRUCT.MISC_SELECT + 128), 128);
  return out;
}

/** Q1 and Q2, the helper values EINIT uses to check the signature: s²/n and (s² mod n)·s/n. */
function quotients(s: bigint, n: bigint): { q1: bigint; q2: bigint } {
  const s2 = s * s;
  return { q1: s2 / n, q2: ((s2 % n) * s) / n };
}

/**
 * Checks a SIGSTRUCT the way EINIT would: fixed headers, exponent 3, a 3072-bit modulus, the
 * RSA PKCS#1 v1.5 SHA-256 signature over the signed parts, Q1/Q2 consistent with the signature,
 * and the unsigned reserved bytes zero (so no byte can change unnoticed). This proves the
 * structure was signed by the holder of the modulus' key, not that the key is one you trust:
 * compare `mrsigner` for that.
 * @returns false if anything does not hold.
 * @throws EnclavifyError `SGX_BAD_SIGSTRUCT` only if `bytes` is not 1808 bytes long.
 */
export function verifySigstructSignature(bytes: Uint8Array): boolean {
  checkLength(bytes);
  if (!equalBytes(bytes.subarray(SIGSTRUCT.HEADER, SIGSTRUCT.HEADER + 16), SIGSTRUCT_HEADER)) return false;
  if (!equalBytes(bytes.subarray(SIGSTRUCT.HEADER2, SIGSTRUCT.HEADER2 + 16), SIGSTRUCT_HEADER2)) return false;
  const dv = view(bytes);
  if (dv.getUint32(SIGSTRUCT.EXPONENT, true) !== SGX_RSA_EXPONENT) return false;
  if (bytes.subarray(SIGSTRUCT.RESERVED4, SIGSTRUCT.Q1).some((b) => b !== 0)) return false;

  const n = leToBigInt(bytes.subarray(SIGSTRUCT.MODULUS, SIGSTRUCT.MODULUS + SE_KEY_SIZE));
  const s = leToBigInt(bytes.subarray(SIGSTRUCT.SIGNATURE, SIGSTRUCT.SIGNATURE + SE_KEY_SIZE));
  if (n >> 3071n !== 1n || s >= n) return false;
  const { q1, q2 } = quotients(s, n);
  if (leToBigInt(bytes.subarray(SIGSTRUCT.Q1, SIGSTRUCT.Q1 + SE_KEY_SIZE)) !== q1) return false;
  if (leToBigInt(bytes.subarray(SIGSTRUCT.Q2, SIGSTRUCT.Q2 + SE_KEY_SIZE)) !== q2) return false;

  try {
    return verifyPkcs1Sha256(sigstructSigningData(bytes), n, s);
  } catch {
    return false;
  }
}

/** RSA PKCS#1 v1.5 SHA-256 verification with modulus `n` and exponent 3. */
export function verifyPkcs1Sha256(data: Uint8Array, n: bigint, signature: bigint): boolean {
  const b64u = (x: bigint): string => Buffer.from(x.toString(16).padStart(SE_KEY_SIZE * 2, '0'), 'hex').toString('base64url');
  const key = createPublicKey({ key: { kty: 'RSA', n: b64u(n), e: 'Aw' }, format: 'jwk' });
  const sig = Buffer.from(signature.toString(16).padStart(SE_KEY_SIZE * 2, '0'), 'hex');
  return verify('sha256', data, key, sig);
}

/** A signing date as Gramine writes it: each decimal field's digits read as hex (BCD). */
function encodeDate(date: string | Date): { year: number; month: number; day: number } {
  let y: string, m: string, d: string;
  if (date instanceof Date) {
    if (Number.isNaN(date.getTime())) fail('date is invalid');
    y = String(date.getUTCFullYear()).padStart(4, '0');
    m = String(date.getUTCMonth() + 1).padStart(2, '0');
    d = String(date.getUTCDate()).padStart(2, '0');
  } else {
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
    if (!match) fail(`date ${JSON.stringify(date)} must be YYYY-MM-DD`);
    [, y, m, d] = match!;
  }
  return { year: parseInt(y, 16), month: parseInt(m, 16), day: parseInt(d, 16) };
}

/**
 * Builds an unsigned SIGSTRUCT (1808 bytes): fixed headers and the signed fields from `body`;
 * MODULUS, EXPONENT, SIGNATURE, Q1 and Q2 are left zero for {@link setSigstructSignature}.
 */
export function buildSigstruct(body: SigstructBody): Uint8Array {
  const out = new Uint8Array(SIGSTRUCT.SIZE);
  const dv = view(out);
  const mr = typeof body.mrenclave === 'string' ? Buffer.from(body.mrenclave, 'hex') : body.mrenclave;
  if (mr.length !== 32 || (typeof body.mrenclave === 'string' && !/^[0-9a-fA-F]{64}$/.test(body.mrenclave))) fail('mrenclave must be 32 bytes (64 hex digits)');
  const u16 = (v: number, what: string): number => (Number.isInteger(v) && v >= 0 && v <= 0xffff ? v : fail(`${what} must be an integer from 0 to 65535`));
  const u32 = (v: number, what: string): number => (Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : fail(`${what} must be a 32-bit unsigned integer`));
  const date = encodeDate(body.date);

  out.set(SIGSTRUCT_HEADER, SIGSTRUCT.HEADER);
  dv.setUint32(SIGSTRUCT.VENDOR, u32(body.vendor ?? 0, 'vendor'), true);
  out[SIGSTRUCT.DATE] = date.day;
  out[SIGSTRUCT.DATE + 1] = date.month;
  dv.setUint16(SIGSTRUCT.DATE + 2, date.year, true);
  out.set(SIGSTRUCT_HEADER2, SIGSTRUCT.HEADER2);
  dv.setUint32(SIGSTRUCT.MISC_SELECT, u32(body.miscSelect, 'miscSelect'), true);
  dv.setUint32(SIGSTRUCT.MISC_MASK, u32(body.miscMask, 'miscMask'), true);
  dv.setBigUint64(SIGSTRUCT.ATTRIBUTES, body.attributes.flags, true);
  dv.setBigUint64(SIGSTRUCT.ATTRIBUTES + 8, body.attributes.xfrm, true);
  dv.setBigUint64(SIGSTRUCT.ATTRIBUTE_MASK, body.attributeMask.flags, true);
  dv.setBigUint64(SIGSTRUCT.ATTRIBUTE_MASK + 8, body.attributeMask.xfrm, true);
  out.set(mr, SIGSTRUCT.ENCLAVE_HASH);
  dv.setUint16(SIGSTRUCT.ISV_PROD_ID, u16(body.isvProdId, 'isvProdId'), true);
  dv.setUint16(SIGSTRUCT.ISV_SVN, u16(body.isvSvn, 'isvSvn'), true);
  return out;
}

/**
 * Returns a copy of `unsigned` with MODULUS, EXPONENT (3), SIGNATURE, Q1 and Q2 filled from an RSA
 * signature over {@link sigstructSigningData}. Both inputs big-endian, as RSA APIs give them.
 * Does not verify; call {@link verifySigstructSignature} on the result.
 */
export function setSigstructSignature(unsigned: Uint8Array, rsa: { modulus: Uint8Array; signature: Uint8Array }): Uint8Array {
  checkLength(unsigned);
  const n = BigInt(`0x${Buffer.from(rsa.modulus).toString('hex') || '0'}`);
  const s = BigInt(`0x${Buffer.from(rsa.signature).toString('hex') || '0'}`);
  if (n >> 3071n !== 1n) fail('modulus is not 3072 bits');
  if (s >= n) fail('signature is not smaller than the modulus');
  const { q1, q2 } = quotients(s, n);
  const out = Uint8Array.from(unsigned);
  out.set(bigIntToLe(n, SE_KEY_SIZE), SIGSTRUCT.MODULUS);
  view(out).setUint32(SIGSTRUCT.EXPONENT, SGX_RSA_EXPONENT, true);
  out.set(bigIntToLe(s, SE_KEY_SIZE), SIGSTRUCT.SIGNATURE);
  out.set(bigIntToLe(q1, SE_KEY_SIZE), SIGSTRUCT.Q1);
  out.set(bigIntToLe(q2, SE_KEY_SIZE), SIGSTRUCT.Q2);
  return out;
}
