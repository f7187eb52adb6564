/**
 * The merged root file system of an image: each layer is scanned once (metadata and SHA-256 of
 * every regular file), then the layers are applied in order with OCI whiteout semantics, giving a
 * read-only view of what `umoci unpack` would materialise. File contents stay in the layers and
 * are read back on demand, one pass per needed layer.
 *
 * Semantics, matching umoci's extractor (oci/layer/tar_extract.go) except where stricter:
 * - `.wh.NAME` deletes NAME and its subtree from lower layers. A whiteout placed after an entry it
 *   names in the same layer is refused (`LAYER_AMBIGUOUS_WHITEOUT`): the spec and umoci keep the
 *   entry, containerd and Docker delete it. Whiteouts of missing paths do nothing.
 * - `.wh..wh..opq` hides every lower-layer child of its directory and is applied before all other
 *   entries of its layer. Other `.wh..wh.*` names are aufs metadata and are ignored (as containerd).
 * - A non-directory replacing anything, or anything replacing a non-directory, drops the old path
 *   and its subtree; a directory over a directory only updates the metadata and keeps the children.
 * - Missing parent directories are implied as 0755 root:root (mtime 0), as umoci's MkdirAll does.
 * - Hard links share the target's inode: the link name shows the target's type, metadata, size and
 *   digest (umoci applies no header metadata to hard links), `nlink` counts the names. Like on the
 *   file system umoci unpacks to, a later layer that deletes or replaces the target removes only
 *   that name: the other names keep the old content. The target must exist when the link is
 *   applied (earlier in the layer or in a lower layer) and must not be a directory.
 * - Stricter than umoci: an entry (or whiteout) whose parent path is a symlink in the view so far
 *   is refused (`LAYER_WRITE_THROUGH_SYMLINK`) instead of being resolved through the link, and an
 *   entry whose parent is another non-directory is refused (`LAYER_NOT_A_DIRECTORY`).
 */
import { createHash, hash as hashOnce } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { EnclavifyError, type ErrorCode } from '../oci/errors.js';
import { ancestors, baseName, compareBytewise, normalizePath, parentPath, ROOT, shortenPath, type FsEntry } from './entry.js';
import { resolvePath, type DirectoryLookup, type FileLookup } from './lookup.js';
import { readTar } from './tar-read.js';
import { heldError } from '../oci/digest.js';

/** A layer to read: its uncompressed tar, opened as often as needed. */
export interface LayerSource {
  /** Names the layer in errors, e.g. `layer 2 (sha256:ab12…) of oci:/x:latest`. */
  name: string;
  /** Opens the layer's uncompressed tar stream (a fresh stream on each call). */
  open(): Promise<Readable>;
  /**
   * Random access, when the source has it (a staged layer, lib/oci/stage.ts): the `length` bytes
   * at `offset` of the uncompressed tar, or undefined when it cannot seek (now). File reads then
   * read only the files' bytes instead of the layer from its start.
   */
  openRange?(offset: number, length: number): Readable | undefined;
}

/** What a whiteout entry does: delete `target`, hide the lower children of `dir`, or nothing (aufs metadata). */
export type Whiteout = { kind: 'file'; target: string } | { kind: 'opaque'; dir: string } | { kind: 'meta' };

/** One entry of a layer as scanned. */
export interface LayerEntry extends FsEntry {
  /** Hex SHA-256 of the content, for regular files. */
  sha256?: string;
  /** Set when the entry is a whiteout (`.wh.*`): it never appears in the merged view. */
  whiteout?: Whiteout;
  /** For regular files: where the content starts in the layer's uncompressed tar (for ranged reads). */
  offset?: number;
}

/** The result of scanning one layer: every entry, in archive order (so `index` = position in the tar). */
export interface LayerIndex {
  name: string;
  entries: LayerEntry[];
}

/** Where a file's bytes live: entry number `index` (path `path`) of layer `layer`. */
export interface ContentRef {
  layer: number;
  index: number;
  path: string;
}

