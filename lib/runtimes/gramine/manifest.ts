/**
 * The Gramine manifest of a converted image, as a TOML document: entrypoint and argv, environment,
 * working directory, mounts (root, encrypted regions, tmpfs), trusted and allowed files, enclave
 * settings, development keys, and the user's fragment merged last. Checked against Gramine 1.9's
 * schema before it is written.
 */
import type { TomlTable, TomlValue } from 'smol-toml';
import { toml } from '../../oci/lazy-deps.js';
import { EnclavifyError } from '../../oci/errors.js';
import { stringifyManifestToml } from '../../sgx/toml-writer.js';
import type { LoaderEnvValue } from './env.js';
import { allowedCovers } from './files.js';
import { checkGramineManifest } from './schema.js';

/** A `fs.mounts` entry. */
export type GramineMount =
  | { type: 'encrypted'; path: string; uri: string; key_name: string }
  | { type: 'tmpfs'; path: string }
  | { type: 'chroot'; path: string; uri: string };

/** A `sgx.trusted_files` entry with its hash. */
export interface TrustedFile {
  uri: string;
  sha256: string;
}

/** Enclave settings (`sgx.*`). */
export interface EnclaveSettings {
  /** `sgx.enclave_size`, a power of two such as `"1G"`. */
  enclaveSize: string;
  /** `sgx.max_threads`. */
  maxThreads: number;
  /** `sgx.debug`: a debug enclave can be inspected by the host; never in production. */
  debug: boolean;
  /** `sgx.edmm_enable` (SGX2 dynamic memory). */
  edmm: boolean;
  /** `sgx.remote_attestation`. */
  remoteAttestation: 'none' | 'dcap';
  /** `sgx.isvprodid`, `sgx.isvsvn`. */
  isvProdId: number;
  isvSvn: number;
}

/** Everything {@link buildGramineManifest} needs. */
export interface GramineManifestInput {
  /** `libos.entrypoint`: the ELF Gramine starts (absolute, symlinks resolved). */
  entrypoint: string;
  /** `loader.argv`, fixed in the manifest (measured). */
  argv: string[];
  /** `loader.env`, in order. */
  env: Map<string, LoaderEnvValue>;
  /** `fs.start_dir`. */
  startDir?: string | undefined;
  /** `loader.uid` / `loader.gid`. */
  uid?: number | undefined;
  gid?: number | undefined;
  /** `loader.entrypoint.uri`: the LibOS (`file:.../libsysdb.so`). */
  loaderEntrypointUri: string;
  /**
   * `loader.entrypoint.sha256`: the LibOS's hash, written so that Gramine's own tools
   * (`gramine-sgx-sign --chroot`, `gramine-manifest`) need not hash the URI on the host, where
   * the file is missing or is another Gramine's. Dropped if a fragment changes the URI.
   */
  loaderEntrypointSha256?: string | undefined;
  /** `loader.log_level` (default `error`). */
  logLevel?: 'none' | 'error' | 'warning' | 'debug' | 'trace' | 'all' | undefined;
  mounts: GramineMount[];
  trusted: TrustedFile[];
  allowed: string[];
  /** `fs.insecure__keys` (development only). Values are 32 hex digits. */
  insecureKeys?: Record<string, string> | undefined;
  sgx: EnclaveSettings;
  /**
   * `sys.enable_sigterm_injection`: let Gramine deliver the host's SIGTERM once (graceful stop).
   * Host input: the host picks the moment.
   */
  sigtermInjection?: boolean | undefined;
  /** The user's TOML fragment (text or parsed), merged last. */
  fragment?: string | TomlTable | undefined;
}

