/**
 * Discovery of the files a container's program needs before it runs, inside the image's merged
 * root file system: the program found as a container runtime finds it (PATH, working directory),
 * `#!` interpreters (including `#!/usr/bin/env name`), each ELF's program interpreter, and the
 * shared libraries the dynamic loader maps at start, found as glibc's ld.so (or musl's) finds them.
 * These files load before any key exists, so they must stay unencrypted; the runtimes also need
 * every path by which they are reached (Gramine matches trusted files by the opened path).
 *
 * All paths in the result are normalised (relative to the image root, no leading `/`).
 */
import type { FsEntry } from '../fs/entry.js';
import { DF_1_NODEFLIB, isElf, parseElf, type ElfInfo } from '../fs/elf.js';
import {
  contentPath,
  lexicalPath,
  resolvePath,
  SymlinkLoopError,
  type DirectoryLookup,
  type FileLookup,
  type ResolvedPath,
} from '../fs/lookup.js';
import { EnclavifyError } from '../oci/errors.js';
import { componentRe } from './rules.js';

/** The PATH a container runtime uses when the image's Env has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How a library was found: the search step of the dynamic loader that produced it. */
export type LibraryVia =
  | 'path' // the needed name contains a slash and is opened as a path
  | 'rpath' // DT_RPATH of the needing object or of its loaders
  | 'LD_LIBRARY_PATH'
  | 'runpath' // DT_RUNPATH of the needing object
  | 'ld.so.conf' // a directory listed in /etc/ld.so.conf (what ldconfig puts in ld.so.cache)
  | 'default' // the loader's built-in directories
  | 'ld-musl-path' // musl: /etc/ld-musl-<arch>.path or its built-in default
  | 'interpreter'; // the name is the program interpreter itself (ld-linux's soname, musl's libc)

/** One shared library loaded at start. */
export interface StartupLibrary {
  /** The name asked for: a DT_NEEDED string, or an LD_PRELOAD / ld.so.preload item. */
  soname: string;
  /** Resolved (symlink-free) path of the file. */
  path: string;
  /** The path the loader opens (search directory + name), lexically normalised. */
  openedAs: string;
  /** Resolved paths of the objects that need it (empty for preloads). */
  neededBy: string[];
  via: LibraryVia;
  /** Set for libraries preloaded through the environment or /etc/ld.so.preload. */
  preload?: 'LD_PRELOAD' | 'ld.so.preload';
  /**
   * glibc-hwcaps variants (`<dir>/glibc-hwcaps/x86-64-v3/<name>`, resolved paths) that the loader
   * picks instead of `path` on CPUs that support them; they are loaded at start too.
   */
  hwcaps?: string[];
}

/** A needed library, or a program interpreter, that was not found. */
export interface MissingLibrary {
  soname: string;
  /** Resolved paths of the objects that need it. */
  neededBy: string[];
  /** The directories searched, in order (absolute, as the loader would search them). */
  searched: string[];
}

/** One `#!` step: a script and the interpreter the kernel runs for it. */
export interface ScriptInterpreter {
  /** Resolved path of the script. */
  script: string;
  /** The `#!` line, without `#!` and trimmed. */
  line: string;
  /** The interpreter path as written in the line. */
  interpreterPath: string;
  /** Resolved path of the interpreter. */
  interpreter: string;
  /** The optional argument after the interpreter (Linux passes it as one argument). */
  argument?: string;
  /** For `#!/usr/bin/env name`: the command env runs, and its resolved path (found through PATH). */
  envCommand?: { name: string; path: string };
}

/** What {@link findStartupFiles} found. */
export interface StartupFiles {
  /** Resolved path of the command (an ELF executable or a script). */
  program: string;
  /** Every path by which the command is reached: the path the runtime executes, the paths it becomes through symlinks, and `program`. */
  argv0Paths: string[];
  /** Resolved paths of the ELF executables started, in order (`/usr/bin/env` then `python3.11`, for instance). The last one runs the application. */
  executables: string[];
  /** Resolved path of the program interpreter (PT_INTERP) of the last executable; absent for static ones. */
  interpreter?: string;
  /** Resolved program interpreters of all executables, without duplicates. */
  interpreters: string[];
  /** The `#!` chain from `program` to the first ELF executable. */
  scriptInterpreters: ScriptInterpreter[];
  /** Libraries mapped at start by any of the executables' loaders (one entry per process and name). */
  libraries: StartupLibrary[];
  /** For each resolved file above, the other paths (through symlinks) by which it is opened. */
  aliases: Record<string, string[]>;
  /** Every symlink entry crossed to reach these files (e.g. `lib`, `lib64`, `usr/bin/python3`). */
  symlinks: string[];
  /** Loader configuration files read at start that exist in the image (`etc/ld.so.cache`, `etc/ld.so.preload`, musl's path file). */
  loaderFiles: string[];
  /** Every regular file above (program, scripts, interpreters, executables, libraries, loader files), resolved, without duplicates. */
  files: string[];
  /** Needed libraries (or interpreters) that were not found, with who needs them. */
  missing: MissingLibrary[];
  /** Things worth knowing that do not stop the search (unreadable candidates, unexpanded globs, ...). */
  notes: string[];
}

