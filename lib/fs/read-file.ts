/**
 * Reading files of an image without building its whole merged view: {@link readFile} walks the
 * layers top down and stops at the first layer that decides the path; {@link rootfs} is the merged
 * view itself (every layer scanned); {@link entries} iterates a layer's tar or the merged view.
 *
 * How a layer "decides" a path is the merged view's rule (lib/fs/merged.ts) read backwards. For a
 * path P, only these entries of a layer matter: an entry at P; a non-directory at an ancestor of P
 * (it replaces the ancestor, P is gone); a whiteout of P or of an ancestor; an opaque whiteout in
 * an ancestor directory (it hides P from the layers below; applied before the layer's other
 * entries); an entry below P (it makes P a directory). They are applied in archive order, so the
 * last one wins. A layer with none of them passes P through unchanged: the answer is in a lower
 * layer. A hard link shows its target as it was when the link was applied (earlier in the same
 * layer or below), as in the merged view.
 *
 * A layer that is read is read to its end: a later entry of the same layer may still replace the
 * path, and only a stream read to its end has been checked against the layer's diff_id (so what
 * readFile returns is verified). Layers below the deciding one are never opened.
 */
import type { Readable } from 'node:stream';
import { abortable, throwIfAborted } from '../oci/abort.js';
import { coded, EnclavifyError } from '../oci/errors.js';
import type { Image, Layer } from '../oci/image.js';
import { layersRootFs } from '../oci/rootfs.js';
import type { ProgressListener } from '../oci/progress.js';
import { ROOT, shortenPath, type FsEntry } from './entry.js';
import { lexicalPath, resolvePath, type FileLookup } from './lookup.js';
import { classifyWhiteout, type LayerEntry, type MergedEntry, type RootFs } from './merged.js';
import { readTar } from './tar-read.js';

/** Options of {@link readFile}. */
export interface ReadFileOptions {
  /** Cancels the read: the open layer stream is destroyed and readFile rejects with `ABORTED`. */
  signal?: AbortSignal | undefined;
  /** The largest file returned (default 1 GiB); a larger one is refused with `FS_TOO_LARGE` before its bytes are buffered. */
  maxBytes?: number | undefined;
}

/** A regular file as {@link readFileEntry} found it. */
export interface ReadFileResult {
  /**
   * The file's entry as the merged view shows it (for a hard link: the target's metadata and
   * content). `path` is the path the requested one resolved to (symlinks followed).
   */
  entry: FsEntry;
  /** Index (base first) of the layer whose entry holds the bytes. */
  layer: number;
  data: Buffer;
}

/** Options of {@link rootfs}. */
export interface RootFsOptions {
  /** Cancels the scan and every later read through the returned view. */
  signal?: AbortSignal | undefined;
  /** Byte progress of each layer while it is scanned (phase `scan`). */
  onProgress?: ProgressListener | undefined;
}

/** Options of {@link entries}. */
export interface EntriesOptions extends RootFsOptions {}

/** One entry of a layer's tar as {@link entries} yields it: whiteouts are marked, regular files carry their content. */
export interface LayerItem {
  entry: LayerEntry;
  /** The content of a regular file; read it before asking for the next item (what is left is skipped). */
  content?: Readable;
}

const DEFAULT_MAX_BYTES = 1 << 30;

/** What one layer (up to some entry) does to a path. */
type Decision =
  | { kind: 'inherit' }
  | { kind: 'absent' }
  | { kind: 'dir' }
  | { kind: 'entry'; index: number; entry: LayerEntry };

const under = (p: string, dir: string): boolean => dir === ROOT || p.startsWith(`${dir}/`);

/** The proper ancestors of a normalised path, outermost first, without the root. */
function ancestorsOf(p: string): string[] {
  const out: string[] = [];
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) out.push(p.slice(0, i));
  return out;
}

/**
 * What the entries `[0, upto)` of one layer (plus all of its opaque whiteouts, which apply first)
 * make of path `x`, given whatever the layers below made of it.
 */
