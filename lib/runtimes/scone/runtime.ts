/**
 * The SCONE runtime for `injectRuntime(scone(options))`: rewires a native image the way
 * sconify_image does, for users who run SCONE. The image's Env gets SCONE_CAS_ADDR,
 * SCONE_LAS_ADDR, SCONE_CONFIG_ID (`<namespace>/<session>/<service>`) and the heap, stack, dlopen,
 * fork and log settings; its Entrypoint becomes the binary that runs in the enclave; optionally an
 * enclave-ready binary from another image replaces the native one.
 *
 * It does not protect files: SCONE's file shield is proprietary (see `limits.ts`), so a pipeline
 * that encrypted files for Gramine is refused here (one that only authenticated them is fine: no
 * file changed).
 */
import { EnclavifyError } from '../../oci/errors.js';
import type { RootFs } from '../../fs/merged.js';
import type { Runtime } from '../../transforms/inject-runtime.js';
import type { Draft } from '../../transforms/pipeline.js';
import { CLASSIFICATION, PROTECTION, RUNTIME, type RuntimeInfo } from '../../transforms/state.js';
import { copyFromBinaryImage, type BinaryImageResult } from './binary-image.js';
import { SCONE_FSPF_UNSUPPORTED_MESSAGE } from './limits.js';
import { resolveSettings, sconeConfigIdOf, sconeImageEnv, SCONE_DEFAULTS, type SconeOptions } from './options.js';

/** The PATH a container runtime uses when the image's Env has none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `details` of the RuntimeInfo the SCONE runtime records (for emitPolicy, emitChart and reports). */
export interface SconeRuntimeDetails {
  cas: string;
  las: string;
  /** Whether `las` was given (the chart then passes it on; otherwise pods use their node's IP). */
  lasGiven: boolean;
  heap: string;
  stack: string;
  dlopen: number;
  fork: number;
  log: string;
  namespace: string;
  session: string;
  serviceName: string;
  binary: string;
  /** Names of the variables this runtime set in the image (emitPolicy keeps them out of the session). */
  imageEnv: string[];
  binaryImage?: BinaryImageResult;
}

function hexList(list: (string | Uint8Array)[] | undefined): string[] {
  return [...new Set((list ?? []).map((m, i) => {
    const hex = m instanceof Uint8Array ? Buffer.from(m).toString('hex') : m;
    if (typeof hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hex)) throw new EnclavifyError('SCONE_BAD_OPTIONS', `scone: mrenclaves[${i}]: expected 32 bytes as 64 hex digits`);
    return hex.toLowerCase();
  }))];
}

/** The program `cmd` names, found as a container runtime finds it; undefined when absent. */
function findProgram(fs: RootFs, cmd: string, env: string[], workingDir: string): string | undefined {
  const real = (p: string) => {
    const r = fs.resolve(p);
    return r !== undefined && fs.get(r)?.type === 'file' ? r : undefined;
  };
  if (cmd.includes('/')) return real(cmd.startsWith('/') ? cmd : `${workingDir || '/'}/${cmd}`);
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  for (const dir of pathVar.split(':')) {
    if (!dir.startsWith('/')) continue;
    const hit = real(`${dir}/${cmd}`);
    if (hit) return hit;
  }
  return undefined;
}

/**
 * The SCONE runtime. Throws at `inject` time (naming the option) when the binary cannot be found,
 * a setting is malformed, or an earlier transform encrypted files (SCONE cannot read them).
 */
