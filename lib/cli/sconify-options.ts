/**
 * The `sconify_image` options `enclavify convert` accepts for the runtime, the policy and the Helm
 * chart, and their mapping onto transforms: `injectRuntime(scone(...))`, `emitPolicy(...)`,
 * `emitChart(...)`. The file-protection options (`--dir`, `--plain`, ...) and the Gramine runtime
 * options are defined beside the convert command; docs/cli.md lists every sconify_image option
 * and what enclavify does with it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SGX_DEVICE_MODES, WORKLOAD_TYPES, type SgxDeviceMode, type WorkloadType } from '../chart/options.js';
import { EnclavifyError } from '../oci/errors.js';
import type { PolicyFragment } from '../policy/index.js';
import { scone, type SconeOptions } from '../runtimes/scone/index.js';
import { checkSconeFileProtection } from '../runtimes/scone/limits.js';
import { parseRef } from '../store/ref.js';
import { emitChart } from '../transforms/emit-chart.js';
import { emitPolicy } from '../transforms/emit-policy.js';
import { injectRuntime } from '../transforms/inject-runtime.js';
import type { Transform } from '../transforms/pipeline.js';
import { CLASSIFICATION } from '../transforms/state.js';
import { UsageError, type OptionSpec, type Parsed } from './args.js';
import type { Image } from '../oci/image.js';

/** Runtime, policy and chart options of `enclavify convert` (sconify_image names where they exist). */
export const sconifyOptions: Record<string, OptionSpec> = {
  runtime: { kind: 'string', arg: 'gramine|scone|coco', help: 'confidential runtime: gramine (open; default), scone (SCONE users; needs SCONE\'s runtime and CAS) or coco (Confidential Containers: a Kata TEE guest; see --tee, --kbs)' },
  'image-name': { kind: 'string', arg: 'REF', help: 'registry reference the image will be pushed to (chart image, session default name); default derived from --to' },
  binary: { kind: 'string', arg: 'PATH', help: 'the binary that runs in the enclave (scone: becomes the Entrypoint); default the image\'s program' },
  'binary-image': { kind: 'string', arg: 'REF', help: 'scone: copy an enclave-ready --binary from this image (oci:DIR[:TAG], docker-archive:FILE, docker://REF) over the native one' },
  'binary-image-path': { kind: 'string', arg: 'PATH', help: 'scone: path of the binary inside --binary-image (default: the --binary path)' },
  'binary-image-file': { kind: 'list', arg: 'FROM[:TO]', help: 'scone: also copy this file (e.g. a library) from --binary-image (repeatable)' },
  name: { kind: 'string', arg: 'NAME', help: 'scone: policy session name (default: from --to, "/", ":", "." replaced by "-")' },
  namespace: { kind: 'string', arg: 'NS', help: 'scone: session namespace, may be nested ns/sub (default: random enclavify-XXXXXXXX)' },
  'create-namespace': { kind: 'flag', help: 'scone: also write the namespace session (policy/namespace.yaml)' },
  'service-name': { kind: 'string', arg: 'NAME', help: 'service name in the session and chart; SCONE_CONFIG_ID=NS/NAME/SERVICE (default "service")' },
  command: { kind: 'string', arg: 'CMD', help: 'scone: command in the session, CAS syntax (default: Entrypoint + Cmd)' },
  env: { kind: 'list', arg: 'KEY=VALUE', help: 'scone: extra environment in the session (repeatable)' },
  'disable-copy-envvars': { kind: 'flag', help: 'scone: do not copy the image\'s Env into the session' },
  volume: { kind: 'list', arg: 'NAME:PATH[:FROM][:TO...]', help: 'encrypted volume (scone: session volume, imported from FROM or exported to TO sessions); chart storage (repeatable)' },
  cas: { kind: 'string', arg: 'ADDR', help: 'scone: CAS address, SCONE_CAS_ADDR (default scone-cas.cf)' },
  las: { kind: 'string', arg: 'ADDR', help: 'scone: LAS address, SCONE_LAS_ADDR (default localhost:18766; chart: the node IP)' },
  secrets: { kind: 'list', arg: 'FILE', help: 'scone: YAML fragment with session secrets (repeatable, merged in order)' },
  injectedfiles: { kind: 'list', arg: 'FILE', help: 'scone: YAML fragment with injected files (repeatable, merged in order)' },
  heap: { kind: 'string', arg: 'SIZE', help: 'scone: SCONE_HEAP, enclave heap (default 1G; changes MRENCLAVE)' },
  stack: { kind: 'string', arg: 'SIZE', help: 'scone: SCONE_STACK (default 1M)' },
  dlopen: { kind: 'string', arg: '0|1|2', help: 'scone: SCONE_ALLOW_DLOPEN (default 1; changes MRENCLAVE)' },
  fork: { kind: 'string', arg: '0|1', help: 'scone: SCONE_FORK (default 0)' },
  log: { kind: 'string', arg: 'LEVEL', help: 'scone: SCONE_LOG (default ERROR)' },
  mrenclave: { kind: 'list', arg: 'HEX', help: 'MRENCLAVE the policy accepts (repeatable); scone: from SCONE_HASH=1 <binary>' },
  sigstruct: { kind: 'string', arg: 'FILE', help: 'SIGSTRUCT (.sig) whose MRENCLAVE (gramine: and MRSIGNER, ISV ids) the policy accepts' },
  'allow-debug-mode': { kind: 'flag', help: 'policy accepts debug enclaves (INSECURE, development only)' },
  'allow-tcb-vulnerabilities': { kind: 'flag', help: 'policy accepts platforms with known vulnerabilities (INSECURE, development only)' },
  'dry-run': { kind: 'flag', help: 'check the options and show what would be done; write nothing' },
  'k8s-helm-workload-type': { kind: 'string', arg: WORKLOAD_TYPES.join('|'), help: 'chart workload kind (default deployment)' },
  'k8s-helm-expose': { kind: 'list', arg: 'PORT', help: 'chart: expose this container port with a Service (repeatable)' },
  'k8s-helm-volume': { kind: 'list', arg: 'NAME:PATH', help: 'chart: plain volume mounted at PATH (repeatable)' },
  'k8s-helm-set': { kind: 'list', arg: 'PATH=VALUE', help: 'chart: values.yaml override, Helm --set syntax (repeatable)' },
  'k8s-helm-output-dir': { kind: 'string', arg: 'DIR', help: 'chart: directory (inside --output-dir) receiving the chart directory (default OUTPUT/chart)' },
  'k8s-helm-manifests': { kind: 'string', arg: 'FILE', help: 'chart: also write the manifests rendered with default values (inside --output-dir)' },
  'sgx-device-mode': { kind: 'string', arg: SGX_DEVICE_MODES.join('|'), help: 'chart: how pods get SGX (default scone for SCONE, intel for Gramine)' },
};

