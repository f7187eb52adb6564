/**
 * What in a Gramine manifest weakens the enclave against its host: `insecure__` options, debug
 * enclaves, relaxed file checks, environment and arguments the host supplies, memory shared with
 * the host, and code or trust anchors loaded from paths the host can write (allowed files).
 *
 * Used by the runtime (`insecure` risks are refused in production builds, `untrusted-code` ones
 * always), by `enclavify sign` (warnings; refused with `production`) and by `enclavify inspect`
 * (warnings; exit 3 with `--production`). Messages name the manifest key, never a key value.
 */
import { posix } from 'node:path';
import type { TomlTable, TomlValue } from 'smol-toml';
import { allowedCovers } from './files.js';
import { allowedOverTrusted } from './manifest.js';

/**
 * `insecure`: unsafe against a malicious host; refused in production builds.
 * `untrusted-code`: code or a trust anchor the host can supply; refused in every build.
 */
export type RiskKind = 'insecure' | 'untrusted-code';

/** One weakness of a manifest. */
export interface ManifestRisk {
  /** The manifest key, e.g. `sgx.file_check_policy`, `loader.env.LD_PRELOAD`. */
  key: string;
  kind: RiskKind;
  /** A sentence starting with the key, saying what the host can do. */
  message: string;
}

/** Options of {@link manifestRisks}. */
export interface ManifestRiskOptions {
  /**
   * Further directories the dynamic loader searches, checked like `LD_LIBRARY_PATH`: the image's
   * ld.so.conf directories, the directories searched for libraries the image lacks. `from` names
   * where the directory comes from (e.g. `/etc/ld.so.conf`) and becomes the risk's key.
   */
  librarySearchDirs?: ReadonlyArray<{ dir: string; from: string }> | undefined;
}

/** Variables glibc removes from the environment of setuid programs (sysdeps/generic/unsecvars.h), besides LD_* and MALLOC_*. */
const GLIBC_UNSECURE = new Set(['GCONV_PATH', 'GETCONF_DIR', 'GLIBC_TUNABLES', 'HOSTALIASES', 'LOCALDOMAIN', 'LOCPATH', 'NIS_PATH', 'NLSPATH', 'RESOLV_HOST_CONF', 'RES_OPTIONS', 'TMPDIR', 'TZDIR']);
/** Variables through which shells and language runtimes load code or options. */
const CODE_LOADING = new Set([
  'PATH', 'BASH_ENV', 'ENV',
  'PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONUSERBASE', 'PYTHONBREAKPOINT',
  'PERL5LIB', 'PERLLIB', 'PERL5OPT', 'PERL5DB', 'RUBYLIB', 'RUBYOPT', 'NODE_OPTIONS', 'NODE_PATH',
  'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'CLASSPATH', 'LUA_PATH', 'LUA_CPATH', 'LUA_INIT',
  'PHPRC', 'PHP_INI_SCAN_DIR', 'OPENSSL_CONF', 'OPENSSL_MODULES', 'OPENSSL_ENGINES',
]);
/** Variables that choose TLS trust anchors. */
const TRUST_ANCHORS = new Set(['SSL_CERT_FILE', 'SSL_CERT_DIR', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS']);

/**
 * Why taking variable `name` from the host (`{ passthrough = true }`) is refused in production, or
 * undefined when it is only unmeasured input. A deny list of names known to load code, pick trust
 * anchors or steer attestation; any other passthrough is still host input the program must check.
 */
export function hostEnvRisk(name: string): string | undefined {
  if (name.startsWith('LD_') || name.startsWith('MALLOC_') || GLIBC_UNSECURE.has(name)) return 'the dynamic loader or glibc reads it (glibc drops it for setuid programs): it can load code or change what is trusted';
  if (name === 'SECRET_PROVISION_SERVERS') return undefined; // the server is checked against the measured CA chain
  if (name.startsWith('SECRET_PROVISION_') || name.startsWith('RA_TLS_')) return 'it configures attestation or key provisioning (CA chain, key name, quote verification)';
  if (TRUST_ANCHORS.has(name)) return 'it chooses the TLS trust anchors';
  if (CODE_LOADING.has(name)) return 'a shell or language runtime loads code or options from where it points';
  return undefined;
}

/** Why Gramine calls some insecure__ options insecure (the rest get a generic sentence). */
const INSECURE_HINTS: Record<string, string> = {
  'loader.insecure__use_cmdline_argv': 'the host chooses the arguments',
  'loader.insecure__use_host_env': 'the host chooses the whole environment',
  'loader.insecure__disable_aslr': 'address space layout randomisation is off',
  'sgx.insecure__allow_memfaults_without_exinfo': 'memory faults are handled without the CPU-reported details, so the host can fake them',
  'sgx.insecure__rpc_thread_num': 'system calls are handed to untrusted host threads through shared memory (exitless mode)',
  'sys.insecure__allow_eventfd': 'eventfd is emulated by the host',
};

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const table = (v: unknown): TomlTable => (isTable(v) ? v : {});
const uriPath = (uri: string) => uri.replace(/^file:/, '');
const trimSlash = (p: string) => p.replace(/\/+$/, '') || '/';

/** Every `insecure__` key of the document, wherever it is (never descending into one: fs.insecure__keys holds keys). */
function insecureKeys(v: TomlValue, at: string, out: ManifestRisk[]): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => insecureKeys(x, `${at}[${i}]`, out));
    return;
  }
  if (!isTable(v)) return;
  for (const [k, x] of Object.entries(v)) {
    const key = at ? `${at}.${k}` : k;
    if (!k.startsWith('insecure__')) {
      insecureKeys(x, key, out);
      continue;
    }
    if (key === 'fs.insecure__keys') {
      out.push({ key, kind: 'insecure', message: `${key} (${Object.keys(table(x)).join(', ') || 'empty'}): the region keys are written into the manifest, so anyone with the image can decrypt it (development only)` });
    } else {
      const shown = typeof x === 'boolean' || typeof x === 'bigint' || typeof x === 'number' ? ` = ${String(x)}` : '';
      out.push({ key, kind: 'insecure', message: `${key}${shown}: an insecure__ option${INSECURE_HINTS[key] ? ` (${INSECURE_HINTS[key]})` : ''}, unsafe against a malicious host; remove it` });
    }
  }
}

