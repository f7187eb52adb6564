/**
 * `gramine(options)`: the open runtime for `injectRuntime`. Adds a Gramine 1.9 installation from a
 * runtime image or directory as a layer, generates the manifest from the image and the protection
 * result, optionally signs the enclave, writes manifest, start script and signature as a second
 * layer, and points the image's Entrypoint at the start script. See docs/gramine.md.
 */
import { posix } from 'node:path';
import type { TomlTable } from 'smol-toml';
import { EnclavifyError } from '../../oci/errors.js';
import type { Image } from '../../oci/image.js';
import { ancestors, compareBytewise, normalizePath, type FsEntry } from '../../fs/entry.js';
import { RootFs, scanLayer } from '../../fs/merged.js';
import { isElf, parseElf } from '../../fs/elf.js';
import { findStartupFiles, type StartupFiles } from '../../protect/deps.js';
import { DEFAULT_PLAIN_DIRS, DEFAULT_PLAIN_FILES } from '../../protect/rules.js';
import type { Draft, LayerItem } from '../../transforms/pipeline.js';
import { refreshProtectionManifest } from '../../transforms/encrypt-fs.js';
import { CLASSIFICATION, PROTECTION, RUNTIME, type Classification, type Protection, type Region, type RuntimeInfo } from '../../transforms/state.js';
import { DEFAULT_LIBRARY_DIRS, ldSoConfDirs, loaderEnv, parseEnv } from './env.js';
import { DEBIAN_LAYOUT, DEFAULT_APP_BASE, defaultCopyPaths, LABELS, parentDir, withPrefix, type GramineLayout } from './layout.js';
import { launcherScript } from './launcher.js';
import { manifestRisks } from './hardening.js';
import { buildGramineManifest, type EnclaveSettings, type GramineMount } from './manifest.js';
import { fileLists, type Listing } from './files.js';
import { isUnder, reachableFiles, type ReachablePath } from './paths.js';
import { signDate, signerFrom, signManifest, fileEntry, type SigningOptions } from './sign.js';
import { loadRuntimeFiles, openRuntimeFile, type RuntimeFiles } from './source.js';

/** Paths no program opens as files under Gramine (it emulates them) or that hold nothing to trust. */
export const DEFAULT_EXCLUDED: readonly string[] = ['/boot', '/dev', '/proc', '/sys'];
/**
 * Without a classification, files here are plain (`sgx.allowed_files`, unchecked): variable data,
 * and files the container runtime replaces at start (`/etc/hosts`, `/etc/resolv.conf`, ...).
 */
export const DEFAULT_PLAIN: readonly string[] = [...DEFAULT_PLAIN_DIRS.filter((d) => !DEFAULT_EXCLUDED.includes(d) && d !== '/tmp'), ...DEFAULT_PLAIN_FILES];

/** Options of {@link gramine}. */
export interface GramineOptions extends SigningOptions {
  /** Runtime image holding Gramine (reference such as `oci:/images/gramine:1.9`, or an opened Image). */
  runtimeImage?: string | Image | undefined;
  /** Or a directory holding a Gramine installation (a root file system, e.g. an unpacked runtime image or a DESTDIR). */
  runtimeDir?: string | undefined;
  /** Where Gramine's files are in the source (default: Debian/Ubuntu packages, {@link DEBIAN_LAYOUT}). */
  layout?: Partial<GramineLayout>;
  /** Source paths to copy (default: the two launchers and the directory of `libsysdb.so`). */
  copy?: string[];
  /** Put the runtime under this directory in the image (e.g. `/gramine`); default: at its own paths. */
  prefix?: string;
  /** Loader the Entrypoint starts: `sgx` (default, needs a signature) or `direct` (no SGX, development). */
  loader?: 'sgx' | 'direct';
  /** Application base in the image (default `/gramine/app/entrypoint`). */
  appBase?: string;
  /** Program and arguments instead of the image's Entrypoint + Cmd. */
  argv?: string[];
  /** `sgx.enclave_size` (default `"1G"`). */
  enclaveSize?: string;
  /** `sgx.max_threads` (default 16). */
  maxThreads?: number;
  /** `sgx.debug` (default false). */
  debug?: boolean;
  /** `sgx.edmm_enable` (default false). */
  edmm?: boolean;
  /** `sgx.remote_attestation` (default `dcap` when encrypted regions need keys at run time, else `none`). */
  remoteAttestation?: 'none' | 'dcap';
  isvProdId?: number;
  isvSvn?: number;
  /** `loader.log_level` (default `error`). */
  logLevel?: 'none' | 'error' | 'warning' | 'debug' | 'trace' | 'all';
  /**
   * Variables the enclave takes from the host at run time (`{ passthrough = true }`: not measured,
   * the host controls them). With `production`, names that load code, pick trust anchors or steer
   * attestation (`LD_*`, `PATH`, `PYTHONPATH`, `SECRET_PROVISION_CA_CHAIN_PATH`, ...; see
   * `hostEnvRisk`) are refused.
   */
  passthroughEnv?: string[];
  /** Use Gramine's patched glibc (`LD_LIBRARY_PATH`, as GSC does): `auto` (default) when the program uses glibc. */
  runtimeGlibc?: boolean | 'auto';
  /** Not listed at all (default {@link DEFAULT_EXCLUDED}). */
  exclude?: readonly string[];
  /** Plain without a classification (default {@link DEFAULT_PLAIN}: the protection defaults). */
  plain?: readonly string[];
  /** `tmpfs` mounts (default `["/tmp"]`). */
  tmpfs?: string[];
  /** Development only: put the region keys into the manifest (`fs.insecure__keys`). Refused with `production`. */
  insecureDevKeys?: boolean;
  /**
   * Production build: refuses `insecureDevKeys`, `debug`, the direct loader, and a manifest
   * (fragment included) with any `insecure__` key, `sgx.file_check_policy` other than `strict`,
   * code-loading or trust-anchor variables taken from the host, `loader.argv_src_file` /
   * `env_src_file` that are not trusted files, or `untrusted_shm` mounts (see hardening.ts).
   * Code and trust anchors from host-writable paths are refused in every build.
   */
  production?: boolean;
  /**
   * `sys.enable_sigterm_injection = true`: Gramine passes the host's SIGTERM to the program once, so
   * `docker stop` and pod deletion stop it gracefully (without it Gramine ignores SIGTERM and the
   * container is killed after the grace period). Host input: the host picks the moment.
   */
  sigtermInjection?: boolean;
  /**
   * Keys from a Gramine secret-provisioning server after attestation (preloads Gramine's
   * `libsecret_prov_attest.so`): `servers` is `host:port[;host:port...]`; `caChainPath` (required:
   * Gramine 1.9 will not start without it) is the verifier's CA certificate, an authenticated file
   * of the image.
   */
  secretProvisioning?: { servers: string; keyName?: string; caChainPath?: string };
  /** TOML merged last (text, or an object; integers become TOML integers). */
  manifestFragment?: string | TomlTable | Record<string, unknown>;
  /** Stop when more trusted/allowed entries than this would be listed (default 1,000,000). */
  maxEntries?: number;
  /**
   * Copy the libraries Gramine's SGX host loader needs (e.g. libprotobuf-c) from the runtime
   * source when the image lacks them (default true). Never replaces files of the image.
   */
  hostLibraries?: boolean;
}

