/**
 * emitPolicy: the transform that writes down who may receive the image's secrets after remote
 * attestation, next to the image.
 *
 * - SCONE (`runtime: 'scone'`): a CAS session (`policy/session.yaml`) built with `sconeSession`
 *   from the image config (command, environment, working directory), volumes, secret and
 *   injected-file fragments, tolerations and the MRENCLAVEs. Marked secret (written 0600) when it
 *   carries key material or secret values.
 * - Gramine (`runtime: 'gramine'`): the attestation policy (`policy/attestation.json`) for the
 *   verifier that releases keys: MRENCLAVE and/or MRSIGNER + ISV product id + SVN, debug allowed
 *   or not, the key *names* from the protection step and the protection manifest's digest.
 *
 * The enclave identity comes from the options (`mrenclaves`, a SIGSTRUCT) or else from what
 * injectRuntime recorded (a signed Gramine image, or `scone({mrenclaves})`).
 */
import { readFile } from 'node:fs/promises';
import { EnclavifyError } from '../oci/errors.js';
import type {
  GramineAttestationPolicyOptions,
  GramineReleasedKey,
  PolicyFragment,
  SconeAccessPolicy,
  SconeFspf,
  SconeSession,
  TcbStatus,
  VolumeSpec,
} from '../policy/index.js';
import { parseSigstruct, type Sigstruct } from '../sgx/sigstruct.js';
import type { Draft, Transform } from './pipeline.js';

/** lib/policy (and with it yaml and ajv), loaded when an emitPolicy transform runs. */
type PolicyModule = typeof import('../policy/index.js');
import { CLASSIFICATION, PROTECTION, RUNTIME, stateKey, type Classification, type Protection, type RuntimeInfo } from './state.js';

/** State key under which emitPolicy leaves what it emitted (for emitChart, the CLI and reports). */
export const POLICY = stateKey<PolicyInfo>('enclavify.policy');

/** What emitPolicy records under {@link POLICY}. */
export interface PolicyInfo {
  runtime: 'scone' | 'gramine';
  /** Artifact path of the policy; absent when it was skipped. */
  path?: string;
  /** Why no policy was written (`missingIdentity: 'skip'` and no known MRENCLAVE). */
  skipped?: string;
  /** SCONE: the session's full name `NAMESPACE/SESSION`, as sconify_image prints it. */
  sessionId?: string;
  /** SCONE: `NAMESPACE/SESSION/SERVICE`. */
  configId?: string;
  /** The MRENCLAVEs the policy accepts. */
  mrenclaves: string[];
}

/** SCONE-specific options of {@link emitPolicy}; CLI equivalents in brackets. */
export interface EmitSconePolicyOptions {
  /** Session namespace. Default: from the SCONE_CONFIG_ID injectRuntime(scone) set. [--namespace] */
  namespace?: string;
  /** Session name. Default: from the SCONE_CONFIG_ID. [--name] */
  name?: string;
  /** Service name. Default: from the SCONE_CONFIG_ID, else `service`. [--service-name] */
  serviceName?: string;
  /** Session language version. Default `0.3.10`. */
  version?: string;
  accessPolicy?: SconeAccessPolicy;
  /** Command override in CAS syntax, or a list. Default: the image's Entrypoint + Cmd. [--command] */
  command?: string | string[];
  /** Extra environment `KEY=VALUE`. [--env] */
  env?: string[];
  /** Do not copy the image's Env. [--disable-copy-envvars] */
  disableCopyEnv?: boolean;
  /** Working directory override. Default: the image's WorkingDir. */
  pwd?: string;
  /** An FSPF made with SCONE's own tools: its path in the image, key and tag (the key makes the session secret). */
  fspf?: SconeFspf;
  /** Encrypted volumes `NAME:PATH[:FROM_SESSION][:TO_SESSION...]`. [--volume] */
  volumes?: (string | VolumeSpec)[];
  /** Secret fragments. [--secrets] */
  secrets?: PolicyFragment[];
  /** Injected-file fragments. [--injectedfiles] */
  injectedFiles?: PolicyFragment[];
  ignoreAdvisories?: '*' | string[];
  /** `none` disables attestation (insecure; no MRENCLAVE needed). */
  attestationMode?: 'hardware' | 'none';
  /** Also emit the namespace session (`policy/namespace.yaml`). [--create-namespace] */
  createNamespace?: boolean;
}