/** Options that only mean something with `--runtime scone`; refused with Gramine rather than ignored. */
export const SCONE_ONLY_OPTIONS = [
  'binary-image', 'binary-image-path', 'binary-image-file', 'name', 'namespace', 'create-namespace', 'command', 'env',
  'disable-copy-envvars', 'cas', 'las', 'secrets', 'injectedfiles', 'heap', 'stack', 'dlopen', 'fork', 'log',
] as const;

/** Where the convert command writes: the destination reference and the output directory. */
export interface SconifyContext {
  /** `--to`. */
  to: string;
  /** `--output-dir` (artifacts are written relative to it). */
  outputDir: string;
  /** `--binary-image`, already opened (a registry image, with the command's registry options). */
  binaryImage?: Image;
}

/**
 * The reference Kubernetes pulls for `--to`: `docker://R` gives R; an OCI layout `oci:DIR:TAG`
 * gives `<basename of DIR>:TAG` (push it there, or set `--image-name`); a docker archive its
 * NAME:TAG.
 */
export function imageNameFor(to: string): string {
  const r = parseRef(to);
  if (r.transport === 'docker') return r.reference;

  if (r.transport === 'docker-archive') return r.name ?? `${repoName(path.basename(r.file).replace(/\.tar$/, ''))}:latest`;
  const repo = repoName(path.basename(path.resolve(r.dir)));
  return r.digest ? `${repo}@${r.digest}` : `${repo}:${r.tag ?? 'latest'}`;
}

function repoName(s: string): string {
  const n = s.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').replace(/[^a-z0-9]+$/, '');
  return n || 'image';
}

/** sconify_image's default session name: the image name with `/`, `:`, `.` (and `@`) replaced by `-`. */
export function defaultSessionName(imageName: string): string {
  const n = imageName.replace(/[/:.@]/g, '-').replace(/[^A-Za-z0-9_~-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 128);
  return n || 'session';
}

/** A fresh namespace, as sconify_image makes one when --namespace is not given. */
export function randomNamespace(): string {
  return `enclavify-${randomBytes(4).toString('hex')}`;
}

function intOption(parsed: Parsed, name: string, allowed: number[]): number | undefined {
  const v = parsed.strings[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !allowed.includes(n)) throw new UsageError(`--${name}=${v}: expected ${allowed.join(', ')}`);
  return n;
}

function oneOf<T extends string>(parsed: Parsed, name: string, values: readonly T[]): T | undefined {
  const v = parsed.strings[name];
  if (v !== undefined && !values.includes(v as T)) throw new UsageError(`--${name}=${v}: expected one of ${values.join(', ')}`);
  return v as T | undefined;
}

function fragments(files: string[], option: string): PolicyFragment[] {
  return files.map((f) => {
    try {
      return { source: f, text: readFileSync(f, 'utf8') };
    } catch (e) {
      throw new EnclavifyError('UNREADABLE', `--${option} ${f}: ${(e as Error).message}`);
    }
  });
}

/** A path given on the command line, as an artifact path relative to the output directory. */
function insideOutput(ctx: SconifyContext, option: string, p: string): string {
  const rel = path.relative(path.resolve(ctx.outputDir), path.resolve(p));
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new UsageError(`--${option}=${p}: must be inside --output-dir ${ctx.outputDir} (everything the conversion writes goes there)`);
  }
  return rel.split(path.sep).join('/');
}