// gramine() itself (the options check) is in entry.ts, so that this module loads when a pipeline runs it.
export { gramine } from './entry.js';

const abs = (p: string) => (p === '.' ? '/' : `/${p}`);
const norm = (p: string): string => {
  const n = normalizePath(p);
  if (n instanceof Error) throw new EnclavifyError('GRAMINE_BAD_PATH', `${JSON.stringify(p)}: ${n.message}`);
  return n ?? '.';
};

/** libos.entrypoint and loader.argv as the kernel would run Entrypoint + Cmd (scripts through their interpreters). */
export function enclaveCommand(argv: readonly string[], s: StartupFiles): { entrypoint: string; argv: string[] } {
  if (!s.executables.length) throw new EnclavifyError('GRAMINE_BAD_ENTRYPOINT', `${argv[0]} is neither an ELF executable nor a #! script`);
  let cur = [...argv];
  // The kernel passes the script as the path it was executed by, then the old argv[1..]: a path
  // with a slash as written (a relative one stays relative: the interpreter opens it from the
  // working directory, fs.start_dir, and $0 is what a native run sees), a bare name as PATH found it.
  let executed = argv[0]!.includes('/') ? argv[0]! : abs(s.argv0Paths[0] ?? s.program);
  for (const step of s.scriptInterpreters) {
    cur = [step.interpreterPath, ...(step.argument !== undefined ? [step.argument] : []), executed, ...cur.slice(1)];
    executed = step.interpreterPath;
  }
  const last = s.scriptInterpreters[s.scriptInterpreters.length - 1];
  return { entrypoint: abs(last ? last.interpreter : s.program), argv: cur };
}

/** DT_RUNPATH and DT_RPATH directories of an ELF file at `path` (`$ORIGIN` expanded; other tokens left, and skipped by the check). */
function elfSearchDirs(path: string, bytes: Uint8Array): Array<{ dir: string; from: string }> {
  if (!isElf(bytes)) return [];
  let info;
  try {
    info = parseElf(bytes, { path });
  } catch {
    return [];
  }
  const out: Array<{ dir: string; from: string }> = [];
  for (const [tag, value] of [['DT_RUNPATH', info.runpath], ['DT_RPATH', info.rpath]] as const) {
    for (const d of value?.split(':') ?? []) {
      if (d) out.push({ dir: d.replace(/\$(\{ORIGIN\}|ORIGIN(?![A-Za-z0-9_]))/g, posix.dirname(path)), from: `${tag} of ${path}` });
    }
  }
  return out;
}

