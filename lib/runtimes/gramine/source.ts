/**
 * Reading a Gramine installation from its source: a directory on the host (a `DESTDIR` install,
 * an unpacked runtime image) or an image. Picks the requested paths, keeps their metadata and
 * symlinks, and gives file contents as streams (image contents are staged in temporary files,
 * one pass per layer, never held in memory).
 */
import { createReadStream, createWriteStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { EnclavifyError } from '../../oci/errors.js';
import type { Image } from '../../oci/image.js';
import { compareBytewise, normalizePath, type FsEntry } from '../../fs/entry.js';
import { resolvePath, type DirectoryLookup, type FileLookup } from '../../fs/lookup.js';
import { findStartupFiles } from '../../protect/deps.js';
import { parseElf } from '../../fs/elf.js';
import { openImage } from '../../store/images.js';
import type { ProgressListener } from '../../oci/progress.js';
import { layersRootFs } from '../../oci/rootfs.js';
import { LayerStage } from '../../oci/stage.js';
import type { RootFs } from '../../fs/merged.js';
import { withSignal } from '../../oci/abort.js';
import { makeTempDir, removeTemp } from '../../oci/temp.js';

/** One entry taken from the runtime source, at the path it will have in the image (normalised, no leading `/`). */
export interface RuntimeEntry {
  entry: FsEntry;
  /** Host file holding the content, for regular files. */
  file?: string | undefined;
}

/** The files picked from a runtime source. Call `dispose()` when done (removes staged copies). */
export interface RuntimeFiles {
  /** Names the source in messages, e.g. `runtime directory /opt/gramine`. */
  name: string;
  /** Entries, parents before children, sorted bytewise. */
  entries: RuntimeEntry[];
  /** Libraries of the host loader copied because the image lacks them (absolute image paths). */
  hostLibraries: string[];
  /** Libraries of the host loader that neither the image nor the source has (sonames, once each). */
  missingHostLibraries: string[];
  /**
   * Files and symlinks outside the requested paths, copied because a symlink inside them points
   * there (absolute image paths), e.g. Gramine's `runtime/glibc/libsecret_prov_attest.so ->
   * ../../../libsecret_prov_attest.so`.
   */
  linkedFiles: string[];
  /** Reads one picked regular file (by its absolute path in the source) whole; for small files such as the PAL. */
  read(p: string): Promise<Uint8Array>;
  dispose(): Promise<void>;
}

/** Where the Gramine installation comes from. */
export type RuntimeSourceSpec = { dir: string } | { image: string | Image };

interface Tree {
  name: string;
  /** Follows symlinks inside the source root; the normalised real path, or undefined. */
  resolve(p: string): Promise<string | undefined>;
  lstat(p: string): Promise<FsEntry | undefined>;
  readdir(p: string): Promise<string[]>;
  /** Host files holding the contents of these real paths. */
  stage(paths: string[]): Promise<Map<string, string>>;
  /** Synchronous lookup, for findStartupFiles. */
  lookup: FileLookup & DirectoryLookup;
  dispose(): Promise<void>;
}

/** A synchronous {@link FileLookup} over a host directory used as a root file system. */
function hostDirLookup(abs: string): FileLookup & DirectoryLookup {
  const host = (p: string) => path.join(abs, p);
  return {
    lstat(p: string): FsEntry | undefined {
      let st;
      try {
        st = lstatSync(host(p));
      } catch {
        return undefined;
      }
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : undefined;
      if (!type) return undefined;
      const e: FsEntry = { path: p, type, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000), size: type === 'file' ? st.size : 0 };
      if (type === 'symlink') e.linkname = readlinkSync(host(p));
      return e;
    },
    readdir(p: string): string[] | undefined {
      try {
        return readdirSync(host(p)).sort(compareBytewise);
      } catch {
        return undefined;
      }
    },
    async readFiles(paths: string[]): Promise<Map<string, Uint8Array>> {
      const out = new Map<string, Uint8Array>();
      for (const p of paths) {
        const r = resolvePath(this, p);
        if (r.entry?.type !== 'file') throw new EnclavifyError('FS_NOT_FOUND', `${p}: no such file in ${abs}`);
        out.set(p, new Uint8Array(readFileSync(host(r.path))));
      }
      return out;
    },
  };
}

