/**
 * The SCONE CAS session (policy) enclavify emits for a converted image, the way `sconify_image`
 * fills it: one service whose command, environment and working directory come from the native
 * image's config, attested by MRENCLAVE, with the main FSPF, encrypted volumes, user secrets and
 * injected files, and attestation tolerations. Pure functions; the result is validated against
 * `schemas/scone-session.schema.json` before it is returned.
 *
 * The session holds the FSPF key: write it with mode 0600 (see `writeFileAtomic`). Errors never
 * contain key material or secret values.
 */
import { yaml } from '../oci/lazy-deps.js';
import { toHex } from './hex.js';
import { injectionFilesFromFragment, secretsFromFragment, type PolicyFragment } from './scone-fragments.js';
import type {
  SconeAccessPolicy,
  SconeAttestationSecurity,
  SconeImage,
  SconeInjectionFile,
  SconeSecret,
  SconeService,
  SconeSession,
  SconeToleration,
} from './scone-types.js';
import { parseVolumeSpec, volumeEntries, type VolumeSpec } from './scone-volumes.js';
import { formatProblems, validateSconeSession } from './validate.js';
import { EnclavifyError } from '../oci/errors.js';

/** The part of an OCI image config (`config` object) the session is filled from. */
export interface OciConfigSubset {
  Entrypoint?: string[] | null | undefined;
  Cmd?: string[] | null | undefined;
  /** `KEY=VALUE` entries. */
  Env?: string[] | null | undefined;
  WorkingDir?: string | undefined;
}

/** The main file-system protection file of the service. */
export interface SconeFspf {
  /** Absolute path of the FSPF in the image, e.g. `/fspf/fs.fspf`. */
  path: string;
  /** 32-byte key, raw or hex. Secret. */
  key: string | Uint8Array;
  /** 16-byte tag of the initial state, raw or hex. */
  tag: string | Uint8Array;
  updatePolicy?: 'rollback_protected_reinitializable' | 'no_rollback_protection';
}

/** Options of {@link sconeSession}; CLI equivalents in brackets. */
export interface SconeSessionOptions {
  /** Session namespace; may be nested (`org/team`). [--namespace] */
  namespace: string;
  /** Session name inside the namespace; the full name is `NAMESPACE/NAME`. [--name] */
  name: string;
  /** Service name; `SCONE_CONFIG_ID` is `NAMESPACE/NAME/SERVICE`. Default `service`. [--service-name] */
  serviceName?: string | undefined;
  /** Name of the session's image entry. Default `<serviceName>_image`, as sconify names it. */
  imageName?: string | undefined;
  /** Session language version. Default `0.3.10`. */
  version?: string | undefined;
  /** Hash of the session this one replaces (updates only). */
  predecessor?: string | undefined;
  /** Default: read and update by CREATOR only. */
  accessPolicy?: SconeAccessPolicy | undefined;
  /** MRENCLAVEs allowed to attest (hex or raw 32 bytes). Required unless attestationMode is `none`. */
  mrenclaves: (string | Uint8Array)[];
  /** The native image's config: Entrypoint, Cmd, Env, WorkingDir. */
  config?: OciConfigSubset | undefined;
  /** Command override: a string in CAS syntax (split at whitespace, quotes group) or a list. [--command] */
  command?: string | string[] | undefined;
  /** Extra environment, `KEY=VALUE`, applied last. [--env] */
  env?: string[] | undefined;
  /** Do not copy the image's Env into the policy (sconify's env-copy --disable switch). */
  disableCopyEnv?: boolean | undefined;
  /** `SCONE_MODE` put into the environment; default `hw`; `null` leaves it out. */
  sconeMode?: 'hw' | 'sim' | 'auto' | null | undefined;
  /** Working directory override; default the image's WorkingDir, else `/`. */
  pwd?: string | undefined;
  /** Main FSPF path, key and tag. */
  fspf?: SconeFspf | undefined;
  /** Encrypted volumes, `NAME:PATH[:FROM_SESSION][:TO_SESSION...]` or parsed. [--volume] */
  volumes?: (string | VolumeSpec)[] | undefined;
  /** Secret fragments, merged in order. [--secrets] */
  secrets?: PolicyFragment[] | undefined;
  /** Injected-file fragments, merged in order into the image. [--injectedfiles] */
  injectedFiles?: PolicyFragment[] | undefined;
  /** Tolerate debug enclaves (insecure). [--allow-debug-mode] */
  allowDebugMode?: boolean | undefined;
  /** Tolerate platforms with known vulnerabilities (insecure). [--allow-tcb-vulnerabilities] */
  allowTcbVulnerabilities?: boolean | undefined;
  /** Advisories to ignore; `*` only with allowDebugMode. Default `*` when both tolerations are on. */
  ignoreAdvisories?: '*' | string[] | undefined;
  /** `security.attestation.mode`; `none` disables attestation (insecure). Default: CAS's (`hardware`). */
  attestationMode?: 'hardware' | 'none' | undefined;
}

