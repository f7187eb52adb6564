/**
 * The command a SCONE enclave starts, as the kernel would start the image's Entrypoint + Cmd.
 *
 * SCONE runs one binary in the enclave: the file the kernel executes. For an ELF program that is
 * the program (symlinks resolved: a multi-call binary such as busybox or redis-check-rdb), and
 * argv[0] stays the name the image uses, because multi-call binaries dispatch on it. For a `#!`
 * script the kernel executes the interpreter named in the `#!` line with the script as its
 * argument, so the enclave binary is that interpreter; `#!/usr/bin/env NAME` is resolved here
 * through the image's PATH (SCONE cannot exec env's child inside the enclave), so NAME becomes the
 * interpreter.
 */
import { posix } from 'node:path';
import { EnclavifyError } from '../../oci/errors.js';
import type { RootFs } from '../../fs/merged.js';
import { contentPath } from '../../fs/lookup.js';
import { findStartupFiles, type StartupFiles } from '../../protect/deps.js';

/** The PATH a container runtime uses when the image's Env has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** One `#!` step on the way from the Entrypoint to the enclave binary. */
export interface SconeScriptStep {
  /** Absolute, resolved path of the script. */
  script: string;
  /** The `#!` line without `#!`. */
  line: string;
  /** The interpreter as it is started: the path written in the line, or for `env NAME` the PATH hit. */
  interpreter: string;
}

/** What {@link sconeCommand} found. */
export interface SconeCommand {
  /** The argv to start (image Entrypoint and session command): argv[0] as the image names it. */
  argv: string[];
  /** Absolute path of the file the kernel executes (symlinks resolved): the enclave binary. */
  program: string;
  /** The `#!` chain, empty for an ELF program. */
  scripts: SconeScriptStep[];
  /** Names under which the kernel reaches `program` (argv[0] of the final exec, lexical). */
  startedAs: string;
  /**
   * Set when the script's `#!` interpreter is not in the image: `program` is then the path the
   * line names, which a SCONE-built binary must fill (binaryImage); the image cannot start without.
   */
  missingInterpreter?: string;
}

const abs = (p: string) => (p === '.' || p === '' ? '/' : p.startsWith('/') ? p : `/${p}`);