const list = (parsed: Parsed, name: string): string[] => parsed.lists[name] ?? [];

/**
 * `--binary` with Gramine: Gramine runs the image's own program (scripts through their
 * interpreter), so `--binary` is accepted when it names that program or its interpreter, and
 * refused otherwise rather than silently ignored.
 */
export function gramineBinaryCheck(binary: string): Transform {
  return {
    name: 'checkBinary',
    async apply(draft) {
      const program = (draft.state.get(CLASSIFICATION))?.entrypoint?.program;
      const enclave = (draft.report['injectRuntime(gramine)'] as { enclave?: { entrypoint?: string } } | undefined)?.enclave?.entrypoint;
      const accepted = [program, enclave].filter((p): p is string => !!p);
      if (!accepted.length) return;
      const fs = await draft.rootfs();
      const real = (p: string) => fs.resolve(p) ?? p;
      if (accepted.some((p) => real(p) === real(binary))) return;
      throw new UsageError(`--binary=${binary}: with --runtime gramine the enclave runs the image's own program (${accepted.join(', ')}); change the image's Entrypoint, or drop --binary`);
    },
  };
}

/**
 * Maps the parsed options onto transforms, to run after the protection transforms:
 * - `--runtime scone`: `injectRuntime(scone(...))`, `emitPolicy(...)`, `emitChart(...)`;
 * - `--runtime gramine` (default): a `--binary` check, `emitPolicy(...)`, `emitChart(...)`; the
 *   caller puts `injectRuntime(gramine(...))` before them.
 *
 * When the enclave identity is unknown (no `--mrenclave`/`--sigstruct`, image not signed) the
 * policy is skipped with a warning (`report.emitPolicy.skipped`; for SCONE the session id is still
 * reported): SCONE's MRENCLAVE can only be measured in the converted image.
 *
 * Throws `UsageError` for malformed values, SCONE-only options with Gramine, and `--dir` with
 * SCONE (whose file-shield format is proprietary). Reads `--secrets`/`--injectedfiles` files.
 */