/** Language version enclavify writes by default. */
export const DEFAULT_SESSION_VERSION = '0.3.10';

/** Tolerations `--allow-tcb-vulnerabilities` turns on. */
export const TCB_TOLERATIONS: readonly SconeToleration[] = [
  'hyperthreading',
  'insecure-igpu',
  'outdated-tcb',
  'software-hardening-needed',
  'insecure-configuration',
  'aepic-leak',
];

const SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9_.~-]{1,128}$/;
const NAME = /^[A-Za-z0-9_.~-]{1,128}$/;
const ENV_KEY = /^[^=\0]+$/;
// An argument CAS would split or unquote differently from how we mean it.
const PLAIN_ARG = /^[^\s'"\\\0]+$/;
const PLACEHOLDER = /\$\$SCONE::([^$:|\s]+)[^$]*\$\$/g;

/**
 * Builds the session for one converted service. Throws an Error naming the option for invalid
 * input: a bad name or volume spec, duplicate volume/secret/injected-file names, malformed hex, a
 * missing command, a placeholder naming an undefined secret, or a wildcard advisory list outside
 * debug mode.
 */
export function sconeSession(options: SconeSessionOptions): SconeSession {
  const o = options;
  checkPath(o.namespace, 'namespace');
  checkName(o.name, 'name', SEGMENT);
  const serviceName = o.serviceName ?? 'service';
  checkName(serviceName, 'serviceName', NAME);
  const imageName = o.imageName ?? `${serviceName}_image`;
  checkName(imageName, 'imageName', NAME);
  const version = o.version ?? DEFAULT_SESSION_VERSION;
  if (!/^0\.3(?:\.[0-9]+)?$/.test(version)) throw new EnclavifyError('BAD_POLICY', `version ${JSON.stringify(version)}: expected "0.3" or "0.3.N"`);

  const mrenclaves = [...new Set((o.mrenclaves ?? []).map((m, i) => toHex(m, 32, `mrenclaves[${i}]`)))];
  if (mrenclaves.length === 0 && o.attestationMode !== 'none') {
    throw new EnclavifyError('BAD_POLICY', 'mrenclaves: at least one MRENCLAVE is required (or attestationMode "none")');
  }

  const config = o.config ?? {};
  const service: SconeService = { name: serviceName, image_name: imageName };
  if (mrenclaves.length) service.mrenclaves = mrenclaves;
  service.command = commandFor(o.command, config);
  service.environment = environmentFor(o, config);
  service.pwd = pwdFor(o.pwd, config.WorkingDir);
  if (o.fspf) {
    if (!o.fspf.path?.startsWith('/')) throw new EnclavifyError('BAD_POLICY', 'fspf.path: must be an absolute path');
    service.fspf_path = o.fspf.path;
    service.fspf_key = toHex(o.fspf.key, 32, 'fspf.key');
    service.fspf_tag = toHex(o.fspf.tag, 16, 'fspf.tag');
    if (o.fspf.updatePolicy) service.fspf_update_policy = o.fspf.updatePolicy;
  }

  const specs = (o.volumes ?? []).map((v) => (typeof v === 'string' ? parseVolumeSpec(v) : parseVolumeSpec(volumeSpecString(v))));
  const { volumes, imageVolumes } = volumeEntries(specs);
  const secrets = mergeSecrets(o.secrets ?? []);
  const injectionFiles = mergeInjectionFiles(o.injectedFiles ?? []);
  checkPlaceholders(service, injectionFiles, secrets);

  const image: SconeImage = { name: imageName };
  if (imageVolumes.length) image.volumes = imageVolumes;
  if (injectionFiles.length) image.injection_files = injectionFiles;

  const session: SconeSession = {
    name: `${o.namespace}/${o.name}`,
    version,
    ...(o.predecessor !== undefined ? { predecessor: toHex(o.predecessor, 32, 'predecessor') } : {}),
    access_policy: structuredClone(o.accessPolicy ?? { read: ['CREATOR'], update: ['CREATOR'] }),
    services: [service],
  };
  if (secrets.length) session.secrets = secrets;
  if (volumes.length) session.volumes = volumes;
  session.images = [image];
  const attestation = attestationSecurity(o);
  if (attestation) session.security = { attestation };

  assertValid(session);
  return session;
}

/**
 * A namespace session (`--create-namespace`): only a name and an access policy; by default the
 * creator may read and update it and create sessions in it.
 */
export function sconeNamespaceSession(options: { namespace: string; version?: string | undefined; accessPolicy?: SconeAccessPolicy | undefined }): SconeSession {
  checkPath(options.namespace, 'namespace');
  const session: SconeSession = {
    name: options.namespace,
    version: options.version ?? DEFAULT_SESSION_VERSION,
    access_policy: structuredClone(options.accessPolicy ?? { read: ['CREATOR'], update: ['CREATOR'], create_sessions: ['CREATOR'] }),
  };
  assertValid(session);
  return session;
}

/** `SCONE_CONFIG_ID` for a service of a session: `<full session name>/<service>`. */
export function sconeConfigId(session: SconeSession, serviceName = session.services?.[0]?.name ?? 'service'): string {
  return `${session.name}/${serviceName}`;
}

/**
 * The session as YAML for CAS: no line folding (commands and PEM stay on their lines), no anchors
 * or aliases, `version` double-quoted as the SCONE docs write it, and any one-line string that a
 * YAML 1.1 reader would take for something else (`on`, `yes`, `0x1f`, `1:20`, digits) quoted.
 */
export function sessionToYaml(session: SconeSession): string {
  const { Document, isScalar, visit } = yaml();
  const doc = new Document(session, { aliasDuplicateObjects: false });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || node.value.includes('\n')) return;
      if (!readsBackAsString(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  const version = doc.get('version', true);
  if (isScalar(version)) version.type = 'QUOTE_DOUBLE';
  return doc.toString({ lineWidth: 0, minContentWidth: 0 });
}

/** Whether a plain scalar with this text reads back as the same string in YAML 1.1 and 1.2. */
function readsBackAsString(text: string): boolean {
  try {
    return yaml().parse(text, { version: '1.1' }) === text && yaml().parse(text, { version: '1.2' }) === text;
  } catch {
    return false;
  }
}

function assertValid(session: SconeSession): void {
  const problems = validateSconeSession(session);
  if (problems.length) throw new EnclavifyError('BAD_POLICY', `SCONE session ${session.name}: invalid:\n${formatProblems(problems, '(session)')}`);
}

function checkName(value: string, what: string, re: RegExp): void {
  if (typeof value !== 'string' || !re.test(value)) {
    throw new EnclavifyError('BAD_POLICY', `${what} ${JSON.stringify(value)}: must be 1-128 of A-Z a-z 0-9 _ . ~ - (not "." or "..")`);
  }
}

function checkPath(value: string, what: string): void {
  if (typeof value !== 'string' || value === '') throw new EnclavifyError('BAD_POLICY', `${what}: required`);
  for (const seg of value.split('/')) checkName(seg, `${what} segment`, SEGMENT);
}

/** The command: the override as given, else Entrypoint + Cmd joined with spaces as sconify does. */
function commandFor(override: string | string[] | undefined, config: OciConfigSubset): string | string[] {
  if (override !== undefined) {
    if (typeof override === 'string') {
      if (!override.trim()) throw new EnclavifyError('BAD_POLICY', '--command: must not be empty');
      if (override.includes('\0')) throw new EnclavifyError('BAD_POLICY', '--command: contains a NUL byte');
      return override;
    }
    if (!Array.isArray(override) || override.length === 0 || override.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      throw new EnclavifyError('BAD_POLICY', '--command: expected a non-empty list of strings without NUL bytes');
    }
    return [...override];
  }
  const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (args.length === 0) throw new EnclavifyError('BAD_POLICY', 'command: the image config has neither Entrypoint nor Cmd; pass --command');
  if (args.some((a) => typeof a !== 'string' || a.includes('\0'))) throw new EnclavifyError('BAD_POLICY', 'config Entrypoint/Cmd: arguments must be strings without NUL bytes');
  // CAS splits a string command at whitespace; arguments with whitespace or quotes keep their
  // exact value only in the list form.
  return args.every((a) => PLAIN_ARG.test(a)) ? args.join(' ') : args;
}

function parseEnvEntry(entry: string, where: string): [string, string] {
  const eq = typeof entry === 'string' ? entry.indexOf('=') : -1;
  if (eq <= 0) throw new EnclavifyError('BAD_POLICY', `${where}: expected KEY=VALUE`);
  const key = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  if (!ENV_KEY.test(key)) throw new EnclavifyError('BAD_POLICY', `${where}: invalid variable name ${JSON.stringify(key)}`);
  if (value.includes('\0')) throw new EnclavifyError('BAD_POLICY', `${where} (${key}): value contains a NUL byte`);
  return [key, value];
}

/** SCONE_MODE first, then the image's Env (unless disabled), then `--env`, later entries winning. */
function environmentFor(o: SconeSessionOptions, config: OciConfigSubset): Record<string, string> {
  const env: Record<string, string> = {};
  const mode = o.sconeMode === undefined ? 'hw' : o.sconeMode;
  if (mode !== null) env.SCONE_MODE = mode;
  if (!o.disableCopyEnv) {
    (config.Env ?? []).forEach((e, i) => {
      const [k, v] = parseEnvEntry(e, `config Env[${i}]`);
      if (k === 'SCONE_MODE' && mode !== null) return;
      env[k] = v;
    });
  }
  (o.env ?? []).forEach((e, i) => {
    const [k, v] = parseEnvEntry(e, `--env #${i + 1}`);
    env[k] = v;
  });
  return env;
}

function pwdFor(override: string | undefined, workingDir: string | undefined): string {
  const pwd = override ?? (workingDir || '/');
  if (!pwd.startsWith('/') || pwd.includes('\0')) {
    throw new EnclavifyError('BAD_POLICY', `${override !== undefined ? 'pwd' : 'config WorkingDir'} ${JSON.stringify(pwd)}: must be an absolute path`);
  }
  return pwd;
}

function volumeSpecString(v: VolumeSpec): string {
  return [v.name, v.path, v.importFrom ?? '', ...v.exportTo].join(':').replace(/:+$/, '');
}

function mergeSecrets(fragments: PolicyFragment[]): SconeSecret[] {
  const out: SconeSecret[] = [];
  const from = new Map<string, string>();
  for (const f of fragments) {
    for (const s of secretsFromFragment(f)) {
      const first = from.get(s.name);
      if (first !== undefined) {
        throw new EnclavifyError('BAD_POLICY', `--secrets ${f.source}: duplicate secret name ${JSON.stringify(s.name)} (first in ${first})`);
      }
      from.set(s.name, f.source);
      out.push(structuredClone(s));
    }
  }
  return out;
}

function mergeInjectionFiles(fragments: PolicyFragment[]): SconeInjectionFile[] {
  const out: SconeInjectionFile[] = [];
  const from = new Map<string, string>();
  for (const f of fragments) {
    for (const file of injectionFilesFromFragment(f)) {
      const path = typeof file === 'string' ? file : file.path;
      const first = from.get(path);
      if (first !== undefined) {
        throw new EnclavifyError('BAD_POLICY', `--injectedfiles ${f.source}: duplicate injected file ${JSON.stringify(path)} (first in ${first})`);
      }
      from.set(path, f.source);
      out.push(structuredClone(file));
    }
  }
  return out;
}

/** Every `$$SCONE::name...$$` in the command, environment and injected files must name a secret. */
function checkPlaceholders(service: SconeService, files: SconeInjectionFile[], secrets: SconeSecret[]): void {
  const names = new Set(secrets.map((s) => s.name));
  const known = (n: string) => names.has(n) || (n.includes('.') && names.has(n.slice(0, n.lastIndexOf('.'))));
  const check = (text: string, where: string) => {
    for (const m of text.matchAll(PLACEHOLDER)) {
      if (!known(m[1])) throw new EnclavifyError('BAD_POLICY', `${where}: placeholder names secret ${JSON.stringify(m[1])}, which no --secrets file defines`);
    }
  };
  for (const a of Array.isArray(service.command) ? service.command : [service.command ?? '']) check(a, 'command');
  for (const [k, v] of Object.entries(service.environment ?? {})) check(v, `environment ${k}`);
  for (const f of files) if (typeof f !== 'string' && f.content) check(f.content, `injected file ${f.path}`);
}

function attestationSecurity(o: SconeSessionOptions): SconeAttestationSecurity | undefined {
  const tolerate: SconeToleration[] = [];
  if (o.allowDebugMode) tolerate.push('debug-mode');
  if (o.allowTcbVulnerabilities) tolerate.push(...TCB_TOLERATIONS);
  const ignore = o.ignoreAdvisories ?? (o.allowDebugMode && o.allowTcbVulnerabilities ? '*' : undefined);
  if (ignore === '*' && !o.allowDebugMode) {
    throw new EnclavifyError('BAD_POLICY', 'ignoreAdvisories "*": CAS accepts the wildcard only in debug mode; list the advisories (INTEL-SA-NNNNN) instead');
  }
  const a: SconeAttestationSecurity = {};
  if (o.attestationMode) a.mode = o.attestationMode;
  if (tolerate.length) a.tolerate = tolerate;
  if (ignore !== undefined) a.ignore_advisories = ignore === '*' ? '*' : [...ignore];
  return Object.keys(a).length ? a : undefined;
}