export function scone(options: SconeOptions): Runtime {
  const serviceName = options.serviceName ?? SCONE_DEFAULTS.serviceName;
  // Validate eagerly: a bad option should fail before any layer is read.
  const configId = sconeConfigIdOf(options.namespace, options.name, serviceName);
  const settings = resolveSettings(options);
  const mrenclaves = hexList(options.mrenclaves);
  if (options.binary !== undefined && !options.binary.startsWith('/')) {
    throw new EnclavifyError('SCONE_BAD_OPTIONS', `scone: binary ${JSON.stringify(options.binary)}: expected an absolute path in the image`);
  }

  return {
    name: 'scone',
    async inject(draft: Draft): Promise<void> {
      // Files encrypted for Gramine are unreadable to SCONE; authentication alone changes no file.
      const protection = draft.state.get(PROTECTION);
      if (protection && protection.keys.length > 0) throw new EnclavifyError('SCONE_FSPF_UNSUPPORTED', SCONE_FSPF_UNSUPPORTED_MESSAGE);
      const cfg = (draft.config.config ??= {});
      const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
      const env = cfg.Env ?? [];
      const workingDir = cfg.WorkingDir ?? '/';

      let binary = options.binary;
      if (!binary) {
        const classified = draft.state.get(CLASSIFICATION);
        const program = classified?.entrypoint?.program ?? (argv[0] !== undefined ? findProgram(await draft.rootfs(), argv[0], env, workingDir) : undefined);
        if (!program) throw new EnclavifyError('SCONE_NO_BINARY', 'scone: the image has no Entrypoint/Cmd program to run in the enclave; give binary (--binary)');
        binary = program.startsWith('/') ? program : `/${program}`;
      }

      let copied: BinaryImageResult | undefined;
      if (options.binaryImage) copied = await copyFromBinaryImage(draft, options.binaryImage, binary);

      const fs = await draft.rootfs();
      const real = fs.resolve(binary);
      const entry = real === undefined ? undefined : fs.get(real);
      if (!entry || entry.type !== 'file') {
        throw new EnclavifyError('SCONE_NO_BINARY', `scone: binary ${binary}: ${entry ? `is a ${entry.type}` : 'no such file'} in the image${options.binaryImage ? '' : ' (binaryImage can copy one from another image)'}`);
      }
      // argv[0] naming the binary (by any path, or through PATH) is replaced by it; any other
      // command (e.g. a script the binary interprets) becomes the binary's arguments.
      const first = argv[0] !== undefined ? findProgram(fs, argv[0], env, workingDir) : undefined;
      const rest = argv.length && (argv[0] === binary || first === real) ? argv.slice(1) : argv;
      const entrypoint = [binary, ...rest];
      cfg.Entrypoint = entrypoint;
      delete cfg.Cmd;

      const vars = sconeImageEnv(settings, configId);
      const names = new Set(vars.map(([k]) => k));
      cfg.Env = [...env.filter((e) => !names.has(e.slice(0, e.indexOf('=')))), ...vars.map(([k, v]) => `${k}=${v}`)];
      draft.addHistory(`enclavify injectRuntime(scone): ENTRYPOINT ${JSON.stringify(entrypoint)}`, `SCONE_CONFIG_ID=${configId}`);

      const details: SconeRuntimeDetails = {
        ...settings,
        lasGiven: options.las !== undefined,
        namespace: options.namespace,
        session: options.name,
        serviceName,
        binary,
        imageEnv: [...names],
        ...(copied ? { binaryImage: copied } : {}),
      };
      const info: RuntimeInfo = {
        runtime: 'scone',
        entrypoint,
        ...(mrenclaves.length ? { mrenclave: mrenclaves } : {}),
        keyNames: [],
        sconeConfigId: configId,
        details: details as unknown as Record<string, unknown>,
      };
      draft.state.set(RUNTIME, info);
      draft.report.injectRuntime = {
        runtime: 'scone',
        entrypoint,
        configId,
        env: Object.fromEntries(vars),
        ...(copied ? { binaryImage: copied } : {}),
        ...(mrenclaves.length ? { mrenclave: mrenclaves } : {}),
      };
      draft.progress(`injectRuntime(scone): entrypoint ${entrypoint.join(' ')}, SCONE_CONFIG_ID=${configId}`);
    },
  };
}