export function runtimePolicyChartTransforms(parsed: Parsed, ctx: SconifyContext): Transform[] {
  const runtime = oneOf(parsed, 'runtime', ['gramine', 'scone'] as const) ?? 'gramine';
  const imageName = parsed.strings['image-name'] ?? imageNameFor(ctx.to);
  const allowDebugMode = parsed.flags['allow-debug-mode'] === true;
  const allowTcbVulnerabilities = parsed.flags['allow-tcb-vulnerabilities'] === true;
  const mrenclaves = list(parsed, 'mrenclave');
  for (const m of mrenclaves) if (!/^[0-9a-fA-F]{64}$/.test(m)) throw new UsageError(`--mrenclave=${m}: expected 64 hex digits`);
  const sigstructFile = parsed.strings.sigstruct;
  const volumes = list(parsed, 'volume');

  const expose = list(parsed, 'k8s-helm-expose').map((p) => {
    const n = Number(p);
    if (!/^[0-9]+$/.test(p) || n < 1 || n > 65535) throw new UsageError(`--k8s-helm-expose=${p}: expected a port 1-65535`);
    return n;
  });
  const workloadType = oneOf<WorkloadType>(parsed, 'k8s-helm-workload-type', WORKLOAD_TYPES);
  const sgxDevice = oneOf<SgxDeviceMode>(parsed, 'sgx-device-mode', SGX_DEVICE_MODES);
  const helmOut = parsed.strings['k8s-helm-output-dir'];
  const manifests = parsed.strings['k8s-helm-manifests'];
  // Like sconify_image, a chart only when a --k8s-helm-* (or the device mode) option asks for one.
  const wantChart = Object.keys(sconifyOptions).some((o) => (o.startsWith('k8s-helm-') || o === 'sgx-device-mode') && given(parsed, o));
  const chartStep = emitChart({
    image: imageName,
    runtime,
    ...(parsed.strings['service-name'] ? { serviceName: parsed.strings['service-name'] } : {}),
    ...(workloadType ? { workloadType } : {}),
    ...(expose.length ? { expose } : {}),
    volumes: list(parsed, 'k8s-helm-volume'),
    encryptedVolumes: volumes,
    set: list(parsed, 'k8s-helm-set'),
    ...(sgxDevice ? { sgxDevice } : {}),
    ...(helmOut !== undefined ? { parentDir: insideOutput(ctx, 'k8s-helm-output-dir', helmOut) } : {}),
    ...(manifests !== undefined ? { manifestsPath: insideOutput(ctx, 'k8s-helm-manifests', manifests) } : {}),
  });
  const chart = wantChart ? [chartStep] : [];

  if (runtime === 'gramine') {
    const sconeOnly = SCONE_ONLY_OPTIONS.filter((o) => given(parsed, o));
    if (sconeOnly.length) throw new UsageError(`${sconeOnly.map((o) => `--${o}`).join(', ')}: only with --runtime scone`);
    for (const v of volumes) if (v.split(':').length > 2) throw new UsageError(`--volume=${v}: importing or exporting volumes between sessions is a SCONE CAS feature (--runtime scone)`);
    const policy = emitPolicy({
      runtime: 'gramine',
      missingIdentity: 'skip',
      mrenclaves,
      ...(sigstructFile ? { sigstructFile } : {}),
      allowDebugMode,
      allowTcbVulnerabilities,
      gramine: { name: imageName },
    });
    return [...(parsed.strings.binary ? [gramineBinaryCheck(parsed.strings.binary)] : []), policy, ...chart];
  }

  try {
    checkSconeFileProtection({ dirs: list(parsed, 'dir') });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const namespace = parsed.strings.namespace ?? randomNamespace();
  const name = parsed.strings.name ?? defaultSessionName(imageName);
  const serviceName = parsed.strings['service-name'] ?? 'service';
  const binaryImage = parsed.strings['binary-image'];
  if (!binaryImage && (parsed.strings['binary-image-path'] || list(parsed, 'binary-image-file').length)) {
    throw new UsageError('--binary-image-path and --binary-image-file need --binary-image');
  }
  const dlopen = intOption(parsed, 'dlopen', [0, 1, 2]) as 0 | 1 | 2 | undefined;
  const fork = intOption(parsed, 'fork', [0, 1]) as 0 | 1 | undefined;
  const sconeOptions: SconeOptions = {
    namespace,
    name,
    serviceName,
    ...(parsed.strings.binary ? { binary: parsed.strings.binary } : {}),
    ...(binaryImage
      ? {
          binaryImage: {
            image: ctx.binaryImage ?? binaryImage,
            ...(parsed.strings['binary-image-path'] ? { path: parsed.strings['binary-image-path'] } : {}),
            files: list(parsed, 'binary-image-file').map((f) => {
              const [from, to, extra] = f.split(':');
              if (extra !== undefined || !from) throw new UsageError(`--binary-image-file=${f}: expected FROM[:TO]`);
              return to ? { from, to } : from;
            }),
          },
        }
      : {}),
    ...(parsed.strings.cas ? { cas: parsed.strings.cas } : {}),
    ...(parsed.strings.las ? { las: parsed.strings.las } : {}),
    ...(parsed.strings.heap ? { heap: parsed.strings.heap } : {}),
    ...(parsed.strings.stack ? { stack: parsed.strings.stack } : {}),
    ...(dlopen !== undefined ? { dlopen } : {}),
    ...(fork !== undefined ? { fork } : {}),
    ...(parsed.strings.log ? { log: parsed.strings.log } : {}),
    mrenclaves,
  };
  let runtimeStep: Transform;
  try {
    runtimeStep = injectRuntime(scone(sconeOptions));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const policy = emitPolicy({
    runtime: 'scone',
    missingIdentity: 'skip',
    mrenclaves,
    ...(sigstructFile ? { sigstructFile } : {}),
    allowDebugMode,
    allowTcbVulnerabilities,
    scone: {
      namespace,
      name,
      serviceName,
      ...(parsed.strings.command !== undefined ? { command: parsed.strings.command } : {}),
      env: list(parsed, 'env'),
      disableCopyEnv: parsed.flags['disable-copy-envvars'] === true,
      volumes,
      secrets: fragments(list(parsed, 'secrets'), 'secrets'),
      injectedFiles: fragments(list(parsed, 'injectedfiles'), 'injectedfiles'),
      createNamespace: parsed.flags['create-namespace'] === true,
    },
  });
  return [runtimeStep, policy, ...chart];
}

/** Whether an option was given on the command line. */
export function given(parsed: Parsed, o: string): boolean {
  return parsed.strings[o] !== undefined || parsed.flags[o] === true || (parsed.lists[o]?.length ?? 0) > 0;
}
