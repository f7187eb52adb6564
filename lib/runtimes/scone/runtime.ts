/**
 * The SCONE runtime for `injectRuntime(scone(options))`: rewires a native image the way
 * sconify_image does, for users who run SCONE. The image's Env gets SCONE_CAS_ADDR,
 * SCONE_LAS_ADDR, SCONE_CONFIG_ID (`<namespace>/<session>/<service>`) and the heap, stack, dlopen,
 * fork and log settings; its Entrypoint becomes the command as the kernel starts it (argv[0] as
 * the image names it, a script through its `#!` interpreter: see `command.ts`), whose executed
 * file is the enclave binary; optionally an enclave-ready binary from another image replaces the
 * native one.
 *
 * It does not protect files: SCONE's file shield is proprietary (see `limits.ts`), so a pipeline
 * that encrypted files for Gramine is refused here (one that only authenticated them is fine: no
 * file changed).
 */
import { EnclavifyError } from '../../oci/errors.js';
import type { Runtime } from '../../transforms/inject-runtime.js';
import type { Draft } from '../../transforms/pipeline.js';
import { PROTECTION, RUNTIME, type RuntimeInfo } from '../../transforms/state.js';
import { copyFromBinaryImage, type BinaryImageResult } from './binary-image.js';
import { SCONE_FSPF_UNSUPPORTED_MESSAGE } from './limits.js';
import { looksLikeItForks, sconeCommand, type SconeCommand, type SconeScriptStep } from './command.js';
import { resolveSettings, sconeConfigIdOf, sconeImageEnv, SCONE_DEFAULTS, type SconeOptions } from './options.js';

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
  /** The enclave binary: absolute path in the image (`--binary`, default the file the kernel executes). */
  binary: string;
  /** argv[0] of the enclave command, as the image names the program (multi-call binaries dispatch on it). */
  argv0: string;
  /** The `#!` chain from the Entrypoint to the binary, when the Entrypoint is a script. */
  scripts?: SconeScriptStep[];
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

      // The command as the kernel starts it natively: argv[0] as the image names it, a script
      // through the interpreter of its #! line; the file the kernel executes is the enclave binary.
      const native = await draft.rootfs();
      // An image without Entrypoint/Cmd runs the binary it is given, without arguments.
      const command = await sconeCommand(native, argv.length || !options.binary ? argv : [options.binary], { env, workingDir });
      const binary = options.binary ?? command.program;
      const nativeReal = native.resolve(binary);
      if ((nativeReal === undefined ? binary.replace(/^\/+/, '') : nativeReal) !== command.program.replace(/^\/+/, '')) {
        throw new EnclavifyError('SCONE_BINARY_MISMATCH', binaryMismatch(binary, argv, command));
      }

      let copied: BinaryImageResult | undefined;
      if (options.binaryImage) copied = await copyFromBinaryImage(draft, options.binaryImage, binary);

      const fs = await draft.rootfs();
      const real = fs.resolve(binary);
      const entry = real === undefined ? undefined : fs.get(real);
      let missingWarning: string | undefined;
      if (!entry && command.missingInterpreter !== undefined) {
        // The image cannot start natively either; SCONE deployments put a SCONE-built interpreter there.
        missingWarning = `scone: ${argv[0]} is a script for ${command.missingInterpreter} (#!${command.scripts[0]!.line}), which is not in the image: the SCONE image cannot start until a SCONE-built ${command.missingInterpreter} is added (binaryImage, --binary-image)`;
        draft.warn(missingWarning);
      } else if (!entry || entry.type !== 'file') {
        throw new EnclavifyError('SCONE_NO_BINARY', `scone: binary ${binary}: ${entry ? `is a ${entry.type}` : 'no such file'} in the image${options.binaryImage ? '' : ' (binaryImage can copy one from another image)'}`);
      }
      const entrypoint = command.argv;
      cfg.Entrypoint = entrypoint;
      delete cfg.Cmd;
      const forks = settings.fork === 0 ? await looksLikeItForks(fs, command) : undefined;
      const forkWarning = forks
        ? `scone: SCONE_FORK=0 (--fork 0, the default) but the program looks like it forks (${forks}; a heuristic: fork/vfork/posix_spawn imports, or a shell); fork fails in the enclave then: set --fork 1 (fork: 1) if it does`
        : undefined;
      if (forkWarning) draft.warn(forkWarning);

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
        argv0: entrypoint[0]!,
        ...(command.scripts.length ? { scripts: command.scripts } : {}),
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
        binary,
        ...(command.scripts.length ? { scripts: command.scripts } : {}),
        ...(forkWarning || missingWarning ? { warnings: [missingWarning, forkWarning].filter((w): w is string => !!w) } : {}),
        ...(copied ? { binaryImage: copied } : {}),
        ...(mrenclaves.length ? { mrenclave: mrenclaves } : {}),
      };
      draft.progress(`injectRuntime(scone): entrypoint ${entrypoint.join(' ')}, SCONE_CONFIG_ID=${configId}`);
    },
  };
}

/** Why `binary` cannot be the enclave binary for this command, and what to do. */
function binaryMismatch(binary: string, argv: readonly string[], c: SconeCommand): string {
  const how = c.scripts.length
    ? `${argv[0]} is a script; the kernel runs it with ${c.scripts.map((s) => `${s.interpreter} (#!${s.line})`).join(', then ')}, which is ${c.program}`
    : `the kernel runs ${argv[0]}, which is ${c.program}`;
  return `scone: binary (--binary) ${binary} is not the program the image starts: ${how}. A SCONE enclave runs exactly that file. ` +
    `Give --binary ${c.program} (or any path that resolves to it in the image), or change the image's Entrypoint so that it starts ${binary}` +
    `${c.scripts.length ? ` (e.g. ["${binary}", "${c.scripts[0]!.script}"] when ${binary} can run that script)` : ''}.`;
}
