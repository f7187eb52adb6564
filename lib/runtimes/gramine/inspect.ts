/**
 * What a converted image holds, read back from the image alone (like `gsc info-image`, and more):
 * the runtime and how it starts, the Gramine manifest and its enclave settings, MRENCLAVE and
 * MRSIGNER from the SIGSTRUCT (checked against the `.manifest.sgx` and PAL in the image), and the
 * protected regions from the protection manifest. Never prints key material: development keys in a
 * manifest are reported by name only.
 */
import { createHash } from 'node:crypto';
import type { TomlTable } from 'smol-toml';
import { toml } from '../../oci/lazy-deps.js';
import type { Image } from '../../oci/image.js';
import { measureGramineEnclave, parseSigstruct, verifySigstructSignature } from '../../sgx/index.js';
import { MANIFEST_PATH as PROTECTION_MANIFEST } from '../../protect/manifest.js';
import { parseEnv } from './env.js';
import { hostEnvNames, manifestRisks } from './hardening.js';
import { DEBIAN_LAYOUT, DEFAULT_APP_BASE, LABELS } from './layout.js';
import { coded } from '../../oci/errors.js';
import type { ProgressListener } from '../../oci/progress.js';
import { layersRootFs } from '../../oci/rootfs.js';

/** The SIGSTRUCT of a signed Gramine image. */
export interface SigstructInfo {
  path: string;
  mrenclave: string;
  mrsigner: string;
  isvProdId: number;
  isvSvn: number;
  debug: boolean;
  date: string;
  /** The RSA signature (and Q1/Q2) verify against the SIGSTRUCT's own key. */
  signatureValid: boolean;
  /** MRENCLAVE equals the measurement of the image's `.manifest.sgx` with the image's PAL (undefined if either is missing). */
  mrenclaveMatchesImage?: boolean;
  /** The measurement of the image's `.manifest.sgx` and PAL, when it differs. */
  measuredMrenclave?: string;
}

/** The Gramine part of an inspection. */
export interface GramineInspection {
  manifestPath: string;
  manifestSha256: string;
  manifestSgxPath?: string | undefined;
  /** Loader the image's Entrypoint starts by default (label), `sgx` or `direct`. */
  loader?: string | undefined;
  libosEntrypoint?: string | undefined;
  argv?: string[] | undefined;
  startDir?: string | undefined;
  enclaveSize?: string | undefined;
  maxThreads?: number | undefined;
  debug?: boolean | undefined;
  edmm?: boolean | undefined;
  remoteAttestation?: string | undefined;
  trustedEntries: number;
  allowedEntries: number;
  mounts: Array<{ path: string; type: string; keyName?: string }>;
  /** Names of keys embedded with `fs.insecure__keys` (development images). Values are never read out. */
  insecureKeyNames: string[];
  /** `sys.enable_sigterm_injection`: the host's SIGTERM reaches the program (once). */
  sigtermInjection?: boolean;
  /** Variables the enclave takes from the host (`{ passthrough = true }`): not measured. */
  hostEnv: string[];
  /**
   * What weakens the enclave against its host (see hardening.ts): insecure__ keys, debug,
   * allow_all_but_log, code-loading variables from the host, code or trust anchors from
   * host-writable paths, gramine-direct as the default loader. `enclavify inspect --production`
   * exits 3 when there is any.
   */
  warnings: string[];
  sigstruct?: SigstructInfo;
  /** Problems found (a manifest that does not parse, a signature that does not verify, ...). */
  problems: string[];
}

/** The result of {@link inspectImage}. */
export interface ImageInspection {
  image: string;
  digest: string;
  runtime: 'gramine' | 'scone' | 'native';
  entrypoint: string[];
  cmd: string[];
  labels: Record<string, string>;
  gramine?: GramineInspection;
  scone?: { configId?: string; cas?: string; las?: string; env: Record<string, string> };
  protection?: {
    path: string;
    sha256: string;
    regions: Array<{ name: string; path: string; files?: number }>;
    hostPaths: string[];
    files?: { encrypted: number; authenticated: number; plain: number };
  };
  /** History entries written by enclavify. */
  history: string[];
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const asInt = (v: unknown) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined);