/** Where PATH finds `name` in the image, as a lexical path (so its basename stays `name`). */
function lookPath(fs: RootFs, name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = posix.join(dir, name);
    const r = fs.resolve(candidate);
    const e = r === undefined ? undefined : fs.get(r);
    if (e && (e.type === 'file' || e.type === 'hardlink') && (e.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

/** The words of an `env` argument: the command and its arguments; refuses options and assignments SCONE cannot apply. */
function envWords(argument: string, script: string): string[] {
  const split = /^(-S|--split-string(=|\s|$))/.test(argument);
  const words = split ? argument.replace(/^(-S|--split-string=?)/, '').trim().split(/\s+/).filter(Boolean) : [argument];
  const i = words.findIndex((w) => w !== '--');
  const first = words[i];
  if (first === undefined || first.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(first)) {
    throw new EnclavifyError('SCONE_BAD_ENTRYPOINT', `scone: script ${script}: "#!/usr/bin/env ${argument}" sets options or variables; a SCONE enclave runs the interpreter directly, without env: write the interpreter's path in the #! line, or set them in the image's Env`);
  }
  return words.slice(i);
}

/**
 * The command the enclave starts for `argv` (Entrypoint + Cmd) in `fs`. Throws
 * `SCONE_BAD_ENTRYPOINT` naming the command when it cannot be started natively either.
 */
export async function sconeCommand(fs: RootFs, argv: readonly string[], options: { env?: string[] | undefined; workingDir?: string | undefined } = {}): Promise<SconeCommand & { startup?: StartupFiles }> {
  if (!argv.length || !argv[0]) throw new EnclavifyError('SCONE_NO_BINARY', 'scone: the image has no Entrypoint/Cmd program to run in the enclave; give binary (--binary)');
  const env = options.env ?? [];
  const pathVar = env.filter((e) => e.startsWith('PATH=')).at(-1)?.slice(5) ?? DEFAULT_PATH;
  let startup: StartupFiles;
  try {
    startup = await findStartupFiles({ lookup: fs, command: argv[0], env, workingDir: options.workingDir || '/' });
  } catch (e) {
    const missing = await withMissingInterpreter(fs, argv, pathVar, options.workingDir || '/');
    if (missing) return missing;
    throw new EnclavifyError('SCONE_BAD_ENTRYPOINT', `scone: cannot start ${JSON.stringify(argv[0])} (the image's Entrypoint/Cmd): ${(e as Error).message}`, { cause: e });
  }
  if (!startup.executables.length) throw new EnclavifyError('SCONE_BAD_ENTRYPOINT', `scone: ${argv[0]} is neither an ELF executable nor a #! script`);
  let cur = [...argv];
  // The kernel hands a script to its interpreter under the path it was executed by: as written
  // when it has a slash (relative stays relative), else where the runtime's PATH lookup found it.
  let executed = argv[0].includes('/') ? argv[0] : abs(startup.argv0Paths[0] ?? startup.program);
  const scripts: SconeScriptStep[] = [];
  for (const step of startup.scriptInterpreters) {
    if (step.envCommand) {
      const [name, ...args] = envWords(step.argument ?? '', abs(step.script));
      const hit = lookPath(fs, name!, pathVar);
      const interpreter = hit && fs.resolve(hit) === step.envCommand.path ? hit : abs(step.envCommand.path);
      cur = [interpreter, ...args, executed, ...cur.slice(1)];
      scripts.push({ script: abs(step.script), line: step.line, interpreter });
      executed = interpreter;
      continue;
    }
    if (posix.basename(step.interpreterPath) === 'env') {
      throw new EnclavifyError('SCONE_BAD_ENTRYPOINT', `scone: script ${abs(step.script)}: cannot tell which command "#!${step.line}" runs; a SCONE enclave runs the interpreter directly, without env: write the interpreter's path (or "/usr/bin/env NAME") in the #! line`);
    }
    cur = [step.interpreterPath, ...(step.argument !== undefined ? [step.argument] : []), executed, ...cur.slice(1)];
    scripts.push({ script: abs(step.script), line: step.line, interpreter: step.interpreterPath });
    executed = step.interpreterPath;
  }
  const program = abs(startup.executables[startup.executables.length - 1]!);
  return { argv: cur, program, scripts, startedAs: cur[0]!, startup };
}

/**
 * The command of a `#!` script whose interpreter (an absolute path, not env) is not in the image:
 * the kernel would run that path, so the enclave binary is expected there. Undefined for any
 * other failure.
 */
async function withMissingInterpreter(fs: RootFs, argv: readonly string[], pathVar: string, workingDir: string): Promise<SconeCommand | undefined> {
  const name = argv[0]!;
  const lexical = name.includes('/') ? posix.resolve(workingDir, name) : lookPath(fs, name, pathVar);
  const real = lexical === undefined ? undefined : fs.resolve(lexical);
  const entry = real === undefined ? undefined : fs.get(real);
  if (!entry || (entry.type !== 'file' && entry.type !== 'hardlink')) return undefined;
  const bytes = (await fs.readFiles([contentPath(entry)])).get(contentPath(entry));
  if (!bytes || bytes[0] !== 0x23 || bytes[1] !== 0x21) return undefined;
  const head = bytes.subarray(2, 256);
  const nl = head.indexOf(0x0a);
  const line = new TextDecoder().decode(nl < 0 ? head : head.subarray(0, nl)).trim();
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m || !m[1]!.startsWith('/') || posix.basename(m[1]!) === 'env' || fs.resolve(m[1]!) !== undefined) return undefined;
  const executed = name.includes('/') ? name : lexical!;
  const cmd = [m[1]!, ...(m[2] ? [m[2]] : []), executed, ...argv.slice(1)];
  return {
    argv: cmd,
    program: posix.normalize(m[1]!),
    scripts: [{ script: abs(real!), line, interpreter: m[1]! }],
    startedAs: m[1]!,
    missingInterpreter: m[1]!,
  };
}

/** Program names that are shells: they fork for every command that is not built in. */
const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh', 'yash', 'busybox']);

/** Undefined dynamic symbols of an ELF file (what it imports), from its .dynsym; empty when it has none (static, or no section headers). */
export function elfImports(b: Uint8Array): Set<string> {
  const out = new Set<string>();
  if (b.length < 64 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) return out;
  const is64 = b[4] === 2;
  const le = b[5] === 1;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o: number) => dv.getUint16(o, le);
  const u32 = (o: number) => dv.getUint32(o, le);
  const word = (o: number) => (is64 ? Number(dv.getBigUint64(o, le)) : u32(o));
  try {
    const shoff = word(is64 ? 0x28 : 0x20);
    const shentsize = u16(is64 ? 0x3a : 0x2e);
    const shnum = u16(is64 ? 0x3c : 0x30);
    if (!shoff || !shnum || shoff + shnum * shentsize > b.length) return out;
    const sh = (i: number) => {
      const o = shoff + i * shentsize;
      return is64
        ? { type: u32(o + 4), offset: word(o + 24), size: word(o + 32), link: u32(o + 40), entsize: word(o + 56) }
        : { type: u32(o + 4), offset: u32(o + 16), size: u32(o + 20), link: u32(o + 24), entsize: u32(o + 36) };
    };
    for (let i = 0; i < shnum; i++) {
      const s = sh(i);
      if (s.type !== 11 /* SHT_DYNSYM */ || s.link >= shnum) continue;
      const str = sh(s.link);
      const ent = s.entsize || (is64 ? 24 : 16);
      for (let o = s.offset + ent; o + ent <= s.offset + s.size && o + ent <= b.length; o += ent) {
        const name = u32(o);
        const shndx = u16(o + (is64 ? 6 : 14));
        if (shndx !== 0 || name === 0 || str.offset + name >= b.length) continue;
        let end = str.offset + name;
        while (end < b.length && b[end] !== 0) end++;
        out.add(new TextDecoder().decode(b.subarray(str.offset + name, end)));
      }
    }
  } catch {
    // A truncated or odd file: no imports known (this is a heuristic).
  }
  return out;
}

/** The fork-related functions whose import makes a program look like it forks. */
export const FORK_IMPORTS = ['fork', 'vfork', 'posix_spawn', 'posix_spawnp'] as const;

/**
 * Heuristic: does the program look like it forks? True when it is a shell (by the name it is
 * started as, or its file name) or its ELF imports fork, vfork or posix_spawn. Returns the reason.
 */
export async function looksLikeItForks(fs: RootFs, command: SconeCommand): Promise<string | undefined> {
  const names = [posix.basename(command.startedAs), posix.basename(command.program)];
  const shell = names.find((n) => SHELLS.has(n));
  if (shell) return `it is a shell (${shell}), which forks for every command that is not built in`;
  const real = fs.resolve(command.program);
  const entry = real === undefined ? undefined : fs.get(real);
  if (!entry || (entry.type !== 'file' && entry.type !== 'hardlink')) return undefined;
  const bytes = (await fs.readFiles([contentPath(entry)])).get(contentPath(entry));
  if (!bytes) return undefined;
  const imports = elfImports(bytes);
  const hits = FORK_IMPORTS.filter((f) => imports.has(f));
  return hits.length ? `${command.program} imports ${hits.join(', ')}` : undefined;
}