const norm = (p: string): string => {
  const n = normalizePath(p);
  if (n instanceof Error) throw new EnclavifyError('GRAMINE_BAD_PATH', `Gramine runtime path ${JSON.stringify(p)}: ${n.message}`);
  return n ?? '.';
};

/** A directory on the host, read as a root file system (symlinks resolved inside it, never outside). */
async function dirTree(root: string): Promise<Tree> {
  const abs = path.resolve(root);
  const st = await lstat(abs).catch(() => undefined);
  if (!st?.isDirectory()) throw new EnclavifyError('GRAMINE_NO_RUNTIME', `Gramine runtime directory ${abs} does not exist or is not a directory`);
  const host = (p: string) => path.join(abs, p === '.' ? '' : p);
  const lstatEntry = async (p: string): Promise<FsEntry | undefined> => {
    const s = await lstat(host(p)).catch(() => undefined);
    if (!s) return undefined;
    const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : undefined;
    if (!type) return undefined; // devices, sockets, fifos are not part of an installation
    // Ownership is normalised to root: a DESTDIR install usually belongs to whoever built it.
    const e: FsEntry = { path: p, type, mode: s.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(s.mtimeMs / 1000), size: type === 'file' ? s.size : 0 };
    if (type === 'symlink') e.linkname = await readlink(host(p));
    return e;
  };
  const tree: Tree = {
    name: `Gramine runtime directory ${abs}`,
    resolve: (p) => resolveIn(tree, p),
    lstat: lstatEntry,
    readdir: async (p) => (await readdir(host(p))).sort(compareBytewise),
    stage: async (paths) => new Map(paths.map((p) => [p, host(p)])),
    lookup: hostDirLookup(abs),
    dispose: async () => {},
  };
  return tree;
}

/** Resolves `p` inside a host directory as a chroot would (absolute targets start at its root; 40 links at most). */
async function resolveIn(tree: Tree, p: string): Promise<string | undefined> {
  const todo = p.split('/').reverse();
  const cur: string[] = [];
  let hops = 0;
  while (todo.length) {
    const c = todo.pop()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const here = [...cur, c].join('/');
    const e = await tree.lstat(here);
    if (!e) return undefined;
    if (e.type === 'symlink') {
      if (++hops > 40) throw new EnclavifyError('ELOOP', `${tree.name}: ${JSON.stringify(p)}: too many levels of symbolic links`);
      const t = e.linkname ?? '';
      if (t.startsWith('/')) cur.length = 0;
      todo.push(...t.split('/').reverse());
      continue;
    }
    if (todo.some((x) => x !== '' && x !== '.') && e.type !== 'dir') return undefined;
    cur.push(c);
  }
  return cur.length ? cur.join('/') : '.';
}

/** An image's merged root file system; contents are staged under `tmpDir`. */
async function imageTree(image: string | Image, tmpDir: string, onProgress: ProgressListener | undefined, signal: AbortSignal | undefined): Promise<Tree> {
  const img = typeof image === 'string' ? await openImage(image, { platform: { os: 'linux', architecture: 'amd64' }, signal }) : image;
  const layers = await img.layers();
  const stageDir = await makeTempDir('enclavify-gramine-runtime-', tmpDir);
  let fs: RootFs;
  try {
    // The runtime's layers are staged while scanned: the files copied out are read by byte range.
    fs = await layersRootFs(layers, { onProgress, signal, progressEvent: { image: img.name }, stage: new LayerStage(stageDir) });
  } catch (e) {
    await removeTemp(stageDir);
    throw e;
  }
  let n = 0;
  return {
    name: `Gramine runtime image ${img.name}`,
    resolve: async (p) => fs.resolve(p),
    lstat: async (p) => fs.get(p),
    readdir: async (p) => fs.readdir(p) ?? [],
    async stage(paths) {
      const out = new Map<string, string>();
      await fs.streamFiles(paths, async (f, content) => {
        const file = path.join(stageDir, `f${n++}`);
        await pipe(content, createWriteStream(file), withSignal(signal));
        for (const p of f.paths) out.set(p, file);
      });
      return out;
    },
    lookup: fs,
    dispose: () => removeTemp(stageDir),
  };
}

