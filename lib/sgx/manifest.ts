/**
 * Gramine manifests as the SGX signer sees them: the defaults `gramine-sgx-sign` adds when it turns
 * `app.manifest` into `app.manifest.sgx` (the file that is measured into MRENCLAVE), and the
 * `sgx.*` settings that decide the enclave layout and the SIGSTRUCT attributes.
 */
import type { TomlTable, TomlValue } from 'smol-toml';
import { toml } from '../oci/lazy-deps.js';
import { EnclavifyError } from '../oci/errors.js';
import {
  DEFAULT_ENCLAVE_SIZE_NO_EDMM, DEFAULT_ENCLAVE_SIZE_WITH_EDMM, DEFAULT_THREAD_NUM,
  SGX_FLAGS_DEBUG, SGX_FLAGS_MASK_CONST, SGX_FLAGS_MODE64BIT, SGX_MISCSELECT_EXINFO,
  SGX_MISCSELECT_MASK_CONST, SGX_XFRM_AMX, SGX_XFRM_AVX, SGX_XFRM_AVX512, SGX_XFRM_LEGACY,
  SGX_XFRM_MASK_CONST, SGX_XFRM_MPX, SGX_XFRM_PKRU,
} from './constants.js';
import { stringifyManifestToml } from './toml-writer.js';

/** Where Debian/Ubuntu packages of Gramine install the LibOS, Gramine's default `loader.entrypoint.uri`. */
export const DEFAULT_LOADER_ENTRYPOINT_URI = 'file:/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so';

/** SGX attributes (SECS.ATTRIBUTES): FLAGS and XFRM, 64 bits each. */
export interface SgxAttributes {
  flags: bigint;
  xfrm: bigint;
}

/** The manifest's `sgx.*` settings the signer uses, after Gramine's defaults. */
export interface GramineSgxSettings {
  /** `sgx.enclave_size` in bytes. */
  enclaveSize: number;
  /** `sgx.max_threads`. */
  maxThreads: number;
  /** `sgx.edmm_enable`. */
  edmm: boolean;
  /** `sgx.debug`. */
  debug: boolean;
  /** `sgx.isvprodid`. */
  isvProdId: number;
  /** `sgx.isvsvn`. */
  isvSvn: number;
  /** `sgx.remote_attestation` (`"none"`, `"dcap"`). */
  remoteAttestation: string;
  /** SIGSTRUCT ATTRIBUTES: MODE64BIT, DEBUG if `sgx.debug`; XFRM from `sgx.cpu_features`. */
  attributes: SgxAttributes;
  /** SIGSTRUCT ATTRIBUTEMASK. */
  attributeMask: SgxAttributes;
  /** SIGSTRUCT MISCSELECT: EXINFO if `sgx.use_exinfo`. */
  miscSelect: number;
  /** SIGSTRUCT MISCMASK. */
  miscMask: number;
}

/** Options of {@link expandGramineManifest}. */
export interface ExpandManifestOptions {
  /**
   * SHA-256 (hex) of a trusted file or of the loader entrypoint the manifest lists without a
   * hash; return undefined if unknown (then expansion fails naming the URI). Without it every
   * entry must already carry its `sha256`.
   */
  resolveSha256?: ((uri: string) => string | undefined) | undefined;
  /** `loader.entrypoint.uri` when the manifest has none. Default {@link DEFAULT_LOADER_ENTRYPOINT_URI}. */
  defaultLoaderEntrypointUri?: string | undefined;
  /** Name of the manifest for error messages. Default `manifest`. */
  name?: string | undefined;
}

const manifestError = (name: string, what: string): EnclavifyError =>
  new EnclavifyError('SGX_BAD_MANIFEST', `${name}: ${what}`);