/** What the host can write: allowed files and untrusted_shm mounts. */
function hostWritable(doc: TomlTable): string[] {
  const sgx = table(doc.sgx);
  const fs = table(doc.fs);
  const allowed = (Array.isArray(sgx.allowed_files) ? sgx.allowed_files : []).filter((a): a is string => typeof a === 'string').map(uriPath);
  const mounts = [...(Array.isArray(fs.mounts) ? fs.mounts : []), fs.root].filter(isTable);
  const shm = mounts.filter((m) => m.type === 'untrusted_shm').map((m) => (typeof m.path === 'string' ? `${trimSlash(m.path)}/` : '/'));
  return [...allowed, ...shm];
}

/** `file:` URIs of sgx.trusted_files. */
function trustedUris(doc: TomlTable): Set<string> {
  const t = table(doc.sgx).trusted_files;
  return new Set((Array.isArray(t) ? t : []).map((x) => (typeof x === 'string' ? x : isTable(x) ? String(x.uri) : '')).map((u) => `file:${posix.normalize(uriPath(u))}`));
}

/** The string value of `loader.env.NAME` (fixed or `{ value }`), or undefined for a passthrough or no value. */
function envValue(env: TomlTable, name: string): string | undefined {
  const v = env[name];
  if (typeof v === 'string') return v;
  if (isTable(v) && typeof v.value === 'string') return v.value;
  return undefined;
}

/**
 * Whether the host can put a file the loader opens from directory `dir`: an allowed entry covers
 * the directory, names a file directly in it, or lies under its `glibc-hwcaps/` subdirectories.
 */
function dirHostWritable(dir: string, writable: readonly string[]): string | undefined {
  const d = trimSlash(dir);
  return writable.find((a) => {
    if (allowedCovers(a, d) || allowedCovers(a, `${d}/`)) return true;
    const bare = trimSlash(a);
    return (!a.endsWith('/') && posix.dirname(bare) === d) || bare.startsWith(`${d === '/' ? '' : d}/glibc-hwcaps/`);
  });
}

/**
 * Lists what in `doc` (a parsed Gramine manifest, after any fragment) weakens the enclave against
 * its host. See {@link RiskKind}; an empty list means nothing was found.
 */
