/**
 * The manifest keys Gramine 1.9 accepts, as its manifest checker (`gramine-manifest-check`,
 * python/graminelibos/manifest_check.py) defines them, restated as data, and a checker that lists
 * every key or value that Gramine would refuse. Used on every manifest we generate, after the
 * user's fragment is merged, so that a typo fails at conversion time rather than at enclave start.
 */
import type { TomlTable, TomlValue } from 'smol-toml';

type Spec =
  | { t: 'string' | 'bool' | 'int' | 'any' | 'true' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'array'; of: Spec }
  | { t: 'table'; keys: Record<string, Spec>; required?: readonly string[]; open?: Spec | undefined }
  | { t: 'oneOf'; of: readonly Spec[] };

const str: Spec = { t: 'string' };
const bool: Spec = { t: 'bool' };
const int: Spec = { t: 'int' };
const en = (...values: string[]): Spec => ({ t: 'enum', values });
const arr = (of: Spec): Spec => ({ t: 'array', of });
const table = (keys: Record<string, Spec>, required: string[] = [], open?: Spec): Spec => ({ t: 'table', keys, required, open });
const oneOf = (...of: Spec[]): Spec => ({ t: 'oneOf', of });

/** `fs.root` and `fs.mounts[]` share these shapes; mounts also need `path`. */
function fsShapes(withPath: boolean): Spec[] {
  const p: Record<string, Spec> = withPath ? { path: str } : {};
  const req = withPath ? ['path'] : [];
  return [
    table({ ...p, type: en('chroot'), uri: str }, [...req, 'uri']),
    table({ ...p, type: en('encrypted'), uri: str, key_name: str, enable_recovery: bool }, [...req, 'type', 'uri']),
    table({ ...p, type: en('tmpfs'), uri: str }, [...req, 'type']),
    table({ ...p, type: en('untrusted_shm'), uri: str }, [...req, 'type', 'uri']),
  ];
}

const size = str;

/** Gramine 1.9's manifest schema. */
export const GRAMINE_19_SCHEMA: Spec = table({
  fs: table({
    mounts: arr(oneOf(...fsShapes(true))),
    root: oneOf(...fsShapes(false)),
    start_dir: str,
    insecure__keys: table({}, [], str),
  }, ['mounts']),
  libos: table({ entrypoint: str, check_invalid_pointers: bool }, ['entrypoint']),
  loader: table({
    entrypoint: table({ uri: str, sha256: str }, ['uri']),
    argv: arr(str),
    argv_src_file: str,
    env: table({}, [], oneOf(str, table({ value: str }, ['value']), table({ passthrough: { t: 'true' } }, ['passthrough']))),
    env_src_file: str,
    gid: int,
    insecure__use_cmdline_argv: bool,
    insecure__use_host_env: bool,
    insecure__disable_aslr: bool,
    log_file: str,
    log_level: en('none', 'error', 'warning', 'debug', 'trace', 'all'),
    uid: int,
  }, ['entrypoint']),
  sgx: table({
    allowed_files: arr(str),
    cpu_features: table({
      avx: en('unspecified', 'disabled', 'required'),
      avx512: en('unspecified', 'disabled', 'required'),
      amx: en('unspecified', 'disabled', 'required'),
      mpx: en('disabled', 'required'),
      pkru: en('disabled', 'required'),
    }),
    debug: bool,
    edmm_enable: bool,
    enable_stats: bool,
    enclave_size: size,
    file_check_policy: en('strict', 'allow_all_but_log'),
    insecure__allow_memfaults_without_exinfo: bool,
    insecure__rpc_thread_num: int,
    isvprodid: int,
    isvsvn: int,
    max_threads: int,
    preheat_enclave: bool,
    profile: table({ enable: en('none', 'main', 'all'), mode: en('aex', 'ocall_inner', 'ocall_outer'), with_stack: bool, frequency: int }),
    remote_attestation: en('none', 'dcap'),
    seal_key: table({ flags_mask: str, xfrm_mask: str, misc_mask: str }),
    trusted_files: arr(oneOf(str, table({ uri: str, sha256: str }, ['uri']))),
    use_exinfo: bool,
    vtune_profile: bool,
  }),
  sys: table({
    allowed_ioctls: arr(table({ request_code: int, struct: str }, ['request_code'])),
    brk: table({ max_size: size }),
    disallow_subprocesses: bool,
    enable_extra_runtime_domain_names_conf: bool,
    enable_sigterm_injection: bool,
    experimental__enable_flock: bool,
    insecure__allow_eventfd: bool,
    ioctl_structs: table({}, [], { t: 'any' }),
    debug__mock_syscalls: arr(table({ name: str, return: int }, ['name'])),
    stack: table({ size }),
    fds: table({ limit: int }),
  }),
}, ['fs', 'libos', 'loader']);

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function check(spec: Spec, v: TomlValue, at: string, out: string[]): void {
  switch (spec.t) {
    case 'any':
      return;
    case 'string':
      if (typeof v !== 'string') out.push(`${at} must be a string`);
      return;
    case 'bool':
      if (typeof v !== 'boolean') out.push(`${at} must be true or false`);
      return;
    case 'int':
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v))) out.push(`${at} must be an integer`);
      return;
    case 'true':
      if (v !== true) out.push(`${at} must be true`);
      return;
    case 'enum':
      if (typeof v !== 'string' || !spec.values.includes(v)) out.push(`${at} must be one of ${spec.values.map((x) => JSON.stringify(x)).join(', ')}`);
      return;
    case 'array':
      if (!Array.isArray(v)) out.push(`${at} must be an array`);
      else v.forEach((x, i) => check(spec.of, x, `${at}[${i}]`, out));
      return;
    case 'table': {
      if (!isTable(v)) {
        out.push(`${at || 'the manifest'} must be a table`);
        return;
      }
      for (const r of spec.required ?? []) if (!(r in v)) out.push(`${at ? `${at}.` : ''}${r} is required`);
      for (const [k, x] of Object.entries(v)) {
        const sub = spec.keys[k] ?? spec.open;
        const where = at ? `${at}.${k}` : k;
        if (!sub) out.push(`${where} is not a Gramine 1.9 manifest key`);
        else check(sub, x, where, out);
      }
      return;
    }
    case 'oneOf': {
      const tries = spec.of.map((s) => {
        const errs: string[] = [];
        check(s, v, at, errs);
        return errs;
      });
      if (tries.some((e) => e.length === 0)) return;
      // Report the alternative that got furthest (fewest errors).
      out.push(...tries.reduce((a, b) => (b.length < a.length ? b : a)));
      return;
    }
  }
}

/**
 * Checks a parsed manifest against Gramine 1.9's schema; returns one message per problem (empty
 * when Gramine's `gramine-manifest-check` would accept it).
 */
export function checkGramineManifest(doc: TomlTable): string[] {
  const out: string[] = [];
  check(GRAMINE_19_SCHEMA, doc, '', out);
  return out;
}