/** Options of {@link inspectImage}. */
export interface InspectOptions {
  /** Byte progress of the scan (phase `scan`). */
  onProgress?: ProgressListener | undefined;
  /** Cancels the scan; inspectImage then rejects with `ABORTED`. */
  signal?: AbortSignal | undefined;
}

/** Reads what a (converted) image holds; scans its layers once. */
export async function inspectImage(image: Image, options: InspectOptions = {}): Promise<ImageInspection> {
  return coded(`inspect ${image.name}`, () => inspect(image, options), options.signal);
}

async function inspect(image: Image, options: InspectOptions): Promise<ImageInspection> {
  const cfg = await image.config();
  const cc = cfg.config ?? {};
  const labels = cc.Labels ?? {};
  const layers = await image.layers();
  const fs = await layersRootFs(layers, { onProgress: options.onProgress, signal: options.signal, progressEvent: { image: image.name } });
  const isFile = (p: string) => fs.stat(p)?.type === 'file';
  const read = async (paths: string[]) => fs.readFiles(paths.filter(isFile));

  const env = Object.fromEntries(parseEnv(cc.Env));
  const manifestPath = labels[LABELS.manifest] ?? (isFile(`${DEFAULT_APP_BASE}.manifest`) ? `${DEFAULT_APP_BASE}.manifest` : undefined);
  const runtime = labels[LABELS.runtime] === 'gramine' || manifestPath ? 'gramine' : env.SCONE_CONFIG_ID || labels[LABELS.runtime] === 'scone' ? 'scone' : 'native';
  const protectionPath = labels[LABELS.protection] ?? PROTECTION_MANIFEST;

  const out: ImageInspection = {
    image: image.name,
    digest: await image.digest(),
    runtime,
    entrypoint: cc.Entrypoint ?? [],
    cmd: cc.Cmd ?? [],
    labels,
    history: (cfg.history ?? []).map((h) => h.created_by ?? '').filter((c) => c.startsWith('enclavify')),
  };

  if (runtime === 'gramine' && manifestPath) {
    const base = manifestPath.replace(/\.manifest$/, '');
    const palPath = labels[LABELS.sgxPal] ?? DEBIAN_LAYOUT.sgxPal;
    const files = await read([manifestPath, `${base}.manifest.sgx`, `${base}.sig`, palPath]);
    out.gramine = gramineInfo(manifestPath, base, palPath, files, labels[LABELS.loader]);
  }
  if (runtime === 'scone') {
    out.scone = {
      configId: env.SCONE_CONFIG_ID, cas: env.SCONE_CAS_ADDR, las: env.SCONE_LAS_ADDR,
      env: Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('SCONE_'))),
    };
  }
  if (isFile(protectionPath)) {
    const bytes = (await read([protectionPath])).get(protectionPath)!;
    try {
      const m = JSON.parse(text(bytes)) as { regions?: Array<{ name: string; path: string }>; hostPaths?: string[]; files?: Array<{ class: string; region?: string }> };
      const count = (c: string) => (m.files ?? []).filter((f) => f.class === c).length;
      out.protection = {
        path: protectionPath,
        sha256: createHash('sha256').update(bytes).digest('hex'),
        regions: (m.regions ?? []).map((r) => ({ name: r.name, path: r.path, ...(m.files ? { files: m.files.filter((f) => f.region === r.name).length } : {}) })),
        hostPaths: m.hostPaths ?? [],
        ...(m.files ? { files: { encrypted: count('encrypted'), authenticated: count('authenticated'), plain: count('plain') } } : {}),
      };
    } catch {
      out.protection = { path: protectionPath, sha256: createHash('sha256').update(bytes).digest('hex'), regions: [], hostPaths: [] };
    }
  }
  return out;
}