export function manifestRisks(doc: TomlTable, options: ManifestRiskOptions = {}): ManifestRisk[] {
  const out: ManifestRisk[] = [];
  const sgx = table(doc.sgx), loader = table(doc.loader), fs = table(doc.fs);
  const env = table(loader.env);
  const startDir = typeof fs.start_dir === 'string' && fs.start_dir.startsWith('/') ? fs.start_dir : '/';
  const absolute = (p: string) => posix.resolve(startDir, p === '' ? '.' : p);
  const writable = hostWritable(doc);
  const covered = (p: string) => writable.find((a) => allowedCovers(a, p));
  const trusted = trustedUris(doc);

  insecureKeys(doc, '', out);
  if (sgx.debug === true) out.push({ key: 'sgx.debug', kind: 'insecure', message: 'sgx.debug = true: a debug enclave, whose memory the host can read and change' });
  if (sgx.file_check_policy !== undefined && sgx.file_check_policy !== 'strict') {
    out.push({ key: 'sgx.file_check_policy', kind: 'insecure', message: `sgx.file_check_policy = ${JSON.stringify(sgx.file_check_policy)}: files that are neither trusted nor allowed are opened anyway, as the host supplies them` });
  }
  for (const [name, v] of Object.entries(env)) {
    if (!isTable(v) || v.passthrough !== true) continue;
    const why = hostEnvRisk(name);
    if (why) out.push({ key: `loader.env.${name}`, kind: 'insecure', message: `loader.env.${name} = { passthrough = true }: taken from the host, and ${why}` });
  }
  for (const k of ['argv_src_file', 'env_src_file'] as const) {
    const uri = loader[k];
    if (typeof uri !== 'string') continue;
    const p = absolute(uriPath(uri));
    const hit = covered(p);
    if (!trusted.has(`file:${p}`) || hit) {
      out.push({ key: `loader.${k}`, kind: 'insecure', message: `loader.${k} = ${JSON.stringify(uri)}: not a trusted file${hit ? ` (allowed entry file:${hit} covers it)` : ''}, so the host chooses the ${k === 'argv_src_file' ? 'arguments' : 'environment'}` });
    }
  }
  const mounts = Array.isArray(fs.mounts) ? fs.mounts : [];
  for (const [key, m] of [...mounts.map((m, i) => [`fs.mounts[${i}]`, m] as const), ['fs.root', fs.root] as const]) {
    if (isTable(m) && m.type === 'untrusted_shm') {
      out.push({ key, kind: 'insecure', message: `${key}: ${String(m.path ?? '/')} is an untrusted_shm mount, memory the host reads and writes at will` });
    }
  }
  for (const m of allowedOverTrusted(doc)) out.push({ key: 'sgx.allowed_files', kind: 'insecure', message: m });

  // Code and trust anchors: never from where the host writes.
  const ldPath = envValue(env, 'LD_LIBRARY_PATH');
  const dirs = [
    ...(ldPath ? ldPath.split(/[:;]/).map((d) => ({ d, from: 'loader.env.LD_LIBRARY_PATH' })) : []),
    ...(options.librarySearchDirs ?? []).map((x) => ({ d: x.dir, from: x.from })),
  ];
  const seen = new Set<string>();
  for (const { d, from } of dirs) {
    if (d.includes('$')) continue; // $ORIGIN and friends: resolved per object, not here
    const dir = absolute(d);
    if (seen.has(`${from}:${dir}`)) continue;
    seen.add(`${from}:${dir}`);
    const hit = dirHostWritable(dir, writable);
    if (hit) out.push({ key: from, kind: 'untrusted-code', message: `${from} directory ${dir}: the host can put libraries there (allowed entry file:${hit}), which the enclave would load; keep library directories out of plain and host paths (classify them authenticated)` });
  }
  for (const name of ['LD_PRELOAD', 'LD_AUDIT']) {
    for (const f of (envValue(env, name) ?? '').split(name === 'LD_PRELOAD' ? /[:\s]/ : /:/)) {
      if (!f || !f.includes('/')) continue; // bare names are searched in the directories above
      const p = absolute(f);
      const hit = covered(p);
      if (hit) out.push({ key: `loader.env.${name}`, kind: 'untrusted-code', message: `loader.env.${name} entry ${p}: a file the host can replace (allowed entry file:${hit}), which the enclave would load` });
    }
  }
  const ca = envValue(env, 'SECRET_PROVISION_CA_CHAIN_PATH');
  if (ca !== undefined) {
    const p = absolute(ca);
    const hit = covered(p);
    if (!trusted.has(`file:${p}`) || hit) {
      out.push({ key: 'loader.env.SECRET_PROVISION_CA_CHAIN_PATH', kind: 'untrusted-code', message: `loader.env.SECRET_PROVISION_CA_CHAIN_PATH = ${JSON.stringify(ca)}: the secret-provisioning CA chain is not a trusted file${hit ? ` (allowed entry file:${hit} covers it)` : ''}, so the host could make the enclave trust its own key server` });
    }
  }
  return out;
}

/** Names of the variables the enclave takes from the host (`{ passthrough = true }`), in manifest order. */
export function hostEnvNames(doc: TomlTable): string[] {
  return Object.entries(table(table(doc.loader).env)).filter(([, v]) => isTable(v) && v.passthrough === true).map(([k]) => k);
}