/** Gramine-specific options of {@link emitPolicy}. */
export interface EmitGraminePolicyOptions {
  /** A label for the policy, e.g. the image reference. */
  name?: string;
  attestationType?: 'dcap' | 'epid';
  /** Accepted signer; default from the SIGSTRUCT or the signed image. */
  signer?: { mrsigner: string | Uint8Array; isvProdId: number; minIsvSvn?: number };
  allowedTcbStatuses?: TcbStatus[];
  /** Further key names to release (besides those of the protection step). */
  keys?: (string | GramineReleasedKey)[];
}

/** Options of {@link emitPolicy}; CLI equivalents in brackets. */
export interface EmitPolicyOptions {
  /** Policy kind. Default: the runtime injectRuntime used. [--runtime] */
  runtime?: 'scone' | 'gramine';
  /** Artifact path. Default `policy/session.yaml` (SCONE) or `policy/attestation.json` (Gramine). */
  path?: string;
  /** Accepted MRENCLAVEs (hex or 32 bytes). [--mrenclave, repeatable] */
  mrenclaves?: (string | Uint8Array)[];
  /** A SIGSTRUCT (1808 bytes): its MRENCLAVE (and, for Gramine, signer and ISV values) are used. */
  sigstruct?: Uint8Array;
  /** A SIGSTRUCT file (`.sig`), read when the transform runs. [--sigstruct] */
  sigstructFile?: string;
  /** Accept debug enclaves (insecure). [--allow-debug-mode] */
  allowDebugMode?: boolean;
  /** Accept platforms with known vulnerabilities (insecure). [--allow-tcb-vulnerabilities] */
  allowTcbVulnerabilities?: boolean;
  /**
   * When the enclave identity is unknown (no MRENCLAVE given, image not signed): `error` (default)
   * throws; `skip` writes no policy and reports why, so a conversion can finish before the enclave
   * is measured (SCONE measures it in the converted image: `SCONE_HASH=1 <binary>`).
   */
  missingIdentity?: 'error' | 'skip';
  scone?: EmitSconePolicyOptions;
  gramine?: EmitGraminePolicyOptions;
}

const PLUMBING = ['SCONE_CAS_ADDR', 'SCONE_LAS_ADDR', 'SCONE_CONFIG_ID'];