/** An entry of the merged view. */
export interface MergedEntry extends FsEntry {
  /** The layer whose entry put this path in the view (for implied directories: the layer that implied them). */
  layer: number;
  /** Hex SHA-256 of the content, for regular files (also through hard links). */
  sha256?: string;
  /** Paths of the merged tree sharing this inode through hard links (1 for directories). */
  nlink: number;
  /** Identifies the inode: hard-linked paths have the same number. */
  inode: number;
  /** For regular files: where to read the bytes. */
  content?: ContentRef;
  /** A directory that no layer has an entry for (implied by a deeper entry, or the root). */
  implied?: boolean;
}

/** Called by {@link RootFs.streamFiles} once per distinct file content. */
export type OnFile = (file: { paths: string[]; entry: MergedEntry }, content: Readable) => void | Promise<void>;

function fail(code: ErrorCode, message: string): EnclavifyError {
  return new EnclavifyError(code, message);
}

/** Recognises whiteout names; throws `LAYER_BAD_WHITEOUT` for `.wh.` alone, `.wh..` and `.wh...`. */
export function classifyWhiteout(path: string, source: string): Whiteout | undefined {
  if (path === ROOT) return undefined;
  const base = baseName(path);
  if (!base.startsWith('.wh.')) return undefined;
  const dir = parentPath(path);
  if (base === '.wh..wh..opq') return { kind: 'opaque', dir };
  if (base.startsWith('.wh..wh.')) return { kind: 'meta' };
  const name = base.slice(4);
  if (name === '' || name === '.' || name === '..') {
    throw fail('LAYER_BAD_WHITEOUT', `${source}: entry ${JSON.stringify(path)} is not a valid whiteout (it names no file)`);
  }
  return { kind: 'file', target: dir === ROOT ? name : `${dir}/${name}` };
}

/**
 * Reads a layer once: every entry's metadata, whiteouts recognised, and the SHA-256 of every
 * regular file's content (streamed, never buffered). With `hashContents: false` (a check that
 * keeps no index, e.g. copy's validation) the contents are read but not hashed (`sha256` is
 * empty: the index can be merged, hence checked, but not used to read files).
 */
export async function scanLayer(src: LayerSource, options: { hashContents?: boolean; budget?: EntryBudget } = {}): Promise<LayerIndex> {
  const hash = options.hashContents !== false;
  const budget = options.budget;
  const input = await src.open();
  const entries: LayerEntry[] = [];
  try {
    for await (const { entry, content, offset } of readTar(input, { source: src.name })) {
      if (budget && ++budget.count > budget.max) throw tooManyEntries(budget);
      const e: LayerEntry = entry;
      if (offset !== undefined) e.offset = offset;
      const wh = classifyWhiteout(e.path, src.name);
      if (wh) e.whiteout = wh;
      if (content && hash) {
        e.sha256 = await sha256Of(content, e.size);
      } else if (content) {
        for await (const chunk of content) void chunk;
        e.sha256 = ''; // unknown: such an index can be merged (checked), not read from
      }
      entries.push(e);
    }
  } catch (e) {
    // The entry limit names no entry: reported at once (the input is left unread).
    if (e instanceof EnclavifyError && e.code === 'TOO_MANY_ENTRIES') throw e;
    // Errors that name entries are reported once the layer's blob is known to be what it claims.
    throw await heldError(input, e);
  }
  return { name: src.name, entries };
}

/** Entries a merged view holds at most by default (all layers' entries, hidden ones included). */
export const DEFAULT_MAX_ENTRIES = 2_000_000;

/**
 * A limit on the entries scanned for one image, shared by the scans of its layers: memory grows
 * with the number of entries, so a layer of millions of empty files is refused (`TOO_MANY_ENTRIES`)
 * rather than exhausting it. `count` is what was scanned so far.
 */
export interface EntryBudget {
  /** The most entries allowed (all layers together). */
  max: number;
  /** Entries scanned so far. */
  count: number;
  /** Names the image in the error. */
  image: string;
}

/** A fresh budget of `max` entries (default {@link DEFAULT_MAX_ENTRIES}) for `image`; checks `max`. */
export function entryBudget(image: string, max: number = DEFAULT_MAX_ENTRIES): EntryBudget {
  if (!Number.isSafeInteger(max) || max < 0) throw fail('BAD_OPTIONS', `maxEntries must be a non-negative integer, not ${String(max)}`);
  return { max, count: 0, image };
}