/** Keys whose arrays a fragment extends instead of replacing. */
const APPENDED = new Set(['fs.mounts', 'sgx.trusted_files', 'sgx.allowed_files']);

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Parses a TOML fragment; errors name the line. */
export function parseFragment(text: string, name = 'manifest fragment'): TomlTable {
  try {
    return toml().parse(text, { integersAsBigInt: true });
  } catch (e) {
    if (e instanceof toml().TomlError) throw new EnclavifyError('GRAMINE_BAD_FRAGMENT', `${name}: invalid TOML at line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

/** Plain JS numbers in a fragment object become TOML integers when they are integral. */
function toToml(v: unknown): TomlValue {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(toToml);
  if (isTable(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toToml(x)]));
  return v as TomlValue;
}

/**
 * Merges `frag` into `doc`: tables recursively; `fs.mounts`, `sgx.trusted_files` and
 * `sgx.allowed_files` are extended (a mount with the same `path` or a file with the same URI is
 * replaced); any other value replaces the generated one.
 */
export function mergeFragment(doc: TomlTable, frag: TomlTable, at = ''): void {
  for (const [k, v] of Object.entries(frag)) {
    const key = at ? `${at}.${k}` : k;
    const cur = doc[k];
    if (isTable(v) && isTable(cur)) mergeFragment(cur, v, key);
    else if (APPENDED.has(key) && Array.isArray(v) && Array.isArray(cur)) {
      const id = (x: TomlValue): string => (typeof x === 'string' ? x : isTable(x) ? String(x.path ?? x.uri) : JSON.stringify(x));
      const ids = new Set(v.map(id));
      doc[k] = [...cur.filter((x) => !ids.has(id(x))), ...v];
    } else doc[k] = v;
  }
}

/** The manifest as a TOML table, before the fragment is merged. */
function baseDocument(m: GramineManifestInput): TomlTable {
  const env: TomlTable = {};
  for (const [k, v] of m.env) env[k] = typeof v === 'string' ? v : { passthrough: true };
  const loader: TomlTable = {
    entrypoint: { uri: m.loaderEntrypointUri, ...(m.loaderEntrypointSha256 ? { sha256: m.loaderEntrypointSha256 } : {}) },
    log_level: m.logLevel ?? 'error',
    argv: m.argv,
    env,
  };
  if (m.uid !== undefined) loader.uid = BigInt(m.uid);
  if (m.gid !== undefined) loader.gid = BigInt(m.gid);
  const fs: TomlTable = {
    root: { type: 'chroot', uri: 'file:/' },
    mounts: m.mounts.map((x) => ({ ...x }) as TomlTable),
  };
  if (m.startDir) fs.start_dir = m.startDir;
  if (m.insecureKeys && Object.keys(m.insecureKeys).length) fs.insecure__keys = { ...m.insecureKeys };
  return {
    libos: { entrypoint: m.entrypoint },
    loader,
    fs,
    ...(m.sigtermInjection ? { sys: { enable_sigterm_injection: true } } : {}),
    sgx: {
      debug: m.sgx.debug,
      edmm_enable: m.sgx.edmm,
      enclave_size: m.sgx.enclaveSize,
      max_threads: BigInt(m.sgx.maxThreads),
      remote_attestation: m.sgx.remoteAttestation,
      isvprodid: BigInt(m.sgx.isvProdId),
      isvsvn: BigInt(m.sgx.isvSvn),
      trusted_files: m.trusted.map((t) => ({ uri: t.uri, sha256: t.sha256 })),
      allowed_files: [...m.allowed],
    },
  };
}

/**
 * Gramine checks allowed files before trusted ones, so an allowed entry that covers a trusted path
 * (e.g. a fragment adding `file:/app/`) silently disables that file's hash check: one message per
 * such entry (at most five).
 */
export function allowedOverTrusted(doc: TomlTable): string[] {
  const sgx = (doc.sgx ?? {}) as TomlTable;
  const allowed = ((sgx.allowed_files ?? []) as string[]).map((a) => a.replace(/^file:/, ''));
  const out: string[] = [];
  for (const t of (sgx.trusted_files ?? []) as TomlValue[]) {
    const uri = typeof t === 'string' ? t : isTable(t) ? String(t.uri) : '';
    const p = uri.replace(/^file:/, '');
    const hit = allowed.find((a) => allowedCovers(a, p));
    if (hit) out.push(`sgx.allowed_files entry file:${hit} covers trusted file ${uri}, which would switch off its hash check (Gramine checks allowed files first)`);
    if (out.length >= 5) break;
  }
  return out;
}

/** Result of {@link buildGramineManifest}. */
export interface GramineManifest {
  /** The parsed document (integers as bigints). */
  doc: TomlTable;
  /** The `.manifest` text. */
  text: string;
}

/**
 * Builds the manifest, merges the user's fragment, checks the result against Gramine 1.9's schema
 * (`GRAMINE_BAD_MANIFEST` listing every problem) and serialises it.
 */
export function buildGramineManifest(m: GramineManifestInput): GramineManifest {
  const doc = baseDocument(m);
  if (m.fragment !== undefined) {
    const frag = typeof m.fragment === 'string' ? parseFragment(m.fragment) : (toToml(m.fragment) as TomlTable);
    mergeFragment(doc, frag);
    const ep = (doc.loader as TomlTable | undefined)?.entrypoint;
    // Another LibOS from the fragment: our hash is not its hash.
    if (isTable(ep) && ep.uri !== m.loaderEntrypointUri && ep.sha256 === m.loaderEntrypointSha256) delete ep.sha256;
  }
  const problems = checkGramineManifest(doc);
  if (!problems.length) problems.push(...allowedOverTrusted(doc));
  if (problems.length) {
    throw new EnclavifyError('GRAMINE_BAD_MANIFEST', `the Gramine manifest would not be accepted by Gramine 1.9: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`);
  }
  const text = `# Gramine manifest generated by enclavify (Gramine 1.9 syntax). Do not edit: its hash is\n# part of the enclave measurement once signed.\n\n${stringifyManifestToml(doc)}`;
  return { doc, text };
}