async function readSigstruct(o: EmitPolicyOptions): Promise<Sigstruct | undefined> {
  if (o.sigstruct && o.sigstructFile) throw new EnclavifyError('BAD_OPTIONS', 'emitPolicy: give sigstruct or sigstructFile, not both');
  if (o.sigstruct) return parseSigstruct(o.sigstruct);
  if (!o.sigstructFile) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(o.sigstructFile);
  } catch (e) {
    throw new EnclavifyError('SIGSTRUCT_UNREADABLE', `--sigstruct ${o.sigstructFile}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return parseSigstruct(bytes);
  } catch (e) {
    throw new EnclavifyError('SGX_BAD_SIGSTRUCT', `--sigstruct ${o.sigstructFile}: ${(e as Error).message}`, { cause: e });
  }
}

function hex(list: (string | Uint8Array)[]): string[] {
  return list.map((m) => (m instanceof Uint8Array ? Buffer.from(m).toString('hex') : m.toLowerCase()));
}

/** The MRENCLAVEs: from the options and the SIGSTRUCT, else those injectRuntime recorded. */
function mrenclavesFor(o: EmitPolicyOptions, sig: Sigstruct | undefined, info: RuntimeInfo | undefined): string[] {
  const given = [...hex(o.mrenclaves ?? []), ...(sig ? [sig.mrenclave] : [])];
  return [...new Set(given.length ? given : info?.mrenclave ?? [])];
}

/** Splits a config id `NS.../SESSION/SERVICE`. */
function splitConfigId(id: string): { namespace: string; name: string; serviceName: string } | undefined {
  const parts = id.split('/');
  if (parts.length < 3) return undefined;
  const serviceName = parts.pop()!;
  const name = parts.pop()!;
  return { namespace: parts.join('/'), name, serviceName };
}

function sconePolicy(p: PolicyModule, draft: Draft, o: EmitPolicyOptions, sig: Sigstruct | undefined, info: RuntimeInfo | undefined): void {
  const s = o.scone ?? {};
  const fromId = info?.sconeConfigId ? splitConfigId(info.sconeConfigId) : undefined;
  const namespace = s.namespace ?? fromId?.namespace;
  const name = s.name ?? fromId?.name;
  const serviceName = s.serviceName ?? fromId?.serviceName ?? 'service';
  if (!namespace || !name) {
    throw new EnclavifyError('BAD_OPTIONS', 'emitPolicy(scone): the session namespace and name are needed (--namespace, --name), or injectRuntime(scone) before emitPolicy');
  }
  const configId = `${namespace}/${name}/${serviceName}`;
  if (info?.sconeConfigId && info.sconeConfigId !== configId) {
    // The image would ask CAS for a session this policy is not.
    throw new EnclavifyError('SCONE_CONFIG_MISMATCH', `emitPolicy(scone): the image's SCONE_CONFIG_ID is ${info.sconeConfigId}, but the session would be ${configId}`);
  }
  const cfg = draft.config.config ?? {};
  const added = new Set([...PLUMBING, ...(((info?.details as { imageEnv?: string[] } | undefined)?.imageEnv) ?? [])]);
  const env = (cfg.Env ?? []).filter((e) => !added.has(e.slice(0, e.indexOf('='))));
  const build = (mrenclaves: string[]): SconeSession => {
    try {
      return p.sconeSession({
        namespace,
        name,
        serviceName,
        version: s.version,
        accessPolicy: s.accessPolicy,
        mrenclaves,
        config: { Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: env, WorkingDir: cfg.WorkingDir },
        command: s.command,
        env: s.env,
        disableCopyEnv: s.disableCopyEnv,
        pwd: s.pwd,
        fspf: s.fspf,
        volumes: s.volumes,
        secrets: s.secrets,
        injectedFiles: s.injectedFiles,
        allowDebugMode: o.allowDebugMode,
        allowTcbVulnerabilities: o.allowTcbVulnerabilities,
        ignoreAdvisories: s.ignoreAdvisories,
        attestationMode: s.attestationMode,
      });
    } catch (e) {
      throw new EnclavifyError(e instanceof EnclavifyError ? e.code : 'BAD_POLICY', `emitPolicy(scone): ${(e as Error).message}`, { cause: e });
    }
  };

  const mrenclaves = mrenclavesFor(o, sig, info);
  if (mrenclaves.length === 0 && s.attestationMode !== 'none') {
    const why = 'the session needs the enclave\'s MRENCLAVE: give --mrenclave HEX (SCONE prints it with SCONE_HASH=1 <binary> in the converted image) or --sigstruct FILE';
    if (o.missingIdentity !== 'skip') throw new EnclavifyError('NO_MRENCLAVE', `emitPolicy(scone): ${why}`);
    build(['0'.repeat(64)]); // the rest of the options must still be valid: fail now, not at the second run
    return skip(draft, { runtime: 'scone', sessionId: `${namespace}/${name}`, configId, mrenclaves }, why);
  }
  const session = build(mrenclaves);
  const path = o.path ?? 'policy/session.yaml';
  const secret = holdsSecrets(session);
  draft.addArtifact({ path, data: p.sessionToYaml(session), secret, description: `SCONE CAS session ${session.name}` });
  if (s.createNamespace) {
    draft.addArtifact({ path: 'policy/namespace.yaml', data: p.sessionToYaml(p.sconeNamespaceSession({ namespace, version: s.version })), description: `SCONE CAS namespace ${namespace}` });
  }
  const policy: PolicyInfo = { runtime: 'scone', path, sessionId: session.name, configId, mrenclaves };
  draft.state.set(POLICY, policy);
  draft.report.emitPolicy = { ...policy, secret, ...(s.createNamespace ? { namespacePath: 'policy/namespace.yaml' } : {}) };
  draft.progress(`emitPolicy: SCONE session ${session.name} -> ${path}`);
}