function tooManyEntries(b: EntryBudget): EnclavifyError {
  return fail('TOO_MANY_ENTRIES', `${b.image}: its layers hold more than ${b.max} entries (the limit, --max-entries / maxEntries); refusing to build a view that large`);
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');
/** Files up to this size are hashed in one call, without a hash object. */
const ONE_SHOT = 64 * 1024;

/**
 * Hex SHA-256 of a file's content. Small files (most of a many-file layer) are hashed in one
 * call: a hash object per file holds native memory the garbage collector does not see, and a
 * million of them pending finalisation once took more than a gigabyte.
 */
async function sha256Of(content: Readable, size: number): Promise<string> {
  if (size === 0) {
    for await (const chunk of content) void chunk;
    return EMPTY_SHA256;
  }
  if (size <= ONE_SHOT) {
    const parts: Buffer[] = [];
    for await (const chunk of content) parts.push(chunk as Buffer);
    return hashOnce('sha256', parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }
  const h = createHash('sha256');
  for await (const chunk of content) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Runs `fn` over `items` with at most `limit` at once; stops starting new ones after a failure. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/**
 * One inode of the view. `meta` is the layer entry itself (not a copy: its `path` is the entry's,
 * the name comes from the node), `nlink` the count of paths naming it. Kept small: there is one
 * per path of the image, so a million-file layer holds a million of them.
 */
interface Inode {
  id: number;
  meta: FsEntry;
  layer: number;
  /** The entry number in `layer` that holds the content, for regular files (-1 otherwise). */
  index: number;
  implied: boolean;
  nlink: number;
}
interface Node {
  layer: number;
  inode: Inode;
}

function cleanMeta(e: LayerEntry): FsEntry {
  const m: FsEntry = { path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.size };
  if (e.uname !== undefined) m.uname = e.uname;
  if (e.gname !== undefined) m.gname = e.gname;
  if (e.linkname !== undefined) m.linkname = e.linkname;
  if (e.devmajor !== undefined) m.devmajor = e.devmajor;
  if (e.devminor !== undefined) m.devminor = e.devminor;
  if (e.pax !== undefined) m.pax = e.pax;
  return m;
}

function impliedDir(path: string): FsEntry {
  return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 };
}

/** Applies layers one after the other to an in-memory tree of paths. */
class Builder {
  readonly nodes = new Map<string, Node>();
  readonly kids = new Map<string, Set<string>>([[ROOT, new Set()]]);
  readonly root: Node = { layer: 0, inode: { id: 0, meta: impliedDir(ROOT), layer: 0, index: -1, implied: true, nlink: 1 } };
  private nextInode = 1;
  /** Paths written by the current layer and their ancestors: whiteouts of that layer spare them. */
  private upper = new Set<string>();

  apply(layer: number, index: LayerIndex): void {
    this.upper = new Set();
    // Opaque whiteouts first, whatever their position in the layer (image-spec layer.md).
    for (const e of index.entries) {
      if (e.whiteout?.kind !== 'opaque') continue;
      const d = e.whiteout.dir;
      const n = d === ROOT ? this.root : this.nodes.get(d);
      if (n?.inode.meta.type !== 'dir') continue; // nothing below to hide
      for (const c of [...(this.kids.get(d) ?? [])]) this.drop(c);
    }
    index.entries.forEach((e, k) => this.entry(layer, k, e, index.name));
  }

  private entry(layer: number, k: number, e: LayerEntry, source: string): void {
    const where = () => `${source}: entry ${JSON.stringify(e.path)}`;
    if (e.whiteout) return this.whiteout(e, where);
    if (e.path === ROOT) {
      const r = this.root.inode;
      r.meta = e;
      r.layer = this.root.layer = layer;
      r.implied = false;
      return;
    }
    for (const a of ancestors(e.path)) {
      const n = this.nodes.get(a);
      if (!n) {
        this.create(a, impliedDir(a), layer, -1, true);
        continue;
      }
      const t = n.inode.meta.type;
      if (t === 'symlink') {
        throw fail('LAYER_WRITE_THROUGH_SYMLINK', `${where()} would be written through the symlink ${JSON.stringify(a)} (-> ${JSON.stringify(n.inode.meta.linkname)}); refusing to write outside its path`);
      }
      if (t !== 'dir') throw fail('LAYER_NOT_A_DIRECTORY', `${where()}: its parent ${JSON.stringify(a)} is a ${t}, not a directory`);
    }
    const existing = this.nodes.get(e.path);
    if (existing && existing.inode.meta.type === 'dir' && e.type === 'dir') {
      existing.inode.meta = e;
      existing.inode.layer = existing.layer = layer;
      existing.inode.implied = false;
    } else {
      if (existing) this.drop(e.path);
      if (e.type === 'hardlink') {
        const target = this.nodes.get(e.linkname!);
        if (!target) throw fail('LAYER_BAD_HARDLINK', `${where()}: hard link target ${JSON.stringify(e.linkname)} does not exist in this or a lower layer`);
        if (target.inode.meta.type === 'dir') throw fail('LAYER_BAD_HARDLINK', `${where()}: hard link target ${JSON.stringify(e.linkname)} is a directory`);
        this.link(e.path, target.inode, layer);
      } else {
        if (e.type === 'file' && e.sha256 === undefined) throw fail('LAYER_BAD_INDEX', `${where()}: regular file without a content digest`);
        this.create(e.path, e, layer, e.type === 'file' ? k : -1, false);
      }
    }
    this.upper.add(e.path);
    for (const a of ancestors(e.path)) this.upper.add(a);
  }

  private whiteout(e: LayerEntry, where: () => string): void {
    const wh = e.whiteout!;
    if (wh.kind === 'meta') return;
    for (const a of ancestors(e.path)) {
      const n = this.nodes.get(a);
      if (!n) return; // nothing there to delete
      const t = n.inode.meta.type;
      if (t === 'symlink') {
        throw fail('LAYER_WRITE_THROUGH_SYMLINK', `${where()}: whiteout would act through the symlink ${JSON.stringify(a)} (-> ${JSON.stringify(n.inode.meta.linkname)})`);
      }
      if (t !== 'dir') return;
    }
    if (wh.kind === 'file' && this.upper.has(wh.target)) {
      // The image spec says a whiteout spares its own layer (umoci agrees), but containerd and
      // Docker apply `.wh.X` in archive order and delete an X written earlier in the same layer.
      // Readers disagree on what such a layer holds, so it is refused.
      throw fail('LAYER_AMBIGUOUS_WHITEOUT', `${where()}: whiteout comes after ${JSON.stringify(wh.target)} (or an entry under it) in the same layer; container runtimes would delete it, the image spec keeps it`);
    }
    if (wh.kind === 'file' && this.nodes.has(wh.target)) this.removeLower(wh.target);
  }

  /** Removes `path` and its subtree, sparing what the current layer wrote (and their ancestors). */
  private removeLower(path: string): void {
    if (!this.upper.has(path)) return this.drop(path);
    for (const c of [...(this.kids.get(path) ?? [])]) this.removeLower(c);
  }

  /** Removes `path` and its whole subtree from the view. */
  private drop(path: string, fromParent = true): void {
    const ks = this.kids.get(path);
    if (ks) {
      for (const c of ks) this.drop(c, false);
      this.kids.delete(path);
    }
    const n = this.nodes.get(path);
    if (n) {
      n.inode.nlink--;
      this.nodes.delete(path);
    }
    if (fromParent) this.kids.get(parentPath(path))?.delete(path);
  }

  private create(path: string, meta: FsEntry, layer: number, index: number, implied: boolean): void {
    const inode: Inode = { id: this.nextInode++, meta, layer, index, implied, nlink: 1 };
    this.nodes.set(path, { layer, inode });
    this.kids.get(parentPath(path))!.add(path);
    if (meta.type === 'dir') this.kids.set(path, new Set());
  }

  private link(path: string, inode: Inode, layer: number): void {
    inode.nlink++;
    this.nodes.set(path, { layer, inode });
    this.kids.get(parentPath(path))!.add(path);
  }
}

/** Verifies streamed content against the digest recorded by the scan. */
class DigestCheck extends Transform {
  private readonly h = createHash('sha256');
  constructor(private readonly expected: string, private readonly what: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.h.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = this.h.digest('hex');
    cb(got === this.expected ? null : fail('LAYER_CHANGED', `${this.what}: content differs from what the scan saw (SHA-256 ${this.expected}); the layer changed between reads`));
  }
}

/** Options for {@link RootFs.scan}. */
export interface ScanOptions {
  /** Layers scanned at once (default: the number of CPUs, at least 2). Decompression runs on the thread pool. */
  concurrency?: number;
  /** The most entries all layers may hold together (default {@link DEFAULT_MAX_ENTRIES}); more fail with `TOO_MANY_ENTRIES`. */
  maxEntries?: number | undefined;
  /** Names the image in a `TOO_MANY_ENTRIES` error (default: the first layer's name). */
  image?: string | undefined;
  /**
   * The sources the view reads contents from later (default: the scanned ones), e.g. the same
   * layers without the scan's progress taps: the view is merged once, not once per set of sources.
   */
  readSources?: readonly LayerSource[] | undefined;
}

/** Options for {@link RootFs.streamFiles}. */
export interface StreamFilesOptions {
  /** Layers read at once (default 1, so callbacks never interleave). */
  concurrency?: number;
}

/**
 * The merged root file system of a list of layers (base first). Immutable once built. Paths given
 * to its methods may have a leading `/` or `./`; a `..` component is an error (`FS_BAD_PATH`).
 */
export class RootFs implements FileLookup, DirectoryLookup {
  private readonly nodes: Map<string, Node>;
  private readonly kids: Map<string, Set<string>>;
  private readonly rootNode: Node;
  private sortedPaths?: string[];

  private constructor(
    /** The layers' sources, in order (used to read contents). */
    readonly sources: readonly LayerSource[],
    /** Each layer's scan, in order, including entries hidden by later layers and whiteouts. */
    readonly layers: readonly LayerIndex[],
  ) {
    const b = new Builder();
    layers.forEach((ix, i) => b.apply(i, ix));
    this.nodes = b.nodes;
    this.kids = b.kids;
    this.rootNode = b.root;
  }

  /** Scans the layers (several at once) and merges them in order. */
  static async scan(layers: readonly LayerSource[], options: ScanOptions = {}): Promise<RootFs> {
    const limit = options.concurrency ?? Math.max(2, availableParallelism());
    const budget = entryBudget(options.image ?? layers[0]?.name ?? 'the image', options.maxEntries);
    const indexes = await mapLimit(layers, limit, (l) => scanLayer(l, { budget }));
    const readers = options.readSources ?? layers;
    if (readers.length !== layers.length) throw fail('BAD_ARGUMENT', 'RootFs.scan: readSources must have one source per layer');
    return new RootFs(readers, indexes);
  }

  /** Merges layers already scanned with {@link scanLayer} (`indexes[i]` belongs to `sources[i]`). */
  static fromIndexes(sources: readonly LayerSource[], indexes: readonly LayerIndex[]): RootFs {
    if (sources.length !== indexes.length) throw fail('BAD_ARGUMENT', 'RootFs.fromIndexes: one index per source is needed');
    return new RootFs(sources, indexes);
  }

  /** The root directory (`.`): its metadata comes from the last layer with a root entry. */
  get root(): MergedEntry {
    return this.view(ROOT, this.rootNode);
  }

  private key(path: string): string {
    const n = normalizePath(path);
    if (n instanceof Error) throw fail('FS_BAD_PATH', `${JSON.stringify(path)}: ".." components are not allowed here`);
    return n ?? ROOT;
  }

  private view(path: string, n: Node): MergedEntry {
    const i = n.inode;
    const m = i.meta;
    // One object per call, not a copy of a copy: every walk of the view makes one per path, and a
    // warm reconversion spends most of its CPU in those walks (same fields, same key order).
    const e = cleanMeta(m) as MergedEntry;
    e.path = path;
    e.layer = n.layer;
    e.nlink = m.type === 'dir' ? 1 : i.nlink;
    e.inode = i.id;
    if (i.index >= 0) {
      e.sha256 = (m as LayerEntry).sha256!;
      e.content = { layer: i.layer, index: i.index, path: m.path };
    }
    if (i.implied) e.implied = true;
    return e;
  }

  /** The entry at `path` (a final symlink is not followed), or undefined. */
  get(path: string): MergedEntry | undefined {
    const k = this.key(path);
    if (k === ROOT) return this.root;
    const n = this.nodes.get(k);
    return n && this.view(k, n);
  }

  /** Same as {@link get}: {@link FileLookup}'s name for it. */
  lstat(path: string): MergedEntry | undefined {
    return this.get(path);
  }

  /**
   * Resolves symlinks in every component of `path` inside the root (as a chroot would: `..` stops
   * at `/`, absolute targets start at the root). Returns the normalised path of what it names, or
   * undefined when a component is missing or not a directory. Throws `ELOOP` ({@link SymlinkLoopError}) after 40 links.
   */
  resolve(path: string, options: { followFinal?: boolean } = {}): string | undefined {
    const r = resolvePath(this, path, { followFinal: options.followFinal ?? true });
    return r.entry ? r.path || ROOT : undefined;
  }

  /** The entry `path` names after following symlinks (see {@link resolve}), or undefined. */
  stat(path: string): MergedEntry | undefined {
    const r = this.resolve(path);
    return r === undefined ? undefined : this.get(r);
  }

  /** Every entry of the view but the root, sorted bytewise by path. */
  entries(): MergedEntry[] {
    return [...this.walk()];
  }

  /**
   * Every entry of the view but the root, sorted bytewise by path, made one at a time as the
   * iteration gets to it: a million-entry view is listed without a million objects at once.
   */
  *walk(): IterableIterator<MergedEntry> {
    this.sortedPaths ??= [...this.nodes.keys()].sort(compareBytewise);
    for (const p of this.sortedPaths) yield this.view(p, this.nodes.get(p)!);
  }

  /** The entries directly inside directory `dir` (`.` or `` for the root), sorted bytewise; undefined if it is not a directory. */
  children(dir: string): MergedEntry[] | undefined {
    const k = this.key(dir);
    const ks = this.kids.get(k);
    if (!ks) return undefined;
    return [...ks].sort(compareBytewise).map((p) => this.view(p, this.nodes.get(p)!));
  }

  /** Names (not paths) inside directory `dir` (`.` or `` for the root), sorted bytewise; undefined if it is not a directory. */
  readdir(dir: string): string[] | undefined {
    const ks = this.kids.get(this.key(dir));
    return ks && [...ks].map(baseName).sort(compareBytewise);
  }

  /** The scan of layer `i`. */
  layerIndex(i: number): LayerIndex {
    const l = this.layers[i];
    if (!l) throw fail('BAD_LAYER_INDEX', `no layer ${i} (the image has ${this.layers.length})`);
    return l;
  }

  /** Resolves requested paths to files, grouped by the layer holding their bytes. */
  private plan(paths: string[]): Map<number, Map<number, { paths: string[]; entry: MergedEntry }>> {
    const byLayer = new Map<number, Map<number, { paths: string[]; entry: MergedEntry }>>();
    for (const p of paths) {
      const r = this.resolve(p);
      const e = r === undefined ? undefined : this.get(r);
      if (!e) throw fail('FS_NOT_FOUND', `${JSON.stringify(p)}: no such file in the image`);
      if (e.type !== 'file' || !e.content) throw fail('FS_NOT_A_FILE', `${JSON.stringify(p)}: is a ${e.type}, not a regular file`);
      const { layer, index } = e.content;
      let m = byLayer.get(layer);
      if (!m) byLayer.set(layer, (m = new Map()));
      const f = m.get(index);
      if (f) f.paths.push(p);
      else m.set(index, { paths: [p], entry: e });
    }
    return byLayer;
  }

  /** One pass over layer `layer`, handing the wanted entries to `onMatch`; stops once all were seen. */
  private async pass(
    layer: number,
    wanted: Map<number, { paths: string[]; entry: MergedEntry }>,
    onMatch: (f: { paths: string[]; entry: MergedEntry }, content: Readable) => Promise<void>,
  ): Promise<void> {
    const src = this.sources[layer];
    if (src.openRange) wanted = await this.ranged(layer, wanted, onMatch);
    if (wanted.size === 0) return;
    const left = new Set(wanted.keys());
    const input = await src.open();
    const run = async () => {
      let k = 0;
      for await (const { entry, content } of readTar(input, { source: src.name })) {
        const f = wanted.get(k++);
        if (f && content) {
          if (entry.path !== f.entry.content!.path) {
            throw fail('LAYER_CHANGED', `${src.name}: entry ${k - 1} is ${JSON.stringify(shortenPath(entry.path))}, the scan saw ${JSON.stringify(shortenPath(f.entry.content!.path))}; the layer changed between reads`);
          }
          await onMatch(f, content);
          left.delete(k - 1);
          if (left.size === 0) return; // leaving the loop releases the layer stream
        }
      }
      if (left.size) throw fail('LAYER_CHANGED', `${src.name}: ended before ${left.size} file(s) seen by the scan; the layer changed between reads`);
    };
    try {
      await run();
    } catch (e) {
      // The entry names in these messages come from this read: held until the blob verifies.
      throw await heldError(input, e);
    }
  }

  /**
   * Reads the wanted entries of `layer` by byte range (a staged layer: no pass from the start),
   * in archive order; returns those it could not (all of them when the source cannot seek). The
   * callers check every content against the scan's SHA-256: a changed staged file fails with
   * `LAYER_CHANGED`.
   */
  private async ranged(
    layer: number,
    wanted: Map<number, { paths: string[]; entry: MergedEntry }>,
    onMatch: (f: { paths: string[]; entry: MergedEntry }, content: Readable) => Promise<void>,
  ): Promise<Map<number, { paths: string[]; entry: MergedEntry }>> {
    const src = this.sources[layer];
    const entries = this.layers[layer].entries;
    const left = new Map([...wanted].sort((a, b) => a[0] - b[0]));
    for (const [k, f] of left) {
      const e = entries[k];
      const content = e?.offset === undefined ? undefined : src.openRange!(e.offset, e.size);
      if (!content) break;
      try {
        await onMatch(f, content);
      } finally {
        content.destroy(); // what is left unread is skipped
      }
      left.delete(k);
    }
    return left;
  }


  /**
   * Streams the contents of the files at `paths` (symlinks followed inside the root): one pass over
   * each layer that holds some of them, and only those layers. `onFile` is called once per distinct
   * content (hard links and symlinks to the same file are grouped in `paths`), in archive order;
   * consume `content` before the returned promise settles (what is left is skipped). The stream
   * fails with `LAYER_CHANGED` if the bytes do not match the digest recorded by the scan.
   * Missing paths throw `FS_NOT_FOUND`, non-files `FS_NOT_A_FILE`, before any layer is read.
   */
  async streamFiles(paths: string[], onFile: OnFile, options: StreamFilesOptions = {}): Promise<void> {
    const plan = this.plan(paths);
    const layers = [...plan.keys()].sort((a, b) => a - b);
    await mapLimit(layers, options.concurrency ?? 1, (layer) =>
      this.pass(layer, plan.get(layer)!, async (f, content) => {
        const checked = new DigestCheck(f.entry.sha256!, `${this.sources[layer].name}: ${JSON.stringify(f.entry.content!.path)}`);
        pipeline(content, checked, () => {});
        await onFile(f, checked);
      }),
    );
  }

  /**
   * Reads whole files (symlinks followed inside the root), keyed by the path as requested. One pass
   * per layer that holds some of them, two layers at a time; contents are checked against the scan.
   */
  async readFiles(paths: string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const plan = this.plan(paths);
    await mapLimit([...plan.keys()], 2, (layer) =>
      this.pass(layer, plan.get(layer)!, async (f, content) => {
        const parts: Buffer[] = [];
        for await (const c of content) parts.push(c as Buffer);
        const data = Buffer.concat(parts);
        const got = createHash('sha256').update(data).digest('hex');
        if (got !== f.entry.sha256) {
          throw fail('LAYER_CHANGED', `${this.sources[layer].name}: ${JSON.stringify(f.entry.content!.path)} differs from what the scan saw (SHA-256 ${f.entry.sha256}); the layer changed between reads`);
        }
        for (const p of f.paths) out.set(p, data);
      }),
    );
    return out;
  }
}