/** Parses TOML, integers as bigints so that `1` and `1.0` stay distinct when written back. */
function parseToml(text: string, name: string): TomlTable {
  try {
    return toml().parse(text, { integersAsBigInt: true });
  } catch (e) {
    if (e instanceof toml().TomlError) throw manifestError(name, `invalid TOML at line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** `t[key]` as a table, created (appended) if absent, like Python's `dict.setdefault`. */
function tableAt(t: TomlTable, key: string, path: string, name: string): TomlTable {
  if (!(key in t)) t[key] = {};
  const v = t[key];
  if (!isTable(v)) throw manifestError(name, `${path} must be a table`);
  return v;
}

function setDefault(t: TomlTable, key: string, value: TomlValue): void {
  if (!(key in t)) t[key] = value;
}

/** Gramine's defaults for the `sgx` table, added in the order Gramine adds them. */
function applySgxDefaults(doc: TomlTable, name: string): TomlTable {
  const sgx = tableAt(doc, 'sgx', 'sgx', name);
  setDefault(sgx, 'trusted_files', []);
  setDefault(sgx, 'max_threads', BigInt(DEFAULT_THREAD_NUM));
  setDefault(sgx, 'isvprodid', 0n);
  setDefault(sgx, 'isvsvn', 0n);
  setDefault(sgx, 'remote_attestation', 'none');
  setDefault(sgx, 'debug', false);
  setDefault(sgx, 'enable_stats', false);
  setDefault(sgx, 'edmm_enable', false);
  setDefault(sgx, 'enclave_size', sgx.edmm_enable === true ? DEFAULT_ENCLAVE_SIZE_WITH_EDMM : DEFAULT_ENCLAVE_SIZE_NO_EDMM);
  setDefault(sgx, 'use_exinfo', false);
  const cpu = tableAt(sgx, 'cpu_features', 'sgx.cpu_features', name);
  setDefault(cpu, 'avx', 'unspecified');
  setDefault(cpu, 'avx512', 'unspecified');
  setDefault(cpu, 'amx', 'unspecified');
  setDefault(cpu, 'mpx', 'disabled');
  setDefault(cpu, 'pkru', 'disabled');
  if (!Array.isArray(sgx.trusted_files)) throw manifestError(name, 'sgx.trusted_files must be an array');
  return sgx;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/**
 * Produces the `.manifest.sgx` text `gramine-sgx-sign` would write for `manifestToml`: Gramine's
 * `sgx.*` defaults, `loader.entrypoint` (URI and hash), and `sgx.trusted_files` normalised to
 * `{ uri, sha256 }` tables, deduplicated by URI. Written in the layout of Gramine's TOML writer,
 * so for the same input the bytes (hence MRENCLAVE) normally match Gramine's.
 *
 * Pure: no file is read. Trusted files and the loader entrypoint must carry their SHA-256 or be
 * resolvable through `opts.resolveSha256`; directory entries (`file:/dir/`) must be expanded by
 * the caller first.
 * @throws EnclavifyError `SGX_BAD_MANIFEST` naming the key or URI that is wrong.
 */
export function expandGramineManifest(manifestToml: string, opts: ExpandManifestOptions = {}): string {
  const name = opts.name ?? 'manifest';
  const doc = parseToml(manifestToml, name);
  const sgx = applySgxDefaults(doc, name);

  const hashOf = (uri: string, where: string): string => {
    const h = opts.resolveSha256?.(uri);
    if (h === undefined) throw manifestError(name, `${where} ${JSON.stringify(uri)} has no sha256 and none was provided`);
    return h;
  };
  const checkUri = (uri: unknown, where: string): string => {
    if (typeof uri !== 'string') throw manifestError(name, `${where}: uri must be a string`);
    if (!uri.startsWith('file:')) throw manifestError(name, `${where} ${JSON.stringify(uri)}: only file: URIs are supported`);
    return uri;
  };
  const checkHash = (h: unknown, uri: string, where: string): string => {
    if (typeof h !== 'string' || !SHA256_HEX.test(h)) throw manifestError(name, `${where} ${JSON.stringify(uri)}: sha256 must be 64 hex digits`);
    return h;
  };

  // Trusted files: one { uri, sha256 } per URI, first occurrence's position, hashes must agree.
  const trusted = new Map<string, string | undefined>();
  for (const entry of sgx.trusted_files as TomlValue[]) {
    let uri: string;
    let sha: string | undefined;
    if (typeof entry === 'string') {
      uri = checkUri(entry, 'sgx.trusted_files entry');
    } else if (isTable(entry) && 'uri' in entry) {
      const { uri: u, sha256: s, ...rest } = entry;
      uri = checkUri(u, 'sgx.trusted_files entry');
      if (Object.keys(rest).length > 0) throw manifestError(name, `sgx.trusted_files entry ${JSON.stringify(uri)} has unknown keys: ${Object.keys(rest).join(', ')}`);
      if (s !== undefined) sha = checkHash(s, uri, 'sgx.trusted_files entry');
    } else {
      throw manifestError(name, 'sgx.trusted_files entries must be URIs or { uri, sha256 } tables');
    }
    if (uri.endsWith('/')) throw manifestError(name, `sgx.trusted_files entry ${JSON.stringify(uri)} is a directory; list its files instead`);
    if (trusted.has(uri)) {
      const old = trusted.get(uri);
      if (old !== undefined) {
        if (sha !== undefined && sha !== old) throw manifestError(name, `sgx.trusted_files lists ${JSON.stringify(uri)} twice with different sha256`);
        continue;
      }
    }
    trusted.set(uri, sha);
  }
  sgx.trusted_files = [...trusted].map(([uri, sha]) => ({ uri, sha256: sha ?? checkHash(hashOf(uri, 'trusted file'), uri, 'trusted file') }));

  // The LibOS Gramine starts in the enclave, itself a measured file.
  const loader = tableAt(doc, 'loader', 'loader', name);
  const entrypoint = tableAt(loader, 'entrypoint', 'loader.entrypoint', name);
  if (!('uri' in entrypoint)) entrypoint.uri = opts.defaultLoaderEntrypointUri ?? DEFAULT_LOADER_ENTRYPOINT_URI;
  const epUri = checkUri(entrypoint.uri, 'loader.entrypoint');
  if (!('sha256' in entrypoint)) entrypoint.sha256 = hashOf(epUri, 'loader.entrypoint');
  checkHash(entrypoint.sha256, epUri, 'loader.entrypoint');

  readSettings(sgx, name); // refuse now what signing would refuse later
  return stringifyManifestToml(doc);
}

/**
 * Reads the `sgx.*` settings of an expanded manifest (`.manifest.sgx`), applying Gramine's
 * defaults for absent keys, and derives the SIGSTRUCT attributes from them.
 * @throws EnclavifyError `SGX_BAD_MANIFEST` for invalid TOML or values.
 */
export function readGramineSgxSettings(manifestSgx: Uint8Array | string, name = 'manifest.sgx'): GramineSgxSettings {
  let text: string;
  if (typeof manifestSgx === 'string') text = manifestSgx;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(manifestSgx);
    } catch {
      throw manifestError(name, 'is not valid UTF-8');
    }
  }
  const doc = parseToml(text, name);
  return readSettings(applySgxDefaults(doc, name), name);
}

function readSettings(sgx: TomlTable, name: string): GramineSgxSettings {
  const int = (key: string, min: number, max: number): number => {
    const v = sgx[key];
    if (typeof v !== 'bigint' || v < BigInt(min) || v > BigInt(max)) {
      throw manifestError(name, `sgx.${key} must be an integer from ${min} to ${max}`);
    }
    return Number(v);
  };
  const bool = (key: string): boolean => {
    const v = sgx[key];
    if (typeof v !== 'boolean') throw manifestError(name, `sgx.${key} must be true or false`);
    return v;
  };
  if (typeof sgx.remote_attestation !== 'string') throw manifestError(name, 'sgx.remote_attestation must be a string');
  if (typeof sgx.enclave_size !== 'string') throw manifestError(name, 'sgx.enclave_size must be a string such as "1G"');
  const enclaveSize = parseSize(sgx.enclave_size, name);
  const debug = bool('debug');
  const useExinfo = bool('use_exinfo');
  bool('enable_stats');

  let flags = SGX_FLAGS_MODE64BIT;
  if (debug) flags |= SGX_FLAGS_DEBUG;
  let xfrm = SGX_XFRM_LEGACY;
  let xfrmMask = SGX_XFRM_MASK_CONST;
  const cpu = sgx.cpu_features as TomlTable;
  // AVX, AVX-512 and AMX may be left to the platform; MPX and PKRU must be decided (security).
  const features: [string, bigint, boolean][] = [
    ['avx', SGX_XFRM_AVX, true], ['avx512', SGX_XFRM_AVX512, true], ['amx', SGX_XFRM_AMX, true],
    ['mpx', SGX_XFRM_MPX, false], ['pkru', SGX_XFRM_PKRU, false],
  ];
  for (const [feature, bits, mayBeUnspecified] of features) {
    if (!(feature in cpu)) continue;
    const v = cpu[feature];
    if (v === 'required') {
      xfrm |= bits;
      xfrmMask |= bits;
    } else if (v === 'disabled') {
      xfrm &= ~bits;
      xfrmMask |= bits;
    } else if (!(mayBeUnspecified && v === 'unspecified')) {
      throw manifestError(name, `sgx.cpu_features.${feature} must be ${mayBeUnspecified ? '"required", "disabled" or "unspecified"' : '"required" or "disabled"'}`);
    }
  }

  return {
    enclaveSize,
    maxThreads: int('max_threads', 1, 65535),
    edmm: bool('edmm_enable'),
    debug,
    isvProdId: int('isvprodid', 0, 0xffff),
    isvSvn: int('isvsvn', 0, 0xffff),
    remoteAttestation: sgx.remote_attestation,
    attributes: { flags, xfrm },
    attributeMask: { flags: SGX_FLAGS_MASK_CONST, xfrm: xfrmMask },
    miscSelect: useExinfo ? SGX_MISCSELECT_EXINFO : 0,
    miscMask: SGX_MISCSELECT_MASK_CONST,
  };
}

/**
 * `sgx.enclave_size` in bytes: an integer (decimal, 0x, 0o or 0b) with an optional `K`, `M` or `G`
 * suffix, as Gramine reads it. SGX needs a power of two, which Gramine only checks at start-up;
 * we refuse other sizes here.
 */
export function parseSize(value: string, name = 'manifest'): number {
  const m = /^\s*(\+?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[1-9][0-9_]*|0+)\s*([KMG]?)$/.exec(value);
  const bad = (): never => {
    throw manifestError(name, `sgx.enclave_size ${JSON.stringify(value)} must be a power of two such as "256M" or "4G"`);
  };
  if (!m || /__|_$|^0[xob]_?$/i.test(m[2])) bad();
  const digits = m![2].replace(/_/g, '');
  const n = BigInt(/^0[oO]/.test(digits) ? `0o${digits.slice(2)}` : digits);
  const scale = { '': 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n }[m![3] as '' | 'K' | 'M' | 'G'];
  const size = n * scale;
  if (size <= 0n || (size & (size - 1n)) !== 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) bad();
  return Number(size);
}