/** Records that no policy was written, and why (the CLI prints it). */
function skip(draft: Draft, policy: PolicyInfo, why: string): void {
  const info: PolicyInfo = { ...policy, skipped: why };
  draft.state.set(POLICY, info);
  draft.report.emitPolicy = info;
  draft.warn(`emitPolicy: no ${policy.runtime === 'scone' ? 'CAS session' : 'attestation policy'} written: ${why}`);
}

/** Key material or secret values in a session: FSPF/volume keys, explicit secret values, injected contents. */
function holdsSecrets(session: SconeSession): boolean {
  if (session.services?.some((sv) => sv.fspf_key)) return true;
  if (session.volumes?.some((v) => v.fspf_key)) return true;
  if (session.secrets?.some((x) => x.value !== undefined)) return true;
  return !!session.images?.some((i) => i.injection_files?.some((f) => typeof f !== 'string' && f.content !== undefined));
}

/** Key names and the mounts using them, from the protection step (never the key values). */
function releasedKeys(protection: Protection | undefined, classification: Classification | undefined, info: RuntimeInfo | undefined): GramineReleasedKey[] {
  const byName = new Map<string, Set<string>>();
  const regions = [...(protection?.regions ?? []), ...(classification?.regions ?? [])];
  for (const k of protection?.keys ?? []) {
    const mounts = byName.get(k.name) ?? new Set<string>();
    for (const r of k.regions ?? []) mounts.add(r);
    if (!k.regions?.length) {
      const r = regions.find((x) => x.name === k.region || x.path === k.region);
      if (r) mounts.add(r.path);
      else if (k.region?.startsWith('/')) mounts.add(k.region);
    }
    byName.set(k.name, mounts);
  }
  if (!protection) {
    for (const n of info?.keyNames ?? []) if (!byName.has(n)) byName.set(n, new Set());
  } else if (info?.runtime === 'gramine') {
    // The runtime decides which keys it asks for (none when the keys are baked in for development).
    for (const n of [...byName.keys()]) if (!info.keyNames.includes(n)) byName.delete(n);
  }
  return [...byName].map(([name, mounts]) => (mounts.size ? { name, mounts: [...mounts].sort() } : { name }));
}

