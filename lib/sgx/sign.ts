/**
 * Signing a Gramine 1.9 enclave without Gramine's tools: expand the manifest, measure the enclave
 * (MRENCLAVE), build the SIGSTRUCT and sign it with an RSA-3072 (e = 3) key, held locally as PEM
 * or remotely (HSM, cloud KMS) behind a callback. Same inputs, same bytes as `gramine-sgx-sign`.
 */
import { createPrivateKey, createPublicKey, sign as rsaSign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';
import { SE_KEY_SIZE, SGX_RSA_EXPONENT, SGX_RSA_KEY_BITS } from './constants.js';
import { expandGramineManifest, readGramineSgxSettings, type ExpandManifestOptions, type SgxAttributes } from './manifest.js';
import { measureGramineEnclave, type Measurement } from './measure.js';
import {
  buildSigstruct, parseSigstruct, setSigstructSignature, sigstructSigningData, verifySigstructSignature,
} from './sigstruct.js';

/** A local signing key: RSA-3072 with public exponent 3 (PEM, PKCS#1 or PKCS#8, or a KeyObject). */
export interface PrivateKeySigner {
  privateKey: string | Uint8Array | KeyObject;
  /** Passphrase of an encrypted PEM key. */
  passphrase?: string | undefined;
}

/**
 * A remote signing key (HSM, cloud KMS). `sign` receives the 256 bytes a SIGSTRUCT signs and
 * returns the RSA PKCS#1 v1.5 signature with SHA-256 over them (the KMS hashes the data, or you
 * pass it SHA-256(data) as a pre-computed digest), 384 bytes big-endian as RSA APIs return it.
 */
export interface CallbackSigner {
  /** The key's public half: PEM (SPKI or PKCS#1), DER SPKI, JWK or KeyObject. RSA-3072, e = 3. */
  publicKey: string | Uint8Array | JsonWebKey | KeyObject;
  sign: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
}

/** Who signs the SIGSTRUCT. */
export type EnclaveSigner = PrivateKeySigner | CallbackSigner;

/** Input of {@link signGramineEnclave}. Give exactly one of `manifest` and `manifestSgx`. */
export interface SignGramineOptions {
  /** The manifest TOML (trusted-file hashes filled in); expanded with {@link expandGramineManifest}. */
  manifest?: string;
  /** Options for expanding `manifest`. */
  expand?: ExpandManifestOptions;
  /** An already expanded `.manifest.sgx`: measured byte for byte as given. */
  manifestSgx?: Uint8Array | string;
  /** Gramine's SGX PAL, `libpal.so`, of the Gramine version the image runs (1.9). */
  pal: Uint8Array;
  /** The enclave signing key. */
  signer: EnclaveSigner;
  /** SIGSTRUCT date, `YYYY-MM-DD` or a Date (UTC). Fix it for reproducible builds. */
  date: string | Date;
}

/** Result of {@link signGramineEnclave}. */
export interface SignedEnclave {
  /** The signed SIGSTRUCT (`.sig` file), 1808 bytes. */
  sigstruct: Uint8Array;
  /** MRENCLAVE, lowercase hex. */
  mrenclave: string;
  /** MRSIGNER (SHA-256 of the little-endian modulus), lowercase hex. */
  mrsigner: string;
  /** `sgx.isvprodid`. */
  isvProdId: number;
  /** `sgx.isvsvn`. */
  isvSvn: number;
  /** `sgx.debug`: a debug enclave offers no confidentiality. */
  debug: boolean;
  /** SIGSTRUCT ATTRIBUTES (FLAGS, XFRM). */
  attributes: SgxAttributes;
  /** The `.manifest.sgx` bytes that were measured; ship exactly these next to the `.sig`. */
  manifestSgx: Uint8Array;
  /** The enclave pages in the order measured (Gramine's verbose "Memory:" list). */
  areas: Measurement['areas'];
}

const keyError = (what: string, cause?: unknown): EnclavifyError =>
  new EnclavifyError('SGX_BAD_KEY', `enclave signing key: ${what}`, cause === undefined ? undefined : { cause });

/** Refuses anything but RSA-3072 with e = 3 (EINIT accepts nothing else); returns the modulus, big-endian. */
function sgxModulus(key: KeyObject): Uint8Array {
  if (key.asymmetricKeyType !== 'rsa') {
    throw keyError(`expected an RSA key (3072 bits, exponent 3), got ${key.asymmetricKeyType ?? key.type}`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (details.modulusLength !== SGX_RSA_KEY_BITS) {
    throw keyError(`expected an RSA key of ${SGX_RSA_KEY_BITS} bits, got ${details.modulusLength} bits`);
  }
  if (details.publicExponent !== BigInt(SGX_RSA_EXPONENT)) {
    throw keyError(`expected RSA public exponent ${SGX_RSA_EXPONENT}, got ${details.publicExponent}`);
  }
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  const n = Buffer.from(jwk.n as string, 'base64url');
  const modulus = new Uint8Array(SE_KEY_SIZE);
  modulus.set(n.subarray(n.length - Math.min(n.length, SE_KEY_SIZE)), SE_KEY_SIZE - Math.min(n.length, SE_KEY_SIZE));
  return modulus;
}

function loadPrivateKey(s: PrivateKeySigner): KeyObject {
  let key: KeyObject;
  if (typeof s.privateKey === 'object' && 'asymmetricKeyType' in s.privateKey) key = s.privateKey as KeyObject;
  else {
    try {
      key = createPrivateKey({ key: Buffer.from(s.privateKey as string | Uint8Array), format: 'pem', passphrase: s.passphrase });
    } catch (e) {
      throw keyError('cannot read the PEM private key (wrong format or passphrase)', e);
    }
  }
  if (key.type !== 'private') throw keyError(`expected a private key, got a ${key.type} key`);
  return key;
}

function loadPublicKey(k: CallbackSigner['publicKey']): KeyObject {
  if (typeof k === 'object' && 'asymmetricKeyType' in k && typeof (k as KeyObject).export === 'function') {
    const key = k as KeyObject;
    return key.type === 'public' ? key : createPublicKey(key);
  }
  try {
    if (typeof k === 'string') return createPublicKey(k);
    if (k instanceof Uint8Array) return createPublicKey({ key: Buffer.from(k), format: 'der', type: 'spki' });
    return createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw keyError('cannot read the public key of the callback signer', e);
  }
}

/**
 * Signs the 256-byte SIGSTRUCT signing data. Returns the modulus and signature, both big-endian.
 * The signature is checked against the public key, so a misbehaving HSM/KMS is caught here.
 */
async function rsaSignSgx(signer: EnclaveSigner, data: Uint8Array): Promise<{ modulus: Uint8Array; signature: Uint8Array }> {
  if ('sign' in signer && typeof signer.sign === 'function') {
    const modulus = sgxModulus(loadPublicKey(signer.publicKey));
    const raw = await signer.sign(Uint8Array.from(data));
    if (!(raw instanceof Uint8Array) || raw.length === 0 || raw.length > SE_KEY_SIZE) {
      throw new EnclavifyError('SGX_BAD_SIGNATURE', `enclave signer callback returned ${raw instanceof Uint8Array ? `${raw.length} bytes` : typeof raw}, expected a ${SE_KEY_SIZE}-byte RSA signature`);
    }
    const signature = new Uint8Array(SE_KEY_SIZE);
    signature.set(raw, SE_KEY_SIZE - raw.length); // some APIs drop leading zero bytes
    if (Buffer.compare(Buffer.from(signature), Buffer.from(modulus)) >= 0) {
      throw new EnclavifyError('SGX_BAD_SIGNATURE', 'enclave signer callback returned a value that is not an RSA signature for its public key');
    }
    return { modulus, signature };
  }
  if ('privateKey' in signer) {
    const key = loadPrivateKey(signer);
    const modulus = sgxModulus(key);
    return { modulus, signature: new Uint8Array(rsaSign('sha256', data, key)) };
  }
  throw keyError('signer must have either privateKey, or publicKey and sign');
}

/**
 * Produces the SIGSTRUCT (`.sig`) and `.manifest.sgx` for a Gramine 1.9 enclave, as
 * `gramine-sgx-sign --manifest ... --libpal ... --key ... --date ...` would: the manifest is
 * expanded (or taken as given), the enclave measured, the SIGSTRUCT filled from the manifest's
 * `sgx.isvprodid`, `sgx.isvsvn`, `sgx.debug`, `sgx.use_exinfo` and `sgx.cpu_features`, and signed.
 * @throws EnclavifyError `SGX_BAD_KEY` for a key that is not RSA-3072 with e = 3 (never showing
 *   key material), `SGX_BAD_SIGNATURE` if the signer's signature does not verify,
 *   `SGX_BAD_MANIFEST`, `SGX_BAD_PAL`, `SGX_ENCLAVE_TOO_SMALL` for bad inputs.
 */
export async function signGramineEnclave(opts: SignGramineOptions): Promise<SignedEnclave> {
  if ((opts.manifest === undefined) === (opts.manifestSgx === undefined)) {
    throw new EnclavifyError('SGX_BAD_OPTIONS', 'signGramineEnclave: give exactly one of manifest and manifestSgx');
  }
  const manifestSgx = opts.manifest !== undefined
    ? new TextEncoder().encode(expandGramineManifest(opts.manifest, opts.expand))
    : typeof opts.manifestSgx === 'string' ? new TextEncoder().encode(opts.manifestSgx) : Uint8Array.from(opts.manifestSgx!);

  const settings = readGramineSgxSettings(manifestSgx);
  const { mrenclave, areas } = measureGramineEnclave({ manifestSgx, pal: opts.pal });
  const unsigned = buildSigstruct({
    mrenclave,
    isvProdId: settings.isvProdId,
    isvSvn: settings.isvSvn,
    attributes: settings.attributes,
    attributeMask: settings.attributeMask,
    miscSelect: settings.miscSelect,
    miscMask: settings.miscMask,
    date: opts.date,
  });
  const sigstruct = setSigstructSignature(unsigned, await rsaSignSgx(opts.signer, sigstructSigningData(unsigned)));
  if (!verifySigstructSignature(sigstruct)) {
    throw new EnclavifyError('SGX_BAD_SIGNATURE', 'enclave signer produced a signature that does not verify against its public key');
  }
  const parsed = parseSigstruct(sigstruct);
  return {
    sigstruct,
    mrenclave,
    mrsigner: parsed.mrsigner,
    isvProdId: settings.isvProdId,
    isvSvn: settings.isvSvn,
    debug: settings.debug,
    attributes: settings.attributes,
    manifestSgx,
    areas,
  };
}