function decide(entries: readonly LayerEntry[], x: string, upto: number, source: string): Decision {
  let d: Decision = { kind: 'inherit' };
  for (const e of entries) if (e.whiteout?.kind === 'opaque' && (e.whiteout.dir === ROOT || under(x, e.whiteout.dir))) d = { kind: 'absent' };
  const chain = [...ancestorsOf(x), x];
  const written = new Set<string>(); // members of `chain` this layer wrote something at or below
  for (let k = 0; k < upto; k++) {
    const e = entries[k];
    const p = e.path;
    if (e.whiteout) {
      if (e.whiteout.kind !== 'file') continue;
      const t = e.whiteout.target;
      if (t !== x && !under(x, t)) continue;
      if (written.has(t)) {
        throw new EnclavifyError('LAYER_AMBIGUOUS_WHITEOUT', `${source}: entry ${JSON.stringify(shortenPath(p))}: whiteout comes after ${JSON.stringify(shortenPath(t))} (or an entry under it) in the same layer; container runtimes would delete it, the image spec keeps it`);
      }
      d = { kind: 'absent' };
      continue;
    }
    if (p === ROOT) continue;
    for (const c of chain) if (p === c || under(p, c)) written.add(c);
    if (p === x) d = e.type === 'dir' ? { kind: 'dir' } : { kind: 'entry', index: k, entry: e };
    else if (under(x, p)) {
      if (e.type !== 'dir') d = { kind: 'absent' };
    } else if (under(p, x)) {
      if (d.kind === 'entry') {
        const t = d.entry.type;
        throw new EnclavifyError(t === 'symlink' ? 'LAYER_WRITE_THROUGH_SYMLINK' : 'LAYER_NOT_A_DIRECTORY', `${source}: entry ${JSON.stringify(shortenPath(p))}: its parent ${JSON.stringify(shortenPath(x))} is a ${t}, not a directory`);
      }
      d = { kind: 'dir' };
    }
  }
  return d;
}

/** A path's entry in the merged view: its metadata and where its bytes are. */
interface Found {
  entry: FsEntry;
  layer: number;
  index: number;
}

/** Thrown by the synchronous lookup when a path's entry is not known yet (then looked up, and the resolution retried). */
class Unknown {
  constructor(readonly path: string) {}
}

/** The merged view of an image, looked up path by path from the top layer down. */
class TopDown {
  /** Each layer's entries once it has been read (metadata only). */
  private readonly read = new Map<number, LayerEntry[]>();
  /** Contents of files at wanted paths, kept while their layer was read: `layer:index`. */
  private readonly kept = new Map<string, Buffer | 'too-large'>();
  /** Paths whose file contents are kept when a layer holding them is read. */
  private readonly wanted = new Set<string>();
  /** Paths already looked up. */
  readonly known = new Map<string, Found | 'dir' | undefined>();
  /** How many layer streams were opened (for tests and messages). */
  opened = 0;

  constructor(
    private readonly image: Image,
    private readonly layers: readonly Layer[],
    private readonly options: { signal?: AbortSignal | undefined; maxBytes: number },
  ) {}

  private async open(i: number): Promise<Readable> {
    throwIfAborted(this.options.signal, `reading ${this.image.name}`);
    this.opened++;
    return abortable(await this.layers[i].uncompressed(), this.options.signal);
  }

  /** Reads layer `i` to its end, keeping every entry's metadata and the contents of wanted files. */
  private async layer(i: number): Promise<LayerEntry[]> {
    const done = this.read.get(i);
    if (done) return done;
    const src = this.layers[i].name;
    const entries: LayerEntry[] = [];
    for await (const { entry, content } of readTar(await this.open(i), { source: src })) {
      const e: LayerEntry = entry;
      const wh = classifyWhiteout(e.path, src);
      if (wh) e.whiteout = wh;
      const k = entries.push(e) - 1;
      if (wh) continue;
      // Speculate: a symlink at (or above) a wanted path, or a hard link at one, will probably be
      // followed; keeping the target's bytes too saves reading a layer again.
      if (e.type === 'symlink' && e.linkname) {
        const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
        for (const w of [...this.wanted]) {
          if (w === e.path) this.wanted.add(lexicalPath(e.linkname, parent));
          else if (w.startsWith(`${e.path}/`)) this.wanted.add(lexicalPath(`${e.linkname}/${w.slice(e.path.length + 1)}`, parent));
        }
      }
      if (!this.wanted.has(e.path)) continue;
      if (e.type === 'hardlink' && e.linkname) this.wanted.add(e.linkname);
      if (content) this.kept.set(`${i}:${k}`, e.size > this.options.maxBytes ? 'too-large' : await collect(content));
    }
    this.read.set(i, entries);
    return entries;
  }