/**
 * Picks `paths` (absolute, in the source) and everything below them from a Gramine runtime source.
 * A requested path that is a symlink is materialised under its own name (its target's content or
 * subtree); symlinks inside a copied directory are kept as they are. Each entry's image path is
 * `prefix` + its source path. Missing paths fail with `GRAMINE_NO_RUNTIME`, unless listed in `optional`.
 */
export async function loadRuntimeFiles(opts: {
  source: RuntimeSourceSpec;
  paths: string[];
  optional?: string[];
  prefix?: string;
  tmpDir: string;
  /** Byte progress of the runtime image's scan. */
  onProgress?: ProgressListener | undefined;
  /** Cancels the reads. */
  signal?: AbortSignal | undefined;
  /**
   * The host loader (source path, e.g. Gramine's `sgx/loader`): the ELF interpreter and shared
   * libraries it needs are copied too (without prefix, where its loader will look for them in the
   * image) unless `present` says the image already has them.
   */
  hostLoader?: {
    path: string;
    /** Whether the image has the library: at `openedAs` (when known), or as `soname` in its library directories. */
    present: (openedAs: string | undefined, soname: string) => boolean;
    where: (openedAs: string) => string | undefined;
  };
}): Promise<RuntimeFiles> {
  const tree = 'dir' in opts.source ? await dirTree(opts.source.dir) : await imageTree(opts.source.image, opts.tmpDir, opts.onProgress, opts.signal);
  const prefix = opts.prefix ? norm(opts.prefix) : '';
  const target = (p: string) => (prefix ? (p === '.' ? prefix : `${prefix}/${p}`) : p);
  const picked = new Map<string, { entry: FsEntry; real?: string | undefined }>(); // by image path
  const optional = new Set((opts.optional ?? []).map(norm));

  const links: string[] = []; // symlinks copied at their own source path, whose targets must come too
  const walk = async (real: string, as: string): Promise<void> => {
    const e = await tree.lstat(real);
    if (!e) return;
    if (e.type === 'dir') {
      picked.set(target(as), { entry: { ...e, path: target(as) } });
      for (const name of await tree.readdir(real)) await walk(`${real}/${name}`, `${as}/${name}`);
    } else if (e.type === 'file' || e.type === 'symlink') {
      picked.set(target(as), { entry: { ...e, path: target(as) }, real: e.type === 'file' ? real : undefined });
      if (e.type === 'symlink' && real === as) links.push(real);
    }
    // devices, fifos: an installation has none worth copying
  };

  try {
    for (const want of opts.paths) {
      const p = norm(want);
      if (picked.has(target(p))) continue; // already copied with a directory above it (symlinks kept as they are)
      const real = await tree.resolve(p);
      if (real === undefined) {
        if (optional.has(p)) continue;
        throw new EnclavifyError('GRAMINE_NO_RUNTIME', `${tree.name} has no ${want} (set the path in the gramine() layout options if this installation puts it elsewhere)`);
      }
      await walk(real, p);
    }
    const linkedFiles = await followLinks(tree, links, picked, target);
    const hostLibraries: string[] = [];
    const missingHostLibraries: string[] = [];
    if (opts.hostLoader && picked.has(target(norm(opts.hostLoader.path)))) {
      let deps;
      try {
        deps = await findStartupFiles({ lookup: tree.lookup, command: opts.hostLoader.path, env: [] });
      } catch {
        deps = undefined; // not an executable we can follow (a stand-in script): nothing to add
      }
      if (deps && !deps.scriptInterpreters.length) {
        const wanted: Array<{ soname: string; real: string; openedAs: string }> = [];
        const loaderBytes = (await tree.lookup.readFiles([deps.program])).get(deps.program)!;
        const interpPath = parseElf(loaderBytes).interpreter; // PT_INTERP as written, e.g. /lib64/ld-linux-x86-64.so.2
        if (interpPath && deps.interpreter) {
          wanted.push({ soname: interpPath.split('/').pop()!, real: deps.interpreter, openedAs: norm(interpPath) });
        }
        for (const l of deps.libraries) wanted.push({ soname: l.soname, real: l.path, openedAs: l.openedAs });
        for (const w of wanted) {
          if (opts.hostLoader.present(`/${w.openedAs}`, w.soname)) continue;
          const at = opts.hostLoader.where(`/${w.openedAs}`);
          if (!at) {
            missingHostLibraries.push(w.soname);
            continue;
          }
          const e = await tree.lstat(w.real);
          if (e?.type !== 'file') continue;
          const p = norm(at);
          if (picked.has(p)) continue; // the interpreter is also listed among the libraries
          picked.set(p, { entry: { ...e, path: p }, real: w.real });
          hostLibraries.push(`/${p}`);
        }
        // Not found in the runtime source (e.g. its glibc): a problem only if the image lacks it too.
        for (const m of deps.missing) {
          const soname = m.soname.split('/').pop()!;
          if (!opts.hostLoader.present(m.soname.startsWith('/') ? m.soname : undefined, soname)) missingHostLibraries.push(soname);
        }
      }
    }
    const files = [...picked.values()].filter((x) => x.real !== undefined);
    const staged = await tree.stage([...new Set(files.map((x) => x.real!))]);
    const entries: RuntimeEntry[] = [...picked.values()]
      .sort((a, b) => compareBytewise(a.entry.path, b.entry.path))
      .map((x) => (x.real !== undefined ? { entry: x.entry, file: staged.get(x.real) } : { entry: x.entry }));
    const byAbs = new Map(entries.filter((e) => e.file).map((e) => [`/${e.entry.path}`, e.file!]));
    return {
      name: tree.name,
      entries,
      hostLibraries,
      missingHostLibraries: [...new Set(missingHostLibraries)],
      linkedFiles,
      async read(p: string) {
        const f = byAbs.get(p.startsWith('/') ? p : `/${p}`);
        if (!f) throw new EnclavifyError('GRAMINE_NO_RUNTIME', `${tree.name}: ${p} is not a regular file among the copied runtime files`);
        return new Uint8Array(await readFile(f));
      },
      dispose: () => tree.dispose(),
    };
  } catch (e) {
    await tree.dispose();
    throw e;
  }
}