function graminePolicy(p: PolicyModule, draft: Draft, o: EmitPolicyOptions, sig: Sigstruct | undefined, info: RuntimeInfo | undefined): void {
  const g = o.gramine ?? {};
  const protection = draft.state.get(PROTECTION);
  const classification = draft.state.get(CLASSIFICATION);
  const mrenclaves = mrenclavesFor(o, sig, info);
  const signer =
    g.signer ??
    (sig ? { mrsigner: sig.mrsigner, isvProdId: sig.isvProdId, minIsvSvn: sig.isvSvn } : undefined) ??
    (info?.mrsigner ? { mrsigner: info.mrsigner, isvProdId: info.isvProdId ?? 0, minIsvSvn: info.isvSvn ?? 0 } : undefined);
  if (mrenclaves.length === 0 && !signer) {
    const why = 'the policy needs the enclave identity: sign the image (its SIGSTRUCT gives MRENCLAVE and MRSIGNER), or give --mrenclave HEX or --sigstruct FILE';
    if (o.missingIdentity === 'skip') return skip(draft, { runtime: 'gramine', mrenclaves }, why);
    throw new EnclavifyError('NO_MRENCLAVE', `emitPolicy(gramine): ${why}`);
  }
  const keys = releasedKeys(protection, classification, info);
  for (const k of g.keys ?? []) {
    const key = typeof k === 'string' ? { name: k } : k;
    if (!keys.some((x) => x.name === key.name)) keys.push(key);
  }
  const warnings: string[] = [];
  const devKeys = !!(info?.details as { insecureDevKeys?: boolean } | undefined)?.insecureDevKeys;
  if (devKeys) {
    warnings.push('the image carries its keys (insecure development keys): attestation protects nothing; never deploy it');
  }
  const debugEnclave = sig?.debug ?? info?.debug;
  if (debugEnclave && !o.allowDebugMode) warnings.push('the enclave is built as a debug enclave; this policy refuses it (pass --allow-debug-mode for development only)');
  if (keys.length === 0) {
    // With development keys the regions exist, but their keys are in the manifest, not with the verifier.
    warnings.push(devKeys
      ? 'no keys to release: the region keys are baked into the Gramine manifest (fs.insecure__keys, --insecure-dev-keys), development only'
      : 'no keys to release: the image has no encrypted files');
  }

  const options: GramineAttestationPolicyOptions = {
    ...(g.name !== undefined ? { name: g.name } : {}),
    ...(g.attestationType ? { attestationType: g.attestationType } : {}),
    ...(mrenclaves.length ? { mrenclaves } : {}),
    ...(signer ? { signer } : {}),
    allowDebug: o.allowDebugMode === true,
    ...(g.allowedTcbStatuses ? { allowedTcbStatuses: g.allowedTcbStatuses } : {}),
    allowTcbVulnerabilities: o.allowTcbVulnerabilities === true,
    keys,
    ...(protection ? { protectionManifestDigest: protection.manifestSha256 } : {}),
  };
  let json: string;
  try {
    json = p.gramineAttestationPolicyToJson(p.gramineAttestationPolicy(options));
  } catch (e) {
    throw new EnclavifyError(e instanceof EnclavifyError ? e.code : 'BAD_POLICY', `emitPolicy(gramine): ${(e as Error).message}`, { cause: e });
  }
  const path = o.path ?? 'policy/attestation.json';
  draft.addArtifact({ path, data: json, description: 'Gramine attestation policy (for the key-releasing verifier)' });
  const policy: PolicyInfo = { runtime: 'gramine', path, mrenclaves };
  draft.state.set(POLICY, policy);
  draft.report.emitPolicy = { ...policy, keys: keys.map((k) => k.name), ...(signer ? { mrsigner: hex([signer.mrsigner])[0] } : {}), ...(warnings.length ? { warnings } : {}) };
  for (const w of warnings) draft.warn(`emitPolicy: ${w}`);
  draft.progress(`emitPolicy: Gramine attestation policy -> ${path}`);
}

/**
 * The emitPolicy transform. Runs after injectRuntime (whose RuntimeInfo gives the runtime, the
 * SCONE config id and any known measurement) and after encryptFS (whose key names the Gramine
 * policy releases). Throws when the enclave identity is unknown or the policy is invalid.
 */
export function emitPolicy(options: EmitPolicyOptions = {}): Transform {
  return {
    name: 'emitPolicy',
    async apply(draft) {
      const info = draft.state.get(RUNTIME);
      const runtime = options.runtime ?? info?.runtime;
      if (runtime !== 'scone' && runtime !== 'gramine') {
        throw new EnclavifyError('BAD_OPTIONS', runtime ? `emitPolicy: unknown runtime ${JSON.stringify(runtime)} (scone or gramine)` : 'emitPolicy: no runtime: run injectRuntime before it, or give runtime');
      }
      if (info && info.runtime !== runtime) {
        throw new EnclavifyError('BAD_OPTIONS', `emitPolicy: runtime ${runtime} asked for, but the image was prepared for ${info.runtime}`);
      }
      const sig = await readSigstruct(options);
      const p = await import('../policy/index.js');
      if (runtime === 'scone') sconePolicy(p, draft, options, sig, info);
      else graminePolicy(p, draft, options, sig, info);
    },
  };
}