  /** The entry at normalised path `x` as the view stood after the entries `[0, upto)` of layer `top` (all of it by default). */
  private async lstatFrom(x: string, top: number, upto?: number): Promise<Found | 'dir' | undefined> {
    for (let i = top; i >= 0; i--) {
      const entries = await this.layer(i);
      const d = decide(entries, x, i === top && upto !== undefined ? upto : entries.length, this.layers[i].name);
      if (d.kind === 'inherit') continue;
      if (d.kind === 'absent') return undefined;
      if (d.kind === 'dir') return 'dir';
      if (d.entry.type !== 'hardlink') return { entry: d.entry, layer: i, index: d.index };
      const target = d.entry.linkname!;
      const t = await this.lstatFrom(target, i, d.index);
      const where = `${this.layers[i].name}: entry ${JSON.stringify(shortenPath(x))}`;
      if (t === undefined) throw new EnclavifyError('LAYER_BAD_HARDLINK', `${where}: hard link target ${JSON.stringify(shortenPath(target))} does not exist in this or a lower layer`);
      if (t === 'dir') throw new EnclavifyError('LAYER_BAD_HARDLINK', `${where}: hard link target ${JSON.stringify(shortenPath(target))} is a directory`);
      return t;
    }
    return x === ROOT ? 'dir' : undefined;
  }

  /** Keeps the contents of files at `x` when a layer holding one is read. */
  want(x: string): void {
    this.wanted.add(x);
  }

  /** Looks `x` up (reading layers as needed) and remembers the answer. */
  async learn(x: string): Promise<void> {
    this.wanted.add(x);
    this.known.set(x, await this.lstatFrom(x, this.layers.length - 1));
  }

  /** A synchronous {@link FileLookup} over what is known; throws {@link Unknown} for the rest. */
  readonly lookup: FileLookup = {
    lstat: (p: string): FsEntry | undefined => {
      if (!this.known.has(p)) throw new Unknown(p);
      const f = this.known.get(p);
      if (f === undefined) return undefined;
      if (f === 'dir') return { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 };
      return { ...f.entry, path: p };
    },
    readFiles: () => Promise.reject(new EnclavifyError('INTERNAL', 'not used')),
  };

  /** The bytes of the file entry `f` (kept while its layer was read, or read again). */
  async content(f: Found): Promise<Buffer> {
    if (f.entry.size > this.options.maxBytes) throw tooLarge(this.image, f.entry, this.options.maxBytes);
    const kept = this.kept.get(`${f.layer}:${f.index}`);
    if (kept === 'too-large') throw tooLarge(this.image, f.entry, this.options.maxBytes);
    if (kept) return kept;
    // Not kept (e.g. a hard link's target earlier in the same layer): read the layer again, to its
    // end, so that these bytes too are checked against the diff_id.
    const src = this.layers[f.layer].name;
    let k = 0;
    let data: Buffer | undefined;
    for await (const { entry, content } of readTar(await this.open(f.layer), { source: src })) {
      if (k++ !== f.index) continue;
      if (entry.path !== f.entry.path || !content) {
        throw new EnclavifyError('LAYER_CHANGED', `${src}: entry ${f.index} is ${JSON.stringify(shortenPath(entry.path))}, the first read saw ${JSON.stringify(shortenPath(f.entry.path))}; the layer changed between reads`);
      }
      data = await collect(content);
    }
    if (!data) throw new EnclavifyError('LAYER_CHANGED', `${src}: ended before entry ${f.index}, which the first read saw; the layer changed between reads`);
    return data;
  }
}

function tooLarge(image: Image, e: FsEntry, max: number): EnclavifyError {
  return new EnclavifyError('FS_TOO_LARGE', `${image.name}: ${JSON.stringify('/' + shortenPath(e.path))} has ${e.size} bytes, more than maxBytes (${max})`);
}