/**
 * Makes the symlinks kept inside copied directories resolve in the image: each link's target (one
 * hop at a time, so chains such as `libx.so -> libx.so.1 -> libx.so.1.2` stay links) is copied at
 * its own path when it is a file or a symlink not already picked. Gramine's Debian layout needs
 * this: `gramine/runtime/glibc/` links `libsecret_prov_attest.so`, `libra_tls_attest.so` and
 * mbedTLS to `../../../`, the library directory. Directories are not followed (a link to a whole
 * library directory would copy the runtime image's system); such links stay as they are.
 * Returns the absolute image paths added.
 */
async function followLinks(
  tree: Tree,
  links: string[],
  picked: Map<string, { entry: FsEntry; real?: string | undefined }>,
  target: (p: string) => string,
): Promise<string[]> {
  const added: string[] = [];
  const queue = [...links];
  for (let hops = 0; queue.length && hops < 10_000; hops++) {
    const link = queue.shift()!;
    const e = await tree.lstat(link);
    if (e?.type !== 'symlink' || !e.linkname) continue;
    const dir = await tree.resolve(path.posix.dirname(`/${link}`)).catch(() => undefined);
    if (dir === undefined) continue;
    const joined = e.linkname.startsWith('/') ? e.linkname : `/${dir === '.' ? '' : dir}/${e.linkname}`;
    // The target's directory resolved as the kernel would; its last component is taken as it is.
    const tdir = await tree.resolve(path.posix.dirname(joined)).catch(() => undefined);
    if (tdir === undefined) continue;
    const base = path.posix.basename(joined);
    if (base === '' || base === '.' || base === '..') continue;
    const t = tdir === '.' ? base : `${tdir}/${base}`;
    if (picked.has(target(t))) continue;
    const te = await tree.lstat(t);
    if (te?.type === 'file') picked.set(target(t), { entry: { ...te, path: target(t) }, real: t });
    else if (te?.type === 'symlink') {
      picked.set(target(t), { entry: { ...te, path: target(t) } });
      queue.push(t);
    } else continue;
    added.push(`/${target(t)}`);
  }
  return added.sort(compareBytewise);
}

/** A readable stream of a staged runtime file. */
export function openRuntimeFile(file: string): AsyncIterable<Uint8Array> {
  return createReadStream(file, { highWaterMark: 1 << 20 });
}