/** Options for {@link findStartupFiles}. */
export interface FindStartupFilesOptions {
  /** The merged root file system; with {@link DirectoryLookup} too, `include` globs in ld.so.conf are expanded. */
  lookup: FileLookup & { readdir?: DirectoryLookup['readdir'] | undefined };
  /** argv[0] from Entrypoint + Cmd: an absolute path, a path relative to `workingDir`, or a bare name looked up in PATH. */
  command: string;
  /** The image config's Env (`KEY=value` strings) or a map; PATH, LD_LIBRARY_PATH and LD_PRELOAD are used. */
  env?: string[] | Record<string, string> | undefined;
  /** The image config's WorkingDir; default `/`. */
  workingDir?: string | undefined;
  /** Upper bound on ELF objects examined per process (default 4096). */
  maxObjects?: number;
}

/** How many `#!` / env hops are followed (the kernel allows 4 nested interpreters; env adds hops). */
const MAX_EXEC_HOPS = 8;
/** How deep ld.so.conf `include` directives are followed. */
const MAX_INCLUDE_DEPTH = 8;

/** Multiarch triplets (Debian layout) by e_machine. */
function multiarch(info: ElfInfo): string[] {
  switch (info.machine) {
    case 62:
      return info.class === 64 ? ['x86_64-linux-gnu'] : ['x86_64-linux-gnux32'];
    case 3:
      return ['i386-linux-gnu'];
    case 183:
      return ['aarch64-linux-gnu'];
    case 40:
      return ['arm-linux-gnueabihf', 'arm-linux-gnueabi'];
    case 21:
      return [info.endian === 'little' ? 'powerpc64le-linux-gnu' : 'powerpc64-linux-gnu'];
    case 22:
      return ['s390x-linux-gnu'];
    case 243:
      return info.class === 64 ? ['riscv64-linux-gnu'] : [];
    case 258:
      return ['loongarch64-linux-gnu'];
    default:
      return [];
  }
}

/** glibc-hwcaps subdirectories, best first, by e_machine (glibc 2.33 and later). */
function hwcapsDirs(info: ElfInfo): string[] {
  if (info.machine === 62 && info.class === 64) return ['x86-64-v4', 'x86-64-v3', 'x86-64-v2'];
  if (info.machine === 21 && info.endian === 'little') return ['power11', 'power10', 'power9'];
  if (info.machine === 22) return ['z17', 'z16', 'z15', 'z14', 'z13'];
  return [];
}

/** glibc's built-in library directories for an ELF of this class and machine. */
function defaultDirs(info: ElfInfo): string[] {
  const dirs: string[] = [];
  for (const t of multiarch(info)) dirs.push(`/lib/${t}`, `/usr/lib/${t}`);
  if (info.class === 64) dirs.push('/lib64', '/usr/lib64');
  else dirs.push('/lib32', '/usr/lib32');
  dirs.push('/lib', '/usr/lib');
  return dirs;
}

/** Values of $LIB and $PLATFORM for dynamic string token expansion. */
function libTokens(info: ElfInfo): string[] {
  return [...(info.class === 64 ? ['lib64'] : []), ...multiarch(info).map((t) => `lib/${t}`), 'lib'];
}