/** Numeric uid/gid for the config's User (`name`, `uid`, `uid:gid`, names looked up in /etc/passwd and /etc/group). */
async function resolveUser(user: string | undefined, fs: RootFs, warn: (m: string) => void): Promise<{ uid?: number; gid?: number }> {
  if (!user) return {};
  const [u, g] = user.split(':');
  const table = async (file: string) => {
    try {
      const text = new TextDecoder().decode((await fs.readFiles([file])).get(file));
      return text.split('\n').map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  let uid: number | undefined, gid: number | undefined;
  if (/^\d+$/.test(u)) uid = Number(u);
  const passwd = uid === undefined || g === undefined ? await table('etc/passwd') : [];
  if (uid === undefined) {
    const row = passwd.find((r) => r[0] === u);
    if (row) uid = Number(row[2]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else gid = Number((await table('etc/group')).find((r) => r[0] === g)?.[2] ?? NaN);
  } else {
    const row = passwd.find((r) => r[0] === u || r[2] === String(uid));
    if (row) gid = Number(row[3]);
  }
  if (uid === undefined || Number.isNaN(uid) || (gid !== undefined && Number.isNaN(gid))) {
    warn(`image User ${JSON.stringify(user)} not found in /etc/passwd or /etc/group: the enclave runs as uid 0`);
    return {};
  }
  return { uid, ...(gid !== undefined && !Number.isNaN(gid) ? { gid } : {}) };
}

/**
 * How the SGX host loader's libraries are matched against the image: present when the image has a
 * file where the loader opens it or under the same name in a library directory; otherwise copied to
 * where the loader will open it (through the image's own symlinked directories).
 */
function hostLoaderCheck(app: RootFs, loader: string, libDirs: string[]) {
  return {
    path: loader,
    present: (openedAs: string | undefined, soname: string) =>
      (openedAs !== undefined && app.stat(openedAs)?.type === 'file') || libDirs.some((d) => app.stat(`${d}/${soname}`)?.type === 'file'),
    where: (openedAs: string): string | undefined => {
      const dir = posix.dirname(openedAs);
      const real = app.resolve(dir);
      if (real !== undefined) return app.get(real)?.type === 'dir' ? `${abs(real)}/${posix.basename(openedAs)}` : undefined;
      // The directory is missing: it is created unless part of its path is not a directory.
      return ancestors(norm(openedAs)).every((a) => !app.get(a) || app.get(a)!.type === 'dir') ? openedAs : undefined;
    },
  };
}

/** A directory entry for a new layer. */
function dirEntry(p: string, mtime: number): FsEntry {
  return { path: norm(p), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0 };
}

/** Checks that the runtime's paths can be added over the image; returns the entries to write. */
function runtimeItems(rt: RuntimeFiles, app: RootFs, mtime: number, warn: (m: string) => void): LayerItem[] {
  const items: LayerItem[] = [];
  const checked = new Set<string>();
  for (const { entry, file } of rt.entries) {
    for (const a of ancestors(entry.path)) {
      if (checked.has(a)) continue;
      checked.add(a);
      const e = app.get(a);
      if (e && e.type !== 'dir') {
        throw new EnclavifyError('GRAMINE_PATH_CONFLICT', `cannot add Gramine's ${abs(entry.path)}: ${abs(a)} is a ${e.type}${e.linkname ? ` (-> ${e.linkname})` : ''} in the image; put the runtime under a prefix (gramine({ prefix: '/gramine' }))`);
      }
    }
    const have = app.get(entry.path);
    if (have && entry.type === 'dir') {
      if (have.type === 'dir') continue; // keep the image's own directory metadata
      throw new EnclavifyError('GRAMINE_PATH_CONFLICT', `cannot add Gramine's directory ${abs(entry.path)}: it is a ${have.type} in the image`);
    }
    if (have) warn(`the Gramine runtime replaces ${abs(entry.path)} of the image`);
    const e: FsEntry = { ...entry, mtime: Math.min(entry.mtime, mtime) };
    items.push(file ? { entry: e, content: openRuntimeFile(file) } : { entry: e });
  }
  return items;
}

/** Writes the runtime layer; returns the merged view with it (without rescanning the image) and the PAL if asked. */
async function addRuntimeLayer(draft: Draft, rt: RuntimeFiles, app: RootFs, mtime: number, prefix: string, palPath: string | undefined, warn: (m: string) => void): Promise<{ view: RootFs; runtimePaths: Set<string>; sgxPal?: Uint8Array | undefined }> {
  try {
    const items = runtimeItems(rt, app, mtime, warn);
    const sgxPal = palPath ? await rt.read(palPath) : undefined;
    const layer = await draft.buildLayer(items, 'Gramine runtime layer');
    draft.addLayer(layer, { createdBy: `enclavify injectRuntime(gramine): Gramine runtime from ${rt.name}`, comment: `${items.length} entries${prefix ? ` under ${prefix}` : ''}` });
    const source = { name: layer.name, open: () => layer.uncompressed() };
    const index = await scanLayer(source);
    const view = RootFs.fromIndexes([...app.sources, source], [...app.layers, index]);
    return { view, runtimePaths: new Set(index.entries.map((e) => e.path)), sgxPal };
  } finally {
    await rt.dispose();
  }
}

/** What the steps of {@link injectGramine} share: the options, resolved once. */
interface InjectContext {
  draft: Draft;
  o: GramineOptions;
  layout: GramineLayout;
  prefix: string;
  inImage: (p: string) => string;
  appBase: string;
  appDir: string;
  mtime: number;
  cc: NonNullable<Draft['config']['config']>;
  regions: Region[];
  classification: Classification | undefined;
  protection: Protection | undefined;
  warn: (m: string) => void;
  warnings: string[];
}

/**
 * Adds Gramine to the draft, as named steps: find how the program starts, add the runtime layer,
 * choose the glibc, build the environment, list mounts and files, take the development keys,
 * build and check the manifest, sign it, write the manifest layer, point the Entrypoint at it,
 * refresh the protection manifest, and record state and report.
 */
/** What `gramine(options).inject(draft)` does (loaded on first use by entry.ts). */
export async function injectGramine(draft: Draft, o: GramineOptions): Promise<void> {
  const warnings: string[] = [];
  const prefix = o.prefix ? `/${norm(o.prefix)}` : '';
  const appBase = o.appBase ?? DEFAULT_APP_BASE;
  const classification = draft.state.get(CLASSIFICATION);
  const ctx: InjectContext = {
    draft, o, prefix, appBase, classification, warnings,
    layout: { ...DEBIAN_LAYOUT, ...o.layout },
    inImage: (p: string) => withPrefix(prefix, p),
    appDir: parentDir(appBase),
    mtime: Math.floor(draft.created.getTime() / 1000),
    cc: draft.config.config ?? {},
    regions: [...(classification?.regions ?? [])].sort((a, b) => compareBytewise(a.path, b.path)),
    protection: draft.state.get(PROTECTION),
    warn: (m: string) => {
      warnings.push(m);
      draft.warn(m);
    },
  };
  const program = await findProgram(ctx);
  const runtime = await addRuntime(ctx, program.app);
  const glibc = chooseGlibc(ctx, runtime.view, runtime.rt.name, program.startup);
  const environment = await enclaveEnvironment(ctx, runtime.view, program, glibc, runtime.confDirs);
  const files = listFiles(ctx, runtime.view, runtime.runtimePaths, glibc.glibcDir);
  const insecureKeys = developmentKeys(ctx);
  const built = buildManifest(ctx, { program, runtime, environment, files, insecureKeys });
  const signed = await signEnclave(ctx, built.manifest.text, runtime);
  const written = await addManifestLayer(ctx, runtime.view, built.manifest.text, signed, files);
  const entrypoint = setEntrypoint(ctx, written, program.command);
  // Step 11: the protection manifest records the files we added (verify checks them against it).
  let refreshed: string[] = [];
  if (ctx.protection?.manifestLayer !== undefined) refreshed = (await refreshProtectionManifest(draft)).added;
  recordRuntime(ctx, { entrypoint, signed, sgx: built.sgx, insecureKeys, written, program, runtime, glibc, files, refreshed });
}

/** Step 1: the program, as a container runtime would start it, and its startup files. */
async function findProgram(ctx: InjectContext) {
  const { draft, o, cc } = ctx;
  const argv = o.argv ?? [...(cc.Entrypoint ?? []), ...(cc.Cmd ?? [])];
  if (!argv.length) throw new EnclavifyError('GRAMINE_BAD_ENTRYPOINT', `${draft.source.name} has neither Entrypoint nor Cmd: give the command (argv option / --command)`);
  const app = await draft.rootfs();
  let startup: StartupFiles;
  // The DT_RUNPATH / DT_RPATH directories of the ELF objects read for the search: the host must not be able to write there.
  const runpaths: Array<{ dir: string; from: string }> = [];
  const lookup = {
    lstat: (p: string) => app.lstat(p),
    readdir: (p: string) => app.readdir(p),
    readFiles: async (paths: string[]) => {
      const m = await app.readFiles(paths);
      for (const [p, bytes] of m) runpaths.push(...elfSearchDirs(abs(p), bytes));
      return m;
    },
  };
  try {
    startup = await findStartupFiles({ lookup, command: argv[0], env: cc.Env, workingDir: cc.WorkingDir || '/' });
  } catch (e) {
    // Reading errors (a corrupt layer...) keep their codes; what makes the entrypoint unusable is one code here.
    if (e instanceof EnclavifyError && !e.code.startsWith('STARTUP_')) throw e;
    throw new EnclavifyError('GRAMINE_BAD_ENTRYPOINT', `${draft.source.name}: cannot start ${JSON.stringify(argv[0])}: ${(e as Error).message}`, { cause: e });
  }
  const command = enclaveCommand(argv, startup);

  return { app, startup, runpaths, command };
}

/** Step 2: the runtime layer (Gramine's files from the runtime image or directory). */
async function addRuntime(ctx: InjectContext, app: RootFs) {
  const { draft, o, layout, prefix, inImage, mtime, warn } = ctx;
  const signer = signerFrom(o);
  draft.progress(`gramine: reading the runtime from ${o.runtimeDir ?? (typeof o.runtimeImage === 'string' ? o.runtimeImage : o.runtimeImage!.name)}`);
  const needed = [layout.libsysdb, layout.sgxPal, layout.sgxLoader, layout.directPal, layout.directLoader];
  const confDirs = await ldSoConfDirs(app);
  const appLibDirs = [...DEFAULT_LIBRARY_DIRS, ...confDirs];
  const rt = await loadRuntimeFiles({
    ...(o.hostLibraries === false ? {} : { hostLoader: hostLoaderCheck(app, layout.sgxLoader, appLibDirs) }),
    source: o.runtimeDir !== undefined ? { dir: o.runtimeDir } : { image: o.runtimeImage! },
    paths: [...new Set([...(o.copy ?? defaultCopyPaths(layout)), ...needed])],
    optional: [layout.gramineSgx, layout.gramineDirect],
    prefix,
    tmpDir: draft.tmpDir,
    onProgress: draft.onProgress,
    signal: draft.signal,
  });
  if (rt.hostLibraries.length) draft.progress(`gramine: adding what the SGX loader needs and the image lacks: ${rt.hostLibraries.join(', ')}`);
  if (rt.linkedFiles.length) draft.progress(`gramine: adding what the runtime's symlinks point to: ${rt.linkedFiles.join(', ')}`);
  if (rt.missingHostLibraries.length) warn(`the SGX host loader needs ${rt.missingHostLibraries.join(', ')}, which neither the image nor the runtime source has: gramine-sgx will not start (gramine-direct is unaffected)`);
  const { view, runtimePaths, sgxPal } = await addRuntimeLayer(draft, rt, app, mtime, prefix, signer ? inImage(layout.sgxPal) : undefined, warn);
  const lib = (p: string) => {
    const e = view.stat(inImage(p));
    if (!e || e.type !== 'file') throw new EnclavifyError('GRAMINE_NO_RUNTIME', `${rt.name}: ${p} is missing after copying (check the layout and copy options)`);
    return e;
  };
  const libsysdb = lib(layout.libsysdb);
  return { rt, view, runtimePaths, sgxPal, libsysdb, confDirs };
}

/** Step 3: Gramine's glibc, when the program uses glibc. */
function chooseGlibc(ctx: InjectContext, view: RootFs, rtName: string, startup: StartupFiles) {
  const { o, layout, inImage, warn } = ctx;
  const glibcDir = inImage(layout.runtimeGlibc);
  const usesGlibc = startup.interpreters.some((i) => /(^|\/)ld-linux[^/]*\.so/.test(i));
  let useRuntimeGlibc = o.runtimeGlibc === true || (o.runtimeGlibc !== false && usesGlibc);
  if (useRuntimeGlibc && view.stat(glibcDir)?.type !== 'dir') {
    if (o.runtimeGlibc === true) throw new EnclavifyError('GRAMINE_NO_RUNTIME', `${rtName} has no patched glibc at ${layout.runtimeGlibc}`);
    warn(`the runtime has no patched glibc at ${layout.runtimeGlibc}: the program uses the image's glibc (works, but raw syscalls are emulated slowly)`);
    useRuntimeGlibc = false;
  }

  return { glibcDir, useRuntimeGlibc };
}

/** Step 4: the enclave's environment and user. */
async function enclaveEnvironment(ctx: InjectContext, view: RootFs, program: { app: RootFs; startup: StartupFiles }, glibc: { glibcDir: string; useRuntimeGlibc: boolean }, confDirs: string[]) {
  const { o, cc, regions, warn } = ctx;
  const { glibcDir, useRuntimeGlibc } = glibc;
  const { app, startup } = program;
  const extraEnv: Record<string, string> = {};
  if (o.secretProvisioning) {
    const keyName = o.secretProvisioning.keyName ?? (regions.length === 1 ? regions[0].name : undefined);
    if (!keyName && regions.length > 1) throw new EnclavifyError('GRAMINE_BAD_OPTIONS', `secret provisioning sets one key at start; ${regions.length} regions need keys: give secretProvisioning.keyName, and provision the others from the application`);
    const attest = `${glibcDir}/libsecret_prov_attest.so`;
    if (view.stat(attest)?.type !== 'file') throw new EnclavifyError('GRAMINE_NO_RUNTIME', `secret provisioning needs ${attest} in the runtime`);
    extraEnv.LD_PRELOAD = [attest, parseEnv(cc.Env).get('LD_PRELOAD')].filter(Boolean).join(':');
    extraEnv.SECRET_PROVISION_CONSTRUCTOR = '1';
    extraEnv.SECRET_PROVISION_SERVERS = o.secretProvisioning.servers;
    if (keyName) extraEnv.SECRET_PROVISION_SET_KEY = keyName;
    if (o.secretProvisioning.caChainPath) extraEnv.SECRET_PROVISION_CA_CHAIN_PATH = o.secretProvisioning.caChainPath;
  }
  const env = loaderEnv({
    imageEnv: cc.Env,
    runtimeGlibc: useRuntimeGlibc ? glibcDir : undefined,
    libraryDirs: useRuntimeGlibc ? confDirs : undefined,
    interpreterDir: startup.interpreter ? posix.dirname(abs(startup.interpreter)) : undefined,
    passthrough: o.passthroughEnv,
    extra: extraEnv,
  });
  const user = await resolveUser(cc.User, app, warn);

  return { env, user };
}

/** Step 5: mounts, trusted and allowed files. */
function listFiles(ctx: InjectContext, view: RootFs, runtimePaths: Set<string>, glibcDir: string) {
  const { draft, o, regions, classification, protection, appDir } = ctx;
  const tmpfs = o.tmpfs ?? ['/tmp'];
  const mounts: GramineMount[] = [
    ...regions.map((r): GramineMount => ({ type: 'encrypted', path: r.path, uri: `file:${r.path}`, key_name: r.name })),
    ...tmpfs.map((p): GramineMount => ({ type: 'tmpfs', path: p })),
  ].sort((a, b) => compareBytewise(a.path, b.path));
  const exclude = o.exclude ?? DEFAULT_EXCLUDED;
  const plain = o.plain ?? DEFAULT_PLAIN;
  const runtimeDirs = [glibcDir];
  // The protection manifest is refreshed after this transform (it records our files), so its hash
  // cannot be in the Gramine manifest; nothing in the enclave reads it.
  const skip = [...exclude, ...tmpfs, ...regions.map((r) => r.path), appDir, ...(protection ? [protection.manifestPath] : [])];
  const { paths, cycles } = reachableFiles(view, { skip, limit: o.maxEntries });
  if (cycles.length) draft.progress(`gramine: not following ${cycles.length} symlink(s) that loop back (e.g. ${cycles[0]})`);
  const counts = { trustedFiles: new Set<string>(), allowedFiles: new Set<string>() };
  // A runtime file the enclave reaches through the patched glibc directory is trusted under every
  // path, although it lives elsewhere: Gramine's runtime/glibc links libsecret_prov_attest.so and
  // mbedTLS to ../../../ (the library directory).
  const enclaveRuntimeFiles = new Set(paths.filter((p) => runtimePaths.has(p.real) && (isUnder(abs(p.real), runtimeDirs) || isUnder(p.alias, runtimeDirs))).map((p) => p.real));
  const listingOf = (p: ReachablePath): Listing => {
    const real = abs(p.real);
    let l: Listing;
    if (runtimePaths.has(p.real)) l = enclaveRuntimeFiles.has(p.real) ? 'trusted' : 'none';
    else {
      const c = classification?.files.get(real);
      if (c) l = c.class === 'authenticated' ? 'trusted' : c.class === 'plain' ? 'allowed' : 'none';
      else l = isUnder(real, plain) ? 'allowed' : 'trusted';
    }
    if (l === 'trusted') counts.trustedFiles.add(p.real);
    else if (l === 'allowed') counts.allowedFiles.add(p.real);
    return l;
  };
  // Plain directories and files as the rules (or the defaults) name them; Gramine's own mounts excluded.
  const rules = classification?.rules;
  const isFileRule = (p: string) => view.stat(p)?.type === 'file' || DEFAULT_PLAIN_FILES.includes(p);
  const plainDirs = rules ? rules.filter((r) => r.class === 'plain' && !r.fileOnly).map((r) => r.path) : plain.filter((p) => !isFileRule(p));
  const plainExact = rules ? rules.filter((r) => r.class === 'plain' && r.fileOnly).map((r) => r.path) : plain.filter(isFileRule);
  const notMounted = (p: string) => !isUnder(p, skip);
  const lists = fileLists({
    view,
    paths,
    listingOf,
    allowedDirs: [...plainDirs, ...(classification?.hostPaths ?? [])].filter(notMounted),
    allowedFiles: plainExact.filter(notMounted),
  });
  if (lists.narrowed.length) draft.progress(`gramine: plain directories holding authenticated files are allowed file by file: ${lists.narrowed.slice(0, 5).join(', ')}${lists.narrowed.length > 5 ? ', ...' : ''}`);
  const trustedList = lists.trusted;
  const allowed = lists.allowed;
  const ca = o.secretProvisioning?.caChainPath;
  if (ca && !trustedList.some((t) => t.uri === `file:${ca}`)) {
    throw new EnclavifyError('GRAMINE_BAD_OPTIONS', `secret provisioning CA chain ${ca} is not an authenticated file of the image: the enclave would trust whatever CA the host puts there (add the file, and keep it out of plain and encrypted paths)`);
  }

  return { mounts, trustedList, allowed, counts };
}

/** Step 6: development keys in the manifest (insecure, warned about loudly). */
function developmentKeys(ctx: InjectContext): Record<string, string> | undefined {
  const { o, regions, protection, warn } = ctx;
  let insecureKeys: Record<string, string> | undefined;
  if (o.insecureDevKeys && regions.length) {
    insecureKeys = {};
    for (const r of regions) {
      const k = protection?.keys.find((x) => x.name === r.name);
      if (!k) throw new EnclavifyError('GRAMINE_NO_KEY', `insecure development keys: no key for region ${r.name} (${r.path}); run encryptFS before injectRuntime`);
      insecureKeys[r.name] = k.keyHex;
    }
    warn('INSECURE DEVELOPMENT KEYS: the region keys are written into the image manifest (fs.insecure__keys). Anyone with the image can decrypt it. Never deploy this image.');
  }

  return insecureKeys;
}

/** Step 7: the manifest, and what in it would weaken the enclave. */
function buildManifest(ctx: InjectContext, p: {
  program: Awaited<ReturnType<typeof findProgram>>;
  runtime: Awaited<ReturnType<typeof addRuntime>>;
  environment: Awaited<ReturnType<typeof enclaveEnvironment>>;
  files: ReturnType<typeof listFiles>;
  insecureKeys: Record<string, string> | undefined;
}) {
  const { o, cc, regions, layout, inImage, warn } = ctx;
  const { command, startup, runpaths } = p.program;
  const { libsysdb, confDirs } = p.runtime;
  const { env, user } = p.environment;
  const { mounts, trustedList, allowed } = p.files;
  const insecureKeys = p.insecureKeys;
  const sgx: EnclaveSettings = {
    enclaveSize: o.enclaveSize ?? '1G',
    maxThreads: o.maxThreads ?? 16,
    debug: o.debug ?? false,
    edmm: o.edmm ?? false,
    remoteAttestation: o.remoteAttestation ?? (o.secretProvisioning || (regions.length && !insecureKeys) ? 'dcap' : 'none'),
    isvProdId: o.isvProdId ?? 0,
    isvSvn: o.isvSvn ?? 0,
  };
  const manifest = buildGramineManifest({
    entrypoint: command.entrypoint,
    argv: command.argv,
    env,
    startDir: cc.WorkingDir || undefined,
    ...user,
    loaderEntrypointUri: `file:${inImage(layout.libsysdb)}`,
    loaderEntrypointSha256: libsysdb.sha256,
    logLevel: o.logLevel,
    mounts,
    trusted: trustedList,
    allowed,
    insecureKeys,
    sgx,
    sigtermInjection: o.sigtermInjection,
    fragment: o.manifestFragment as string | TomlTable | undefined,
  });
  // What weakens the enclave, in the manifest as it will be signed (the fragment included).
  const risks = manifestRisks(manifest.doc, {
    librarySearchDirs: [
      ...confDirs.map((dir) => ({ dir, from: '/etc/ld.so.conf' })),
      ...runpaths,
      ...startup.missing.flatMap((m) => m.searched.map((dir) => ({ dir, from: `search path of missing library ${m.soname}` }))),
    ],
  });
  const untrustedCode = risks.filter((r) => r.kind === 'untrusted-code');
  if (untrustedCode.length) {
    throw new EnclavifyError('GRAMINE_UNTRUSTED_CODE', `the enclave would load code or trust anchors from paths the host can write: ${untrustedCode.map((r) => r.message).join('; ')}`);
  }
  const insecure = risks.filter((r) => r.kind === 'insecure');
  if (o.production && insecure.length) {
    throw new EnclavifyError('GRAMINE_INSECURE_IN_PRODUCTION', `refused in a production build: ${insecure.map((r) => r.message).join('; ')}`);
  }
  // fs.insecure__keys was warned about above, loudly.
  for (const r of insecure) if (!(insecureKeys && r.key === 'fs.insecure__keys')) warn(r.message);

  return { manifest, sgx };
}

/** Step 8: signing (MRENCLAVE, SIGSTRUCT), when a signer is given. */
async function signEnclave(ctx: InjectContext, manifestText: string, runtime: { sgxPal?: Uint8Array | undefined; libsysdb: { sha256?: string | undefined } }) {
  const { draft, o, layout, inImage, appBase, warn } = ctx;
  const signer = signerFrom(o);
  const loaderMode = o.loader ?? 'sgx';
  const { sgxPal, libsysdb } = runtime;
  let signed: Awaited<ReturnType<typeof signManifest>> | undefined;
  if (signer) {
    signed = await signManifest({
      manifest: manifestText,
      pal: sgxPal!,
      signer,
      date: signDate(o, draft.created),
      resolveSha256: (uri) => (uri === `file:${inImage(layout.libsysdb)}` ? libsysdb.sha256 : undefined),
      name: `${appBase}.manifest`,
    });
  } else if (loaderMode === 'sgx') {
    warn(`the image is not signed: gramine-sgx needs ${appBase}.manifest.sgx and ${appBase}.sig. Sign it with 'enclavify sign' (or a signing key); until then it runs only with ENCLAVIFY_GRAMINE_LOADER=direct (no SGX)`);
  }

  return signed;
}

/** Step 9: the manifest layer: manifest, start script, signature. */
async function addManifestLayer(ctx: InjectContext, view: RootFs, manifestText: string, signed: Awaited<ReturnType<typeof signEnclave>>, lists: { trustedList: unknown[]; allowed: unknown[]; counts: { trustedFiles: Set<string> } }) {
  const { draft, layout, inImage, appBase, appDir, mtime, regions } = ctx;
  const { trustedList, allowed, counts } = lists;
  const enc = new TextEncoder();
  const launcherPaths = {
    appBase,
    sgxLoader: inImage(layout.sgxLoader), sgxPal: inImage(layout.sgxPal),
    directLoader: inImage(layout.directLoader), directPal: inImage(layout.directPal),
  };
  const hasShell = view.stat('/bin/sh')?.type === 'file';
  const files: [string, Uint8Array, number][] = [[`${appBase}.manifest`, enc.encode(manifestText), 0o644]];
  if (hasShell) files.push([`${appDir}/launch`, enc.encode(launcherScript(launcherPaths)), 0o755]);
  if (signed) files.push([`${appBase}.manifest.sgx`, signed.manifestSgx, 0o644], [`${appBase}.sig`, signed.sigstruct, 0o644]);
  const items: LayerItem[] = [];
  for (const d of [...ancestors(norm(appBase))]) {
    const have = view.get(d);
    if (have && have.type !== 'dir') throw new EnclavifyError('GRAMINE_PATH_CONFLICT', `cannot write the manifest under ${abs(d)}: it is a ${have.type} in the image`);
    if (!have) items.push({ entry: dirEntry(d, mtime) });
  }
  for (const [p, data, mode] of files) items.push({ entry: fileEntry(p, data.length, mtime, mode), content: data });
  const mlayer = await draft.buildLayer(items, 'Gramine manifest layer');
  draft.addLayer(mlayer, {
    createdBy: `enclavify injectRuntime(gramine): ${appBase}.manifest${hasShell ? `, ${appDir}/launch` : ''}${signed ? ', .manifest.sgx, .sig' : ''}`,
    comment: `${trustedList.length} trusted entries for ${counts.trustedFiles.size} files, ${allowed.length} allowed, ${regions.length} encrypted mount(s)${signed ? `; MRENCLAVE ${signed.mrenclave}` : '; unsigned'}`,
  });

  return { hasShell, launcherPaths };
}

/** Step 10: Entrypoint, Cmd and labels. */
function setEntrypoint(ctx: InjectContext, written: Awaited<ReturnType<typeof addManifestLayer>>, command: { entrypoint: string; argv: string[] }): string[] {
  const { draft, o, layout, inImage, appBase, appDir, cc, protection, warn } = ctx;
  const { hasShell, launcherPaths } = written;
  const loaderMode = o.loader ?? 'sgx';
  const loaderName = inImage(loaderMode === 'sgx' ? layout.gramineSgx : layout.gramineDirect);
  const entrypoint = hasShell
    ? [`${appDir}/launch`, loaderName, appBase]
    : loaderMode === 'sgx' ? [launcherPaths.sgxLoader, launcherPaths.sgxPal, 'init', appBase] : [launcherPaths.directLoader, launcherPaths.directPal, 'init', appBase];
  if (!hasShell) warn('the image has no /bin/sh: the Entrypoint starts Gramine\'s loader directly and ENCLAVIFY_GRAMINE_LOADER is not honoured');
  const before = JSON.stringify([...(cc.Entrypoint ?? []), ...(cc.Cmd ?? [])]);
  const newConfig = { ...cc, Entrypoint: entrypoint };
  delete newConfig.Cmd;
  newConfig.Labels = {
    ...(cc.Labels ?? {}),
    [LABELS.runtime]: 'gramine',
    [LABELS.manifest]: `${appBase}.manifest`,
    [LABELS.sgxPal]: launcherPaths.sgxPal,
    [LABELS.loader]: loaderMode,
    ...(protection ? { [LABELS.protection]: protection.manifestPath } : {}),
  };
  draft.config.config = newConfig;
  draft.addHistory(`enclavify injectRuntime(gramine): ENTRYPOINT ${JSON.stringify(entrypoint)} (was ${before}), CMD cleared`, `the enclave runs ${command.entrypoint} with argv ${JSON.stringify(command.argv)}`);

  return entrypoint;
}

/** Step 12: state for the transforms after us, and the report. */
function recordRuntime(ctx: InjectContext, r: {
  entrypoint: string[];
  signed: Awaited<ReturnType<typeof signEnclave>>;
  sgx: EnclaveSettings;
  insecureKeys: Record<string, string> | undefined;
  written: Awaited<ReturnType<typeof addManifestLayer>>;
  program: Awaited<ReturnType<typeof findProgram>>;
  runtime: Awaited<ReturnType<typeof addRuntime>>;
  glibc: ReturnType<typeof chooseGlibc>;
  files: ReturnType<typeof listFiles>;
  refreshed: string[];
}): void {
  const { draft, o, layout, inImage, appBase, prefix, regions, cc, warnings } = ctx;
  const { entrypoint, signed, sgx, insecureKeys, refreshed } = r;
  const { launcherPaths } = r.written;
  const { command } = r.program;
  const { rt } = r.runtime;
  const { glibcDir, useRuntimeGlibc } = r.glibc;
  const { trustedList, allowed, counts } = r.files;
  const loaderMode = o.loader ?? 'sgx';
  const keyNames = insecureKeys ? [] : [...new Set(regions.map((r) => r.name))];
  const info: RuntimeInfo = {
    runtime: 'gramine',
    entrypoint,
    manifestPath: `${appBase}.manifest`,
    ...(signed ? { mrenclave: [signed.mrenclave], mrsigner: signed.mrsigner } : {}),
    isvProdId: sgx.isvProdId,
    isvSvn: sgx.isvSvn,
    debug: sgx.debug,
    keyNames,
    details: {
      loader: loaderMode,
      signed: !!signed,
      sgxPal: launcherPaths.sgxPal,
      libsysdb: `${inImage(layout.libsysdb)}`,
      remoteAttestation: sgx.remoteAttestation,
      enclaveSize: sgx.enclaveSize,
      maxThreads: sgx.maxThreads,
      edmm: sgx.edmm,
      insecureDevKeys: !!insecureKeys,
    },
  };
  draft.state.set(RUNTIME, info);
  draft.report['injectRuntime(gramine)'] = {
    runtime: rt.name,
    prefix: prefix || '/',
    manifest: `${appBase}.manifest`,
    entrypoint,
    enclave: { entrypoint: command.entrypoint, argv: command.argv, startDir: cc.WorkingDir || '/' },
    runtimeGlibc: useRuntimeGlibc ? glibcDir : null,
    hostLibraries: rt.hostLibraries,
    linkedFiles: rt.linkedFiles,
    protectionManifestRefreshed: refreshed.length,
    trustedEntries: trustedList.length,
    trustedFiles: counts.trustedFiles.size,
    allowedEntries: allowed.length,
    encryptedMounts: regions.map((r) => ({ path: r.path, keyName: r.name })),
    signed: signed ? { mrenclave: signed.mrenclave, mrsigner: signed.mrsigner, manifestSgx: `${appBase}.manifest.sgx`, sig: `${appBase}.sig` } : null,
    insecureDevKeys: !!insecureKeys,
    warnings,
  };
}