function gramineInfo(manifestPath: string, base: string, palPath: string, files: Map<string, Uint8Array>, loader?: string): GramineInspection {
  const problems: string[] = [];
  const manifest = files.get(manifestPath);
  const info: GramineInspection = {
    manifestPath,
    manifestSha256: manifest ? createHash('sha256').update(manifest).digest('hex') : '',
    ...(loader ? { loader } : {}),
    trustedEntries: 0,
    allowedEntries: 0,
    mounts: [],
    insecureKeyNames: [],
    hostEnv: [],
    warnings: [],
    problems,
  };
  if (loader === 'direct') info.warnings.push(`the Entrypoint starts gramine-direct (label ${LABELS.loader}=direct): the program runs without SGX unless ENCLAVIFY_GRAMINE_LOADER=sgx is set`);
  const sgxBytes = files.get(`${base}.manifest.sgx`);
  if (sgxBytes) info.manifestSgxPath = `${base}.manifest.sgx`;
  // Describe what runs under gramine-sgx when signed, else the plain manifest.
  const described = sgxBytes ?? manifest;
  if (!described) problems.push(`${manifestPath} is missing`);
  else {
    try {
      const doc = toml().parse(text(described));
      const t = (k: string) => (doc[k] ?? {}) as TomlTable;
      const sgx = t('sgx'), fsT = t('fs'), loaderT = t('loader');
      info.libosEntrypoint = t('libos').entrypoint as string | undefined;
      info.argv = loaderT.argv as string[] | undefined;
      info.startDir = fsT.start_dir as string | undefined;
      info.enclaveSize = sgx.enclave_size as string | undefined;
      info.maxThreads = asInt(sgx.max_threads);
      info.debug = sgx.debug as boolean | undefined;
      info.edmm = sgx.edmm_enable as boolean | undefined;
      info.remoteAttestation = sgx.remote_attestation as string | undefined;
      info.trustedEntries = Array.isArray(sgx.trusted_files) ? sgx.trusted_files.length : 0;
      info.allowedEntries = Array.isArray(sgx.allowed_files) ? sgx.allowed_files.length : 0;
      info.mounts = ((fsT.mounts ?? []) as TomlTable[]).map((m) => ({ path: String(m.path), type: String(m.type ?? 'chroot'), ...(m.key_name ? { keyName: String(m.key_name) } : {}) }));
      info.insecureKeyNames = Object.keys((fsT.insecure__keys ?? {}) as TomlTable);
      if (t('sys').enable_sigterm_injection === true) info.sigtermInjection = true;
      info.hostEnv = hostEnvNames(doc);
      info.warnings.push(...manifestRisks(doc).map((r) => r.message));
    } catch (e) {
      problems.push(`${sgxBytes ? `${base}.manifest.sgx` : manifestPath} does not parse as TOML: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const sig = files.get(`${base}.sig`);
  if (sig) {
    try {
      const s = parseSigstruct(sig);
      const si: SigstructInfo = {
        path: `${base}.sig`, mrenclave: s.mrenclave, mrsigner: s.mrsigner, isvProdId: s.isvProdId, isvSvn: s.isvSvn, debug: s.debug, date: s.date,
        signatureValid: verifySigstructSignature(sig),
      };
      if (!si.signatureValid) problems.push(`${base}.sig: the signature does not verify`);
      const pal = files.get(palPath);
      if (sgxBytes && pal) {
        try {
          const measured = measureGramineEnclave({ manifestSgx: sgxBytes, pal }).mrenclave;
          si.mrenclaveMatchesImage = measured === s.mrenclave;
          if (!si.mrenclaveMatchesImage) {
            si.measuredMrenclave = measured;
            problems.push(`${base}.sig is for MRENCLAVE ${s.mrenclave}, but ${base}.manifest.sgx with ${palPath} measures ${measured}: the enclave will not start`);
          }
        } catch (e) {
          problems.push(`cannot measure ${base}.manifest.sgx with ${palPath}: ${(e as Error).message}`);
        }
      } else if (!sgxBytes) problems.push(`${base}.sig without ${base}.manifest.sgx`);
      info.sigstruct = si;
    } catch (e) {
      problems.push(`${base}.sig: ${(e as Error).message}`);
    }
  } else if (sgxBytes) problems.push(`${base}.manifest.sgx without ${base}.sig`);
  return info;
}