/** Parse `KEY=value` strings (or a map) into a Map; the last value of a key wins. */
function envMap(env: FindStartupFilesOptions['env']): Map<string, string> {
  const m = new Map<string, string>();
  if (Array.isArray(env)) {
    for (const kv of env) {
      const eq = kv.indexOf('=');
      if (eq > 0) m.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  } else if (env) {
    for (const [k, v] of Object.entries(env)) m.set(k, v);
  }
  return m;
}

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Match a file name against a glob component (`*`, `?`, `[...]`), as glob(3) does for ld.so.conf's include. */
function globMatch(pattern: string, name: string): boolean {
  // Like glob(3), a leading dot must be matched explicitly.
  if (name.startsWith('.') && !pattern.startsWith('.')) return false;
  return new RegExp(`^${componentRe(pattern)}$`).test(name);
}

/** An ELF object mapped into one process. */
interface LoadedObject {
  /** Resolved path. */
  path: string;
  /** Directory $ORIGIN expands to (absolute). */
  origin: string;
  info: ElfInfo;
  /** The object whose needs loaded this one (glibc's l_loader), undefined for the executable. */
  loader?: LoadedObject;
}

/** A file as classified on first read: ELF, script, other, or unreadable. */
type Classified =
  | { kind: 'elf'; info: ElfInfo }
  | { kind: 'script'; line: string }
  | { kind: 'other' }
  | { kind: 'error'; message: string };

/** One search candidate for a needed name. */
interface Candidate {
  /** Absolute path as the loader opens it. */
  opened: string;
  resolved: ResolvedPath;
  via: LibraryVia;
  /** Set for a glibc-hwcaps subdirectory candidate. */
  hwcaps?: boolean;
}

/**
 * Find the files a container's program needs at start inside an image: the program (through PATH
 * for a bare name, as a container runtime does), its `#!` interpreters, the ELF executables, their
 * program interpreters and every shared library the loader maps at start (ld.so's order: DT_RPATH
 * when there is no DT_RUNPATH, LD_LIBRARY_PATH, DT_RUNPATH, /etc/ld.so.conf, the default
 * directories; a candidate must be an ELF of the executable's class and machine), plus every path
 * by which each is reached. Each file is read once; reads are batched per level of the dependency
 * graph. Throws an Error naming the command when the program is not found.
 */
export async function findStartupFiles(options: FindStartupFilesOptions): Promise<StartupFiles> {
  return new StartupSearch(options).run();
}

/** A name to load, and who needs it (or which preload list names it). */
interface LoadRequest {
  name: string;
  requester: LoadedObject;
  preload?: 'LD_PRELOAD' | 'ld.so.preload';
}

/** A name being searched: its candidate files and how far the search got. */
interface PendingName {
  req: LoadRequest;
  cands: Candidate[];
  idx: number;
  searched: string[];
  lib?: StartupLibrary;
  done: boolean;
}

/** What the steps of one process's load share. */
interface ProcessState {
  exePath: string;
  main: LoadedObject;
  /** Loaded objects by path. */
  byPath: Map<string, LoadedObject>;
  /** Names already satisfied in this process (needed names, sonames, the interpreter's names). */
  byName: Map<string, StartupLibrary>;
  musl: boolean;
  reported: Set<StartupLibrary>;
  interpLib?: StartupLibrary | undefined;
}

class StartupSearch {
  private readonly lookup: FindStartupFilesOptions['lookup'];
  private readonly env: Map<string, string>;
  private readonly cwd: string;
  private readonly maxObjects: number;
  /** Classified files by resolved path; each file is read at most once. */
  private readonly classified = new Map<string, Classified>();
  private readonly texts = new Map<string, string | undefined>();
  private readonly aliasSets = new Map<string, Set<string>>();
  private readonly symlinks = new Set<string>();
  private readonly files = new Set<string>();
  private readonly notes: string[] = [];
  private confDirs?: string[];
  private readonly result: StartupFiles;
  /** Libraries already reported, by name and path, so that processes sharing one are listed once. */
  private readonly published = new Map<string, StartupLibrary>();

  constructor(private readonly options: FindStartupFilesOptions) {
    this.lookup = options.lookup;
    this.env = envMap(options.env);
    const wd = lexicalPath(options.workingDir ?? '/');
    this.cwd = wd;
    this.maxObjects = options.maxObjects ?? 4096;
    this.result = {
      program: '',
      argv0Paths: [],
      executables: [],
      interpreters: [],
      scriptInterpreters: [],
      libraries: [],
      aliases: {},
      symlinks: [],
      loaderFiles: [],
      files: [],
      missing: [],
      notes: this.notes,
    };
  }

  async run(): Promise<StartupFiles> {
    const { command } = this.options;
    if (!command) throw new EnclavifyError('STARTUP_NO_COMMAND', 'findStartupFiles: no command (Entrypoint and Cmd are empty)');
    const path = this.env.get('PATH') ?? DEFAULT_PATH;
    const program = this.findCommand(command, path, 'program');
    this.result.program = program.path;
    this.result.argv0Paths = [...program.aliases, program.path];
    this.record(program);

    await this.execChain(program, path, 0);

    for (const exe of this.result.executables) await this.loadProcess(exe);
    const last = this.result.executables[this.result.executables.length - 1];
    const lastInterp = last && this.elfInfo(last)?.interpreter;
    if (lastInterp) {
      const r = this.resolve(lastInterp);
      if (r.entry) this.result.interpreter = r.path;
    }

    const aliases: Record<string, string[]> = {};
    for (const f of this.files) {
      const set = this.aliasSets.get(f);
      if (set?.size) aliases[f] = [...set];
    }
    this.result.aliases = aliases;
    this.result.symlinks = [...this.symlinks];
    this.result.files = [...this.files];
    return this.result;
  }

  /** Resolve a path in the image relative to the working directory; a symlink loop becomes a note and an absent result. */
  private resolve(path: string): ResolvedPath {
    try {
      return resolvePath(this.lookup, path, { cwd: this.cwd });
    } catch (err) {
      if (!(err instanceof SymlinkLoopError)) throw err;
      this.note(err.message);
      return { path: lexicalPath(path, this.cwd), links: [], aliases: [] };
    }
  }

  private note(message: string): void {
    if (!this.notes.includes(message)) this.notes.push(message);
  }

  /** Record a found file: its aliases (plus extra opened paths) and the symlinks crossed. */
  private record(r: ResolvedPath, extra: string[] = []): void {
    this.files.add(r.path);
    let set = this.aliasSets.get(r.path);
    if (!set) this.aliasSets.set(r.path, (set = new Set()));
    for (const a of [...r.aliases, ...extra.map((e) => lexicalPath(e, this.cwd))]) if (a !== r.path) set.add(a);
    for (const l of r.links) this.symlinks.add(l);
  }

  private static isRegular(e: FsEntry | undefined): boolean {
    return e?.type === 'file' || e?.type === 'hardlink';
  }

  /**
   * Find a command as a container runtime (Go's exec.LookPath) does: a name with a slash is a path
   * relative to the working directory; a bare name is tried in each PATH directory and must be an
   * executable regular file. Throws, naming the command, when nothing is found.
   */
  private findCommand(name: string, pathVar: string, what: string): ResolvedPath {
    if (name.includes('/')) {
      let r: ResolvedPath;
      try {
        r = resolvePath(this.lookup, name, { cwd: this.cwd });
      } catch (err) {
        throw new EnclavifyError(err instanceof EnclavifyError ? err.code : 'STARTUP_NOT_FOUND', `${what} ${JSON.stringify(name)} cannot be resolved in the image: ${(err as Error).message}`, { cause: err });
      }
      if (!r.entry) throw new EnclavifyError('STARTUP_NOT_FOUND', `${what} ${JSON.stringify(name)} not found in the image (resolved to /${r.path})`);
      if (!StartupSearch.isRegular(r.entry)) throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `${what} ${JSON.stringify(name)} is a ${r.entry.type} in the image (/${r.path}), not a file`);
      if ((r.entry.mode & 0o111) === 0) this.note(`${what} /${r.path} has no execute permission (mode ${r.entry.mode.toString(8)})`);
      return r;
    }
    const skipped: string[] = [];
    for (const dir of pathVar.split(':')) {
      const candidate = `${dir === '' ? '.' : dir}/${name}`;
      let r: ResolvedPath;
      try {
        r = resolvePath(this.lookup, candidate, { cwd: this.cwd });
      } catch (err) {
        if (!(err instanceof SymlinkLoopError)) throw err;
        this.note(err.message);
        continue;
      }
      if (!r.entry) continue;
      if (!StartupSearch.isRegular(r.entry) || (r.entry.mode & 0o111) === 0) {
        skipped.push(`/${r.path} (${r.entry.type}, mode ${r.entry.mode.toString(8)})`);
        continue;
      }
      const opened = lexicalPath(candidate, this.cwd);
      return { ...r, aliases: r.aliases.includes(opened) || opened === r.path ? r.aliases : [opened, ...r.aliases] };
    }
    const also = skipped.length ? `; not executable: ${skipped.join(', ')}` : '';
    throw new EnclavifyError('STARTUP_NOT_FOUND', `${what} ${JSON.stringify(name)} not found in the image: searched PATH ${pathVar}${also}`);
  }

  /** Read and classify files not read yet, in one pass over the layers. */
  private async readExecutables(paths: Iterable<ResolvedPath>): Promise<void> {
    const want = new Map<string, string>(); // resolved path -> content path
    for (const r of paths) {
      if (!r.entry || this.classified.has(r.path) || want.has(r.path)) continue;
      want.set(r.path, contentPath(r.entry));
    }
    if (!want.size) return;
    const contents = await this.lookup.readFiles([...new Set(want.values())]);
    for (const [path, from] of want) {
      const bytes = contents.get(from);
      if (!bytes) {
        this.classified.set(path, { kind: 'error', message: `could not read /${path}` });
        continue;
      }
      this.classified.set(path, StartupSearch.classify(bytes, path));
    }
  }

  private static classify(bytes: Uint8Array, path: string): Classified {
    if (isElf(bytes)) {
      try {
        return { kind: 'elf', info: parseElf(bytes, { path: '/' + path }) };
      } catch (err) {
        return { kind: 'error', message: (err as Error).message };
      }
    }
    if (bytes[0] === 0x23 && bytes[1] === 0x21) {
      // The kernel reads at most 256 bytes of the #! line (BINPRM_BUF_SIZE).
      const head = bytes.subarray(2, 256);
      const nl = head.indexOf(0x0a);
      return { kind: 'script', line: new TextDecoder().decode(nl < 0 ? head : head.subarray(0, nl)) };
    }
    return { kind: 'other' };
  }

  private elfInfo(path: string): ElfInfo | undefined {
    const c = this.classified.get(path);
    return c?.kind === 'elf' ? c.info : undefined;
  }

  /** Follow one exec: an ELF ends the chain; a script continues with its interpreter (and env's command). */
  private async execChain(target: ResolvedPath, pathVar: string, hops: number): Promise<void> {
    if (hops > MAX_EXEC_HOPS) throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `/${target.path}: more than ${MAX_EXEC_HOPS} nested #! interpreters`);
    await this.readExecutables([target]);
    const c = this.classified.get(target.path)!;
    if (c.kind === 'elf') {
      if (c.info.type !== 'EXEC' && c.info.type !== 'DYN') throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `/${target.path} is an ELF ${c.info.type} file, not an executable`);
      if (!this.result.executables.includes(target.path)) this.result.executables.push(target.path);
      return;
    }
    if (c.kind === 'error') throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `cannot start /${target.path}: ${c.message}`);
    if (c.kind === 'other') throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `/${target.path} is neither an ELF executable nor a #! script`);

    // binfmt_script: `#!interpreter[ optional-argument]`; the argument is one string, spaces included.
    const line = c.line.replace(/^[ \t]+/, '').replace(/[ \t\r]+$/, '');
    const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
    if (!m) throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `script /${target.path} has an empty #! line`);
    const interpreterPath = m[1];
    const argument = m[2] || undefined;
    const interp = this.resolve(interpreterPath);
    if (!interp.entry) throw new EnclavifyError('STARTUP_NOT_FOUND', `script /${target.path}: interpreter ${interpreterPath} not found in the image`);
    if (!StartupSearch.isRegular(interp.entry)) throw new EnclavifyError('STARTUP_NOT_EXECUTABLE', `script /${target.path}: interpreter ${interpreterPath} is a ${interp.entry.type}, not a file`);
    this.record(interp, [interpreterPath]);
    const step: ScriptInterpreter = { script: target.path, line, interpreterPath, interpreter: interp.path };
    if (argument !== undefined) step.argument = argument;
    this.result.scriptInterpreters.push(step);

    await this.execChain(interp, pathVar, hops + 1);
    if (basename(interpreterPath) === 'env' && argument !== undefined) {
      const parsed = StartupSearch.parseEnvArgs(argument, pathVar);
      if (!parsed.command) {
        this.note(`script /${target.path}: cannot tell which command "env ${argument}" runs`);
        return;
      }
      const cmd = this.findCommand(parsed.command, parsed.path, `command of ${JSON.stringify('#!' + line)} in /${target.path}:`);
      this.record(cmd);
      step.envCommand = { name: parsed.command, path: cmd.path };
      await this.execChain(cmd, parsed.path, hops + 1);
    }
  }

  /**
   * What `env ARG` runs, with the PATH it searches. Without `-S`, Linux hands env the rest of the
   * `#!` line as one argument, so `python3 -u` is one (odd) command name, as env itself sees it.
   */
  private static parseEnvArgs(argument: string, pathVar: string): { command?: string; path: string } {
    let words: string[];
    if (/^(-S|--split-string(=|\s|$))/.test(argument)) {
      words = argument.replace(/^(-S|--split-string=?)/, '').trim().split(/\s+/).filter(Boolean);
    } else words = [argument];
    let path = pathVar;
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (w === '-i' || w === '-' || w === '--ignore-environment') path = '/bin:/usr/bin'; // glibc execvp's default
      else if (w === '-u' || w === '-C') {
        if (w === '-u' && words[i + 1] === 'PATH') path = '/bin:/usr/bin';
        i++;
      } else if (w.startsWith('--unset=')) {
        if (w === '--unset=PATH') path = '/bin:/usr/bin';
      } else if (w.startsWith('-') && w !== '--') continue;
      else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) {
        if (w.startsWith('PATH=')) path = w.slice(5);
      } else if (w === '--') continue;
      else return { command: w, path };
    }
    return { path };
  }

  /** Read small text files (loader configuration) not read yet, in one pass. */
  private async readTexts(paths: string[]): Promise<void> {
    const want = new Map<string, string>();
    for (const p of paths) {
      if (this.texts.has(p)) continue;
      const r = this.resolve(p);
      if (!r.entry || !StartupSearch.isRegular(r.entry)) {
        this.texts.set(p, undefined);
        continue;
      }
      want.set(p, contentPath(r.entry));
    }
    if (!want.size) return;
    const contents = await this.lookup.readFiles([...new Set(want.values())]);
    for (const [p, from] of want) {
      const bytes = contents.get(from);
      this.texts.set(p, bytes ? new TextDecoder().decode(bytes) : undefined);
    }
  }

  /** Record a loader configuration file that exists in the image. */
  private recordLoaderFile(path: string): void {
    const r = this.resolve(path);
    if (!r.entry || !StartupSearch.isRegular(r.entry)) return;
    if (!this.result.loaderFiles.includes(r.path)) this.result.loaderFiles.push(r.path);
    this.record(r);
  }

  /** Directories from /etc/ld.so.conf and its includes (what ldconfig puts into ld.so.cache), in order. */
  private async ldSoConfDirs(): Promise<string[]> {
    if (this.confDirs) return this.confDirs;
    const dirs: string[] = [];
    const seen = new Set<string>();
    let level = ['/etc/ld.so.conf'];
    for (let depth = 0; level.length && depth <= MAX_INCLUDE_DEPTH; depth++) {
      await this.readTexts(level);
      const next: string[] = [];
      for (const file of level) {
        if (seen.has(file)) continue;
        seen.add(file);
        const text = this.texts.get(file);
        if (text === undefined) continue;
        for (let raw of text.split('\n')) {
          raw = raw.replace(/#.*/, '').trim();
          if (!raw) continue;
          const inc = /^include\s+(.*)$/.exec(raw);
          if (inc) {
            for (const pattern of inc[1].split(/\s+/).filter(Boolean)) next.push(...this.expandGlob(pattern, dirname(file)));
            continue;
          }
          if (/^hwcap\s/.test(raw)) continue;
          for (let d of raw.split(/[\s:,]+/).filter(Boolean)) {
            d = d.replace(/=.*$/, ''); // old `dir=libtype` syntax
            if (d.startsWith('/') && !dirs.includes(d)) dirs.push(d.replace(/\/+$/, '') || '/');
          }
        }
      }
      level = next.filter((f) => !seen.has(f));
      if (depth === MAX_INCLUDE_DEPTH && level.length) this.note(`ld.so.conf includes nest deeper than ${MAX_INCLUDE_DEPTH}; stopped`);
    }
    this.confDirs = dirs;
    return dirs;
  }

  /** Expand an ld.so.conf include pattern (relative patterns are relative to the including file's directory), sorted as glob(3) does. */
  private expandGlob(pattern: string, base: string): string[] {
    const abs = pattern.startsWith('/') ? pattern : `${base}/${pattern}`;
    const parts = abs.split('/').filter(Boolean);
    if (!parts.some((p) => /[*?[]/.test(p))) return ['/' + parts.join('/')];
    if (!this.lookup.readdir) {
      this.note(`ld.so.conf: include ${pattern} not expanded (the file lookup cannot list directories); libraries only found through it are reported missing`);
      return [];
    }
    let prefixes = [''];
    for (const part of parts) {
      const next: string[] = [];
      for (const prefix of prefixes) {
        if (!/[*?[]/.test(part)) {
          next.push(`${prefix}/${part}`);
          continue;
        }
        const dir = this.resolve(prefix || '/');
        if (!dir.entry || dir.entry.type !== 'dir') continue;
        const names = this.lookup.readdir(dir.path) ?? [];
        for (const n of [...names].sort()) if (globMatch(part, n)) next.push(`${prefix}/${n}`);
      }
      prefixes = next;
    }
    return prefixes;
  }

  /** Expand $ORIGIN, $LIB and $PLATFORM in one search-path element; relative results are relative to the working directory. */
  private static expandTokens(element: string, origin: string, info: ElfInfo): string[] {
    let out = [element.replace(/\$(\{ORIGIN\}|ORIGIN(?![A-Za-z0-9_]))/g, origin)];
    if (/\$(\{LIB\}|LIB(?![A-Za-z0-9_]))/.test(element)) {
      out = out.flatMap((e) => libTokens(info).map((v) => e.replace(/\$(\{LIB\}|LIB(?![A-Za-z0-9_]))/g, v)));
    }
    const platform = info.machineName === 'i386' ? 'i686' : info.machineName;
    return out.map((e) => e.replace(/\$(\{PLATFORM\}|PLATFORM(?![A-Za-z0-9_]))/g, platform));
  }

  /** Split a search path (DT_RPATH, DT_RUNPATH, LD_LIBRARY_PATH) into directories; an empty element is the working directory. */
  private searchPath(value: string, origin: string, info: ElfInfo, separators: RegExp): string[] {
    return value.split(separators).flatMap((el) => StartupSearch.expandTokens(el === '' ? '.' : el, origin, info));
  }

  /** Candidate files for `name` in `dirs`, hwcaps subdirectories first in each directory, existing regular files only. */
  private candidatesIn(dirs: string[], name: string, via: LibraryVia, main: ElfInfo, out: Candidate[], searched: string[]): void {
    const hw = via === 'ld-musl-path' ? [] : hwcapsDirs(main);
    for (const dir of dirs) {
      searched.push(dir);
      const base = dir.replace(/\/+$/, '');
      const tries = [...hw.map((h) => ({ opened: `${base}/glibc-hwcaps/${h}/${name}`, hwcaps: true })), { opened: `${base}/${name}`, hwcaps: false }];
      for (const t of tries) {
        const resolved = this.resolve(t.opened);
        if (!resolved.entry || !StartupSearch.isRegular(resolved.entry)) continue;
        out.push({ opened: t.opened, resolved, via, ...(t.hwcaps ? { hwcaps: true } : {}) });
      }
    }
  }

  /** Every candidate for a needed name in the loader's search order. */
  private async candidates(name: string, requester: LoadedObject, main: LoadedObject, musl: boolean, searched: string[]): Promise<Candidate[]> {
    const out: Candidate[] = [];
    if (name.includes('/')) {
      for (const p of StartupSearch.expandTokens(name, requester.origin, main.info)) {
        const resolved = this.resolve(p);
        searched.push(p);
        if (resolved.entry && StartupSearch.isRegular(resolved.entry)) out.push({ opened: p, resolved, via: 'path' });
      }
      return out;
    }
    const ldLibraryPath = this.env.get('LD_LIBRARY_PATH');
    if (musl) {
      // musl: LD_LIBRARY_PATH, then the DT_RUNPATH/DT_RPATH of the requester and each of its loaders, then the system path.
      if (ldLibraryPath) this.candidatesIn(this.searchPath(ldLibraryPath, main.origin, main.info, /[:\n]/), name, 'LD_LIBRARY_PATH', main.info, out, searched);
      for (let o: LoadedObject | undefined = requester; o; o = o.loader) {
        const rp = o.info.runpath ?? o.info.rpath;
        if (rp !== undefined) this.candidatesIn(this.searchPath(rp, o.origin, main.info, /:/), name, o.info.runpath !== undefined ? 'runpath' : 'rpath', main.info, out, searched);
      }
      this.candidatesIn(await this.muslPath(main), name, 'ld-musl-path', main.info, out, searched);
      return out;
    }
    if (requester.info.runpath === undefined) {
      // glibc: DT_RPATH of the requester and of its loaders up to the executable, each unless it has DT_RUNPATH.
      for (let o: LoadedObject | undefined = requester; o; o = o.loader) {
        if (o.info.rpath !== undefined && o.info.runpath === undefined) {
          this.candidatesIn(this.searchPath(o.info.rpath, o.origin, main.info, /:/), name, 'rpath', main.info, out, searched);
        }
      }
    }
    if (ldLibraryPath) this.candidatesIn(this.searchPath(ldLibraryPath, main.origin, main.info, /[:;]/), name, 'LD_LIBRARY_PATH', main.info, out, searched);
    if (requester.info.runpath !== undefined) {
      this.candidatesIn(this.searchPath(requester.info.runpath, requester.origin, main.info, /:/), name, 'runpath', main.info, out, searched);
    }
    if ((requester.info.flags1 & DF_1_NODEFLIB) === 0) {
      this.candidatesIn(await this.ldSoConfDirs(), name, 'ld.so.conf', main.info, out, searched);
      this.candidatesIn(defaultDirs(main.info), name, 'default', main.info, out, searched);
    }
    return out;
  }

  /** musl's system library path: /etc/ld-musl-<arch>.path (directories separated by `:` or newlines), else its built-in default. */
  private async muslPath(main: LoadedObject): Promise<string[]> {
    const interp = main.info.interpreter ?? '';
    const arch = /ld-musl-([^/]+)\.so/.exec(basename(interp))?.[1];
    if (arch) {
      const file = `/etc/ld-musl-${arch}.path`;
      await this.readTexts([file]);
      const text = this.texts.get(file);
      if (text !== undefined) {
        this.recordLoaderFile(file);
        return text.split(/[:\n]/).map((s) => s.trim()).filter(Boolean);
      }
    }
    return ['/lib', '/usr/local/lib', '/usr/lib'];
  }

  /** musl's reserved names (libc, libpthread, librt, libm, libdl, libutil, libxnet), which resolve to the loader itself. */
  private static muslReserved(name: string): boolean {
    return /^lib(c|pthread|rt|m|dl|util|xnet)\./.test(name);
  }

  /** Does this parsed candidate fit a process whose executable is `main`? */
  private static fits(info: ElfInfo, main: ElfInfo): boolean {
    return info.class === main.class && info.endian === main.endian && info.machine === main.machine && info.type === 'DYN';
  }

  /** Walk the dependency graph of one process breadth-first, as the loader maps it. */
  /**
   * One process as ld.so loads it, in named steps: the program interpreter the kernel maps, the
   * preloads, then the DT_NEEDED graph breadth first (each level: plan the names to search, then
   * resolve their candidates), recording every file and the paths it is opened by.
   */
  private async loadProcess(exePath: string): Promise<void> {
    const exeInfo = this.elfInfo(exePath)!;
    const main: LoadedObject = { path: exePath, origin: '/' + dirname(exePath), info: exeInfo };
    const p: ProcessState = {
      exePath,
      main,
      byPath: new Map<string, LoadedObject>([[exePath, main]]),
      byName: new Map<string, StartupLibrary>(),
      musl: /(^|\/)ld-musl-[^/]*$/.test(exeInfo.interpreter ?? ''),
      reported: new Set<StartupLibrary>(),
    };
    if (exeInfo.interpreter === undefined) {
      if (exeInfo.needed.length) this.note(`/${exePath} needs libraries but has no program interpreter; the kernel cannot load them`);
      return;
    }
    const interp = this.mapInterpreter(exePath, exeInfo.interpreter);
    const preloads = await this.preloads(p.musl);
    p.interpLib = await this.interpreterLibrary(p, interp, exeInfo.interpreter);
    let level: LoadRequest[] = [
      ...preloads.map((x) => ({ name: x.name, requester: main, preload: x.from })),
      ...exeInfo.needed.map((name) => ({ name, requester: main })),
    ];
    while (level.length) {
      if (p.byPath.size > this.maxObjects) {
        this.note(`/${exePath}: stopped after ${this.maxObjects} objects`);
        break;
      }
      const pending = await this.planLevel(p, level);
      const accepted = await this.resolveLevel(p, pending);
      level = accepted.flatMap(({ obj }) => obj.info.needed.map((name) => ({ name, requester: obj })));
    }
  }

  /** The program interpreter, which the kernel maps (recorded, or reported missing). */
  private mapInterpreter(exePath: string, interpreter: string): ResolvedPath {
    const exeInfo = { interpreter };
    // The program interpreter, which the kernel maps.
    void exeInfo;
    const interp = this.resolve(interpreter);
    if (!interp.entry || !StartupSearch.isRegular(interp.entry)) {
      this.result.missing.push({ soname: interpreter, neededBy: [exePath], searched: [interpreter] });
      this.note(`program interpreter ${interpreter} of /${exePath} is not in the image`);
    } else {
      this.record(interp, [interpreter]);
      if (!this.result.interpreters.includes(interp.path)) this.result.interpreters.push(interp.path);
    }

    return interp;
  }

  /** Preloads: LD_PRELOAD (spaces or colons) and /etc/ld.so.preload (whitespace), glibc only. */
  private async preloads(musl: boolean): Promise<Array<{ name: string; from: 'LD_PRELOAD' | 'ld.so.preload' }>> {
    const preloads: Array<{ name: string; from: 'LD_PRELOAD' | 'ld.so.preload' }> = [];
    if (!musl) {
      for (const n of (this.env.get('LD_PRELOAD') ?? '').split(/[ :]+/).filter(Boolean)) preloads.push({ name: n, from: 'LD_PRELOAD' });
      await this.readTexts(['/etc/ld.so.preload']);
      const text = this.texts.get('/etc/ld.so.preload');
      if (text !== undefined) {
        this.recordLoaderFile('/etc/ld.so.preload');
        for (const n of text.split(/\s+/).filter(Boolean)) preloads.push({ name: n, from: 'ld.so.preload' });
      }
      this.recordLoaderFile('/etc/ld.so.cache');
    } else {
      for (const n of (this.env.get('LD_PRELOAD') ?? '').split(/[ :]+/).filter(Boolean)) preloads.push({ name: n, from: 'LD_PRELOAD' });
    }

    return preloads;
  }

  /** The interpreter is mapped already, so its names satisfy DT_NEEDED without a search. */
  private async interpreterLibrary(p: ProcessState, interp: ResolvedPath, interpreter: string): Promise<StartupLibrary | undefined> {
    const { byName } = p;
    let interpLib: StartupLibrary | undefined;
    if (interp.entry) {
      await this.readExecutables([interp]);
      const info = this.elfInfo(interp.path);
      interpLib = { soname: info?.soname ?? basename(interpreter), path: interp.path, openedAs: lexicalPath(interpreter, this.cwd), neededBy: [], via: 'interpreter' };
      for (const n of [info?.soname, basename(interpreter), interpreter]) if (n) byName.set(n, interpLib);
    }

    return interpLib;
  }

  /**
   * One level of the breadth-first search: names already satisfied are noted; each new name gets
   * its candidate files (the first requester in breadth-first order decides, as in ld.so).
   */
  private async planLevel(p: ProcessState, level: LoadRequest[]): Promise<PendingName[]> {
    const { byName, reported, musl, interpLib, main } = p;
    const pending: PendingName[] = [];
    const pendingByName = new Map<string, PendingName>();
    for (const req of level) {
    const have = byName.get(req.name);
    if (have) {
      if (!req.preload && !have.neededBy.includes(req.requester.path)) have.neededBy.push(req.requester.path);
      if (have.via === 'interpreter' && !reported.has(have)) {
      reported.add(have);
      const canon = this.publish(have);
      reported.add(canon);
      for (const [k, v] of byName) if (v === have) byName.set(k, canon);
      }
      continue;
    }
    if (musl && interpLib && StartupSearch.muslReserved(req.name)) {
      // musl's loader is also its libc: these names never cause a search.
      const canon = this.publish({ ...interpLib, soname: req.name, neededBy: req.preload ? [] : [req.requester.path] });
      byName.set(req.name, canon);
      continue;
    }
    const p = pendingByName.get(req.name);
    if (p) {
      (p.lib ??= { soname: req.name, path: '', openedAs: '', neededBy: [], via: 'default' });
      if (!req.preload && !p.lib.neededBy.includes(req.requester.path)) p.lib.neededBy.push(req.requester.path);
      continue;
    }
    const searched: string[] = [];
    const cands = await this.candidates(req.name, req.requester, main, musl, searched);
    const entry: PendingName = { req, cands, idx: 0, searched, done: false };
    entry.lib = { soname: req.name, path: '', openedAs: '', neededBy: req.preload ? [] : [req.requester.path], via: 'default' };
    if (req.preload) entry.lib.preload = req.preload;
    pending.push(entry);
    pendingByName.set(req.name, entry);
    }

    return pending;
  }

  /** Reads candidates in batches until each name of the level has a fitting file or none is left. */
  private async resolveLevel(proc: ProcessState, pending: PendingName[]): Promise<Array<{ obj: LoadedObject; requester: LoadedObject }>> {
    const { byName, byPath, main } = proc;
    const accepted: Array<{ obj: LoadedObject; requester: LoadedObject }> = [];
    for (let round = 0; pending.some((p) => !p.done); round++) {
      await this.readExecutables(pending.filter((p) => !p.done && p.idx < p.cands.length).map((p) => p.cands[p.idx].resolved));
      for (const p of pending) {
        if (p.done) continue;
        const lib = p.lib!;
        while (p.idx < p.cands.length) {
          const cand = p.cands[p.idx];
          const c = this.classified.get(cand.resolved.path);
          if (!c) break; // read in the next round
          const fits = c.kind === 'elf' && StartupSearch.fits(c.info, main.info);
          if (!fits) {
            const why = c.kind === 'elf' ? `an ELF ${c.info.class}-bit ${c.info.machineName} ${c.info.type} file` : c.kind === 'error' ? c.message : 'not an ELF file';
            this.note(`skipped ${cand.opened} for ${p.req.name} (needed by /${p.req.requester.path}): ${why}`);
            p.idx++;
            continue;
          }
          if (cand.hwcaps) {
            // Loaded instead of the plain file on CPUs with these capabilities: keep looking for the baseline one.
            (lib.hwcaps ??= []).includes(cand.resolved.path) || lib.hwcaps.push(cand.resolved.path);
            this.record(cand.resolved, [cand.opened]);
            this.addObject(byPath, accepted, cand, p.req.requester);
            p.idx++;
            continue;
          }
          lib.path = cand.resolved.path;
          lib.openedAs = lexicalPath(cand.opened, this.cwd);
          lib.via = cand.via;
          // Other search directories that reach the same file are paths it may be opened by too.
          const also = p.cands.filter((o) => o.resolved.path === lib.path).map((o) => o.opened);
          this.record(cand.resolved, also);
          for (const o of p.cands) if (o.resolved.path === lib.path) for (const l of o.resolved.links) this.symlinks.add(l);
          const obj = this.addObject(byPath, accepted, cand, p.req.requester);
          const canon = this.publish(lib);
          byName.set(p.req.name, canon);
          if (obj.info.soname && !byName.has(obj.info.soname)) byName.set(obj.info.soname, canon);
          p.done = true;
          break;
        }
        if (!p.done && p.idx >= p.cands.length) {
          p.done = true;
          if (lib.hwcaps?.length) {
            // Only hwcaps variants exist: the first one stands for the library.
            lib.path = lib.hwcaps[0];
            const first = p.cands.find((c) => c.resolved.path === lib.path)!;
            lib.openedAs = lexicalPath(first.opened, this.cwd);
            lib.via = first.via;
            byName.set(p.req.name, this.publish(lib));
            this.note(`${p.req.name}: only glibc-hwcaps variants exist (${lib.hwcaps.join(', ')}); CPUs without those capabilities cannot load it`);
          } else {
            this.result.missing.push({ soname: p.req.name, neededBy: p.lib!.neededBy.length ? p.lib!.neededBy : [p.req.preload ?? p.req.requester.path], searched: p.searched });
          }
        }
      }
      if (round > 1000) throw new EnclavifyError('INTERNAL', 'findStartupFiles: candidate resolution did not converge'); // cannot happen: each round advances
    }
    return accepted;
  }


  /** Report a library once across processes: returns the entry already reported for the same name and file, merged. */
  private publish(lib: StartupLibrary): StartupLibrary {
    const key = `${lib.soname}\0${lib.path}`;
    const have = this.published.get(key);
    if (!have) {
      this.published.set(key, lib);
      this.result.libraries.push(lib);
      return lib;
    }
    for (const n of lib.neededBy) if (!have.neededBy.includes(n)) have.neededBy.push(n);
    for (const h of lib.hwcaps ?? []) if (!(have.hwcaps ??= []).includes(h)) have.hwcaps.push(h);
    return have;
  }

  /** Add a newly mapped object to the process (once per resolved path). */
  private addObject(byPath: Map<string, LoadedObject>, accepted: Array<{ obj: LoadedObject; requester: LoadedObject }>, cand: Candidate, requester: LoadedObject): LoadedObject {
    const have = byPath.get(cand.resolved.path);
    if (have) return have;
    const obj: LoadedObject = { path: cand.resolved.path, origin: '/' + dirname(lexicalPath(cand.opened, this.cwd)), info: this.elfInfo(cand.resolved.path)!, loader: requester };
    byPath.set(obj.path, obj);
    accepted.push({ obj, requester });
    return obj;
  }
}