async function collect(r: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Like {@link readFile}, with the entry the path resolved to and the layer holding its bytes.
 * Also returns how many layer streams were opened (`opened`).
 */
export async function readFileEntry(image: Image, path: string, options: ReadFileOptions = {}): Promise<ReadFileResult & { opened: number }> {
  return coded(() => `reading ${JSON.stringify(shortenPath(String(path)))} of ${image.name}`, async () => {
    if (typeof path !== 'string') throw new EnclavifyError('BAD_ARGUMENT', `readFile: the path must be a string, not ${typeof path}`);
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!(maxBytes >= 0)) throw new EnclavifyError('BAD_ARGUMENT', `readFile: maxBytes must be a number >= 0`);
    const view = new TopDown(image, await image.layers(), { signal: options.signal, maxBytes });
    view.want(lexicalPath(path));
    let resolved: ReturnType<typeof resolvePath>;
    for (;;) {
      try {
        resolved = resolvePath(view.lookup, path, { followFinal: true });
        break;
      } catch (e) {
        if (!(e instanceof Unknown)) throw e;
        await view.learn(e.path);
      }
    }
    const target = resolved.path || ROOT;
    const shown = JSON.stringify(path);
    if (!resolved.entry) throw new EnclavifyError('FS_NOT_FOUND', `${image.name}: ${shown}: no such file in the image`);
    if (target === ROOT) throw new EnclavifyError('FS_NOT_A_FILE', `${image.name}: ${shown}: is a dir, not a regular file`);
    await view.learn(target);
    const f = view.known.get(target);
    if (f === undefined) throw new EnclavifyError('FS_NOT_FOUND', `${image.name}: ${shown}: no such file in the image`);
    if (f === 'dir' || f.entry.type !== 'file') throw new EnclavifyError('FS_NOT_A_FILE', `${image.name}: ${shown}: is a ${f === 'dir' ? 'dir' : f.entry.type}, not a regular file`);
    const data = await view.content(f);
    return { entry: { ...f.entry, path: target }, layer: f.layer, data, opened: view.opened };
  }, options.signal);
}

/**
 * The content of one regular file of an image, exactly as the merged view ({@link rootfs}) would
 * give it: whiteouts and opaque whiteouts applied, the last entry of a layer winning, hard links
 * showing their target, symlinks in every component followed inside the image root (absolute
 * targets start at the root, `..` stops there; more than 40 links: `ELOOP`).
 *
 * Only the layers that can decide the path are read, top down: a file that the top layer holds
 * (or deletes) never opens the layers below. Each layer read is read to its end (a later entry of
 * the layer may replace the path; the layer's diff_id is checked), metadata only but for the
 * requested file. Layers that are not needed are not validated: {@link rootfs} refuses a broken
 * lower layer that readFile never reads.
 *
 * Errors: `FS_NOT_FOUND` (no such path), `FS_NOT_A_FILE` (a directory, device, fifo, or a symlink
 * to nothing regular), `FS_TOO_LARGE` (more than `maxBytes`), `ELOOP`, and the layer errors of
 * the merged view for the layers read (`LAYER_BAD_HARDLINK`, `LAYER_AMBIGUOUS_WHITEOUT`, tar and
 * digest errors).
 *
 * @example
 * ```ts
 * const image = await openImage('oci:./layout:py');
 * const osRelease = (await readFile(image, '/etc/os-release')).toString('utf8');
 * ```
 */
export async function readFile(image: Image, path: string, options: ReadFileOptions = {}): Promise<Buffer> {
  return (await readFileEntry(image, path, options)).data;
}

/**
 * The merged root file system of an image (what `umoci unpack` materialises): every layer is
 * scanned once (several at once), metadata and SHA-256 of every regular file; contents are read
 * back on demand (`readFiles`, `streamFiles`). See {@link RootFs}.
 */
export async function rootfs(image: Image, options: RootFsOptions = {}): Promise<RootFs> {
  return coded(() => `reading the file system of ${image.name}`, async () => {
    const layers = await image.layers();
    return layersRootFs(layers, { signal: options.signal, onProgress: options.onProgress, progressEvent: { image: image.name } });
  }, options.signal);
}

function isLayer(x: Image | Layer): x is Layer {
  return typeof (x as Layer).uncompressed === 'function';
}

/**
 * For a layer: its tar entries in archive order (whiteouts marked, regular files with their
 * content stream; the stream is verified against the layer's diff_id as it is read). For an
 * image: the entries of its merged view, sorted bytewise by path (after {@link rootfs}'s scan).
 */
export function entries(source: Layer, options?: EntriesOptions): AsyncGenerator<LayerItem>;
export function entries(source: Image, options?: EntriesOptions): AsyncGenerator<MergedEntry>;
export async function* entries(source: Image | Layer, options: EntriesOptions = {}): AsyncGenerator<LayerItem | MergedEntry> {
  if (!isLayer(source)) {
    yield* (await rootfs(source, options)).entries();
    return;
  }
  throwIfAborted(options.signal, `reading ${source.name}`);
  const input = abortable(await source.uncompressed(), options.signal);
  for await (const { entry, content } of readTar(input, { source: source.name })) {
    const e: LayerEntry = entry;
    const wh = classifyWhiteout(e.path, source.name);
    if (wh) e.whiteout = wh;
    yield content ? { entry: e, content } : { entry: e };
  }
}
