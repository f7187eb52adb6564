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
import { baseName, compareBytewise, normalizePath, parentPath, ROOT, shortenPath, type FsEntry } from './entry.js';
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
      const wh = classifyWhiteout(entry.path, src.name);
      let sha256: string | undefined;
      if (content && hash) {
        sha256 = await sha256Of(content, entry.size);
      } else if (content) {
        if (entry.size) for await (const chunk of content) void chunk;
        sha256 = ''; // unknown: such an index can be merged (checked), not read from
      }
      const e = compactEntry(entry, sha256, offset);
      if (wh) e.whiteout = wh;
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

/**
 * The layer entry for `e` with its digest, as one object of a few fixed shapes when it has no
 * other optional field (most entries): adding `sha256` to the tar reader's object would move its
 * properties to a second, out-of-object array (40 bytes more per entry, a million times).
 */
export function compactEntry(e: FsEntry, sha256: string | undefined, offset: number | undefined): LayerEntry {
  const { path, type, mode, uid, gid, mtime, size, uname, gname } = e;
  // Regular files have both a digest and a data offset (staged reads seek to it); others neither.
  if (e.linkname === undefined && e.devmajor === undefined && e.devminor === undefined && e.pax === undefined && (uname === undefined) === (gname === undefined) && (sha256 === undefined) === (offset === undefined)) {
    if (uname === undefined) return sha256 === undefined ? { path, type, mode, uid, gid, mtime, size } : { path, type, mode, uid, gid, mtime, size, sha256, offset: offset! };
    return sha256 === undefined ? { path, type, mode, uid, gid, mtime, size, uname, gname: gname! } : { path, type, mode, uid, gid, mtime, size, uname, gname: gname!, sha256, offset: offset! };
  }
  const l: LayerEntry = e;
  if (sha256 !== undefined) l.sha256 = sha256;
  if (offset !== undefined) l.offset = offset;
  return l;
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

/** Counts the entries of a scan made earlier against `budget`; returns the scan. */
export function chargeBudget(budget: EntryBudget, index: LayerIndex): LayerIndex {
  budget.count += index.entries.length;
  if (budget.count > budget.max) throw tooManyEntries(budget);
  return index;
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
  if (size === 0) return EMPTY_SHA256; // nothing to read (an async iterator per empty file costs more than its hash)
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

/** Growable columns of 32-bit integers, one value per row, sharing one row count. */
class Columns<K extends string> {
  rows = 0;
  private cap: number;
  readonly c: Record<K, Int32Array>;
  constructor(private readonly names: readonly K[], cap = 1024) {
    this.cap = cap;
    this.c = Object.fromEntries(names.map((n) => [n, new Int32Array(cap)])) as Record<K, Int32Array>;
  }
  /** A new row (its values 0); returns its number. */
  add(): number {
    if (this.rows === this.cap) {
      this.cap = Math.max(16, this.cap * 2);
      for (const n of this.names) {
        const a = new Int32Array(this.cap);
        a.set(this.c[n]);
        this.c[n] = a;
      }
    }
    return this.rows++;
  }
  /** Gives back the unused capacity (once no row will be added). */
  trim(): void {
    for (const n of this.names) this.c[n] = this.c[n].slice(0, this.rows);
    this.cap = this.rows;
  }
}

const NONE = -1;

/**
 * Applies layers one after the other to an in-memory tree of paths, kept compact: a million-path
 * image has a million nodes, so a node is a row of integer columns (no object per node, no `Set`
 * per directory) plus its path, shared with the layer entry, as the key of one `Map`.
 *
 * A node (a path; node 0 is the root, not in `nodes`) has: the layer that put it there, its
 * inode, its parent, and its place in the parent's doubly linked list of children. An inode
 * (inode 0 is the root's) names its metadata as (layer, entry number), entry -1 for an implied
 * directory, and counts the paths naming it. A node whose inode is -1 was dropped.
 */
class Builder {
  /** Path -> node, every path but the root. */
  readonly nodes = new Map<string, number>();
  /** Paths by node. */
  readonly paths: string[] = [ROOT];
  readonly node = new Columns(['layer', 'inode', 'parent', 'first', 'next', 'prev', 'upper'] as const);
  readonly inode = new Columns(['layer', 'entry', 'nlink'] as const);
  /** The layer being applied, plus one: a node whose `upper` is this was written by it (or is an ancestor of such a path). */
  private stamp = 0;
  /** Paths of the current layer's "upper" set whose node was dropped since (they stay in the set). */
  private droppedUpper = new Set<string>();
  /** The parent directory of the entry applied last, and its node (a cache: most entries share it). */
  private lastDir = '';
  private lastDirNode = NONE;
  /** The entry being applied and its layer's name, for messages. */
  private at?: LayerEntry;
  private source = '';

  private where(): string {
    return `${this.source}: entry ${JSON.stringify(this.at?.path)}`;
  }

  constructor(private readonly layers: readonly LayerIndex[]) {
    this.node.add();
    const n = this.node.c;
    n.parent[0] = n.first[0] = n.next[0] = n.prev[0] = NONE;
    this.inode.add();
    this.inode.c.entry[0] = NONE;
    this.inode.c.nlink[0] = 1;
  }

  /** The metadata of inode `i` (an implied directory's when `path` is given and the inode has no entry). */
  meta(i: number): LayerEntry | undefined {
    const k = this.inode.c.entry[i];
    return k < 0 ? undefined : this.layers[this.inode.c.layer[i]].entries[k];
  }

  /** The type of node `n`'s inode. */
  type(n: number): FsEntry['type'] {
    return this.meta(this.node.c.inode[n])?.type ?? 'dir';
  }

  /** The node at `path` (0 for the root), or undefined. */
  find(path: string): number | undefined {
    return path === ROOT ? 0 : this.nodes.get(path);
  }

  /** Node numbers of the children of `n` (any order). */
  kids(n: number): number[] {
    const out: number[] = [];
    const { first, next } = this.node.c;
    for (let c = first[n]; c !== NONE; c = next[c]) out.push(c);
    return out;
  }

  /** Called once every layer is applied: the columns shrink to their rows. */
  done(): void {
    this.node.trim();
    this.inode.trim();
    this.droppedUpper = new Set();
  }

  apply(layer: number, index: LayerIndex): void {
    this.stamp = layer + 1;
    this.droppedUpper = new Set();
    this.lastDirNode = NONE;
    // Opaque whiteouts first, whatever their position in the layer (image-spec layer.md).
    for (const e of index.entries) {
      if (e.whiteout?.kind !== 'opaque') continue;
      const n = this.find(e.whiteout.dir);
      if (n === undefined || this.type(n) !== 'dir') continue; // nothing below to hide
      for (const c of this.kids(n)) this.drop(c);
    }
    const entries = index.entries;
    for (let k = 0; k < entries.length; k++) this.entry(layer, k, entries[k], index.name);
  }

  private upper(n: number): boolean {
    return this.node.c.upper[n] === this.stamp || (this.droppedUpper.size > 0 && this.droppedUpper.has(this.paths[n]));
  }

  /**
   * The node of the parent directory of `path` (not the root itself), creating missing ancestors
   * as implied directories and refusing a symlink or non-directory among them.
   */
  private parentOf(path: string, layer: number): number {
    const slash = path.lastIndexOf('/');
    if (slash < 0) return 0;
    // Most entries are in the directory of the one before: a live node's ancestors are all directories.
    const d = this.lastDir;
    if (this.lastDirNode !== NONE && slash === d.length && path.startsWith(d) && this.node.c.inode[this.lastDirNode] !== NONE) return this.lastDirNode;
    let parent = 0;
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
      const a = path.slice(0, i);
      const n = this.nodes.get(a);
      if (n === undefined) {
        parent = this.create(a, layer, NONE, parent);
        continue;
      }
      const t = this.type(n);
      if (t === 'symlink') {
        throw fail('LAYER_WRITE_THROUGH_SYMLINK', `${this.where()} would be written through the symlink ${JSON.stringify(a)} (-> ${JSON.stringify(this.meta(this.node.c.inode[n])!.linkname)}); refusing to write outside its path`);
      }
      if (t !== 'dir') throw fail('LAYER_NOT_A_DIRECTORY', `${this.where()}: its parent ${JSON.stringify(a)} is a ${t}, not a directory`);
      parent = n;
    }
    this.lastDir = this.paths[parent];
    this.lastDirNode = parent;
    return parent;
  }

  private entry(layer: number, k: number, e: LayerEntry, source: string): void {
    this.at = e;
    this.source = source;
    if (e.whiteout) return this.whiteout(e);
    const nc = this.node.c, ic = this.inode.c;
    if (e.path === ROOT) {
      ic.layer[0] = nc.layer[0] = layer;
      ic.entry[0] = k;
      return;
    }
    const parent = this.parentOf(e.path, layer);
    const existing = this.nodes.get(e.path);
    let n: number;
    if (existing !== undefined && e.type === 'dir' && this.type(existing) === 'dir') {
      n = existing;
      const i = nc.inode[n];
      ic.layer[i] = nc.layer[n] = layer;
      ic.entry[i] = k;
    } else {
      if (existing !== undefined) this.drop(existing);
      if (e.type === 'hardlink') {
        const target = this.nodes.get(e.linkname!);
        if (target === undefined) throw fail('LAYER_BAD_HARDLINK', `${this.where()}: hard link target ${JSON.stringify(e.linkname)} does not exist in this or a lower layer`);
        if (this.type(target) === 'dir') throw fail('LAYER_BAD_HARDLINK', `${this.where()}: hard link target ${JSON.stringify(e.linkname)} is a directory`);
        n = this.link(e.path, nc.inode[target], layer, parent);
      } else {
        if (e.type === 'file' && e.sha256 === undefined) throw fail('LAYER_BAD_INDEX', `${this.where()}: regular file without a content digest`);
        n = this.create(e.path, layer, k, parent);
      }
    }
    // The path and its ancestors join the layer's upper set (a marked node's ancestors are marked).
    for (; n > 0 && nc.upper[n] !== this.stamp; n = nc.parent[n]) nc.upper[n] = this.stamp;
  }

  private whiteout(e: LayerEntry): void {
    const wh = e.whiteout!;
    if (wh.kind === 'meta') return;
    const p = e.path;
    for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
      const a = p.slice(0, i);
      const n = this.nodes.get(a);
      if (n === undefined) return; // nothing there to delete
      const t = this.type(n);
      if (t === 'symlink') {
        throw fail('LAYER_WRITE_THROUGH_SYMLINK', `${this.where()}: whiteout would act through the symlink ${JSON.stringify(a)} (-> ${JSON.stringify(this.meta(this.node.c.inode[n])!.linkname)})`);
      }
      if (t !== 'dir') return;
    }
    if (wh.kind !== 'file') return;
    const target = this.nodes.get(wh.target);
    if ((target !== undefined && this.upper(target)) || this.droppedUpper.has(wh.target)) {
      // The image spec says a whiteout spares its own layer (umoci agrees), but containerd and
      // Docker apply `.wh.X` in archive order and delete an X written earlier in the same layer.
      // Readers disagree on what such a layer holds, so it is refused.
      throw fail('LAYER_AMBIGUOUS_WHITEOUT', `${this.where()}: whiteout comes after ${JSON.stringify(wh.target)} (or an entry under it) in the same layer; container runtimes would delete it, the image spec keeps it`);
    }
    if (target !== undefined) this.removeLower(target);
  }

  /** Removes node `n` and its subtree, sparing what the current layer wrote (and their ancestors). */
  private removeLower(n: number): void {
    if (!this.upper(n)) return this.drop(n);
    const next = this.node.c.next;
    for (let c = this.node.c.first[n], after; c !== NONE; c = after) {
      after = next[c];
      this.removeLower(c);
    }
  }

  /** Removes node `n` and its whole subtree from the view. */
  private drop(n: number, fromParent = true): void {
    const nc = this.node.c;
    for (let c = nc.first[n]; c !== NONE; c = nc.next[c]) this.drop(c, false);
    if (nc.upper[n] === this.stamp) this.droppedUpper.add(this.paths[n]);
    this.inode.c.nlink[nc.inode[n]]--;
    nc.inode[n] = NONE;
    this.nodes.delete(this.paths[n]);
    if (fromParent) {
      const p = nc.parent[n], prev = nc.prev[n], next = nc.next[n];
      if (prev === NONE) nc.first[p] = next;
      else nc.next[prev] = next;
      if (next !== NONE) nc.prev[next] = prev;
    }
  }

  /** A new node for `path` under `parent`, with a new inode for entry `k` of `layer` (-1: an implied directory). */
  private create(path: string, layer: number, k: number, parent: number): number {
    const i = this.inode.add();
    const ic = this.inode.c;
    ic.layer[i] = layer;
    ic.entry[i] = k;
    ic.nlink[i] = 1;
    return this.attach(path, i, layer, parent);
  }

  private link(path: string, inode: number, layer: number, parent: number): number {
    this.inode.c.nlink[inode]++;
    return this.attach(path, inode, layer, parent);
  }

  private attach(path: string, inode: number, layer: number, parent: number): number {
    const n = this.node.add();
    const nc = this.node.c;
    nc.layer[n] = layer;
    nc.inode[n] = inode;
    nc.parent[n] = parent;
    nc.first[n] = NONE;
    nc.prev[n] = NONE;
    const head = nc.first[parent];
    nc.next[n] = head;
    if (head !== NONE) nc.prev[head] = n;
    nc.first[parent] = n;
    this.paths[n] = path;
    this.nodes.set(path, n);
    return n;
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
  /**
   * Scans made earlier, by position (e.g. `view.layers[i]` of an earlier view holding the same
   * layer): `scanned[i]`, when set, is used as it is instead of scanning `layers[i]` again. Its
   * entries count toward `maxEntries` as scanned ones do.
   */
  scanned?: readonly (LayerIndex | undefined)[] | undefined;
}

/** Options for {@link RootFs.streamFiles}. */
export interface StreamFilesOptions {
  /** Layers read at once (default 1, so callbacks never interleave). */
  concurrency?: number;
}

/**
 * The view's node numbers, for indexes kept beside a view (the classification keeps one code per
 * node instead of an object and a path string per file). Not exported by `enclavify/fs`.
 */
export interface ViewNodes {
  /** Every node number is below this; the root is 0. */
  limit: number;
  /** The node at a normalised path (`a/b`, `.` for the root), or undefined. */
  at(path: string): number | undefined;
  /** The normalised path of node `n`. */
  pathOf(n: number): string;
  /** The entry of node `n`, made afresh. */
  entryAt(n: number): MergedEntry;
  /** The nodes of {@link RootFs.walk}'s entries, in its order, without making the entries. */
  walk(): IterableIterator<number>;
}

let nodesOf: (fs: RootFs) => ViewNodes;

/** The node numbering of `fs` (package-internal). */
export function viewNodes(fs: RootFs): ViewNodes {
  return nodesOf(fs);
}

/**
 * The merged root file system of a list of layers (base first). Immutable once built. Paths given
 * to its methods may have a leading `/` or `./`; a `..` component is an error (`FS_BAD_PATH`).
 */
export class RootFs implements FileLookup, DirectoryLookup {
  private readonly tree: Builder;
  private sortedNodes?: Uint32Array;

  private constructor(
    /** The layers' sources, in order (used to read contents). */
    readonly sources: readonly LayerSource[],
    /** Each layer's scan, in order, including entries hidden by later layers and whiteouts. */
    readonly layers: readonly LayerIndex[],
  ) {
    const b = new Builder(layers);
    layers.forEach((ix, i) => b.apply(i, ix));
    b.done();
    this.tree = b;
  }

  /** Scans the layers (several at once) and merges them in order. */
  static async scan(layers: readonly LayerSource[], options: ScanOptions = {}): Promise<RootFs> {
    const limit = options.concurrency ?? Math.max(2, availableParallelism());
    const budget = entryBudget(options.image ?? layers[0]?.name ?? 'the image', options.maxEntries);
    const indexes = await mapLimit(layers, limit, async (l, i) => {
      const known = options.scanned?.[i];
      return known ? chargeBudget(budget, known) : await scanLayer(l, { budget });
    });
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
    return this.view(ROOT, 0);
  }

  private key(path: string): string {
    const n = normalizePath(path);
    if (n instanceof Error) throw fail('FS_BAD_PATH', `${JSON.stringify(path)}: ".." components are not allowed here`);
    return n ?? ROOT;
  }

  /** The entry of node `n` at `path`, made afresh (the view keeps no entry objects). */
  private view(path: string, n: number): MergedEntry {
    const t = this.tree;
    const i = t.node.c.inode[n];
    const m = t.meta(i);
    const layer = t.node.c.layer[n];
    if (!m) return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, layer, nlink: 1, inode: i, implied: true };
    // Fields in the order of the layer entry's, then the view's own.
    const e = { path, type: m.type, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, size: m.size } as MergedEntry;
    if (m.uname !== undefined) e.uname = m.uname;
    if (m.gname !== undefined) e.gname = m.gname;
    if (m.linkname !== undefined) e.linkname = m.linkname;
    if (m.devmajor !== undefined) e.devmajor = m.devmajor;
    if (m.devminor !== undefined) e.devminor = m.devminor;
    if (m.pax !== undefined) e.pax = m.pax;
    e.layer = layer;
    e.nlink = m.type === 'dir' ? 1 : t.inode.c.nlink[i];
    e.inode = i;
    if (m.type === 'file') {
      e.sha256 = m.sha256!;
      e.content = { layer: t.inode.c.layer[i], index: t.inode.c.entry[i], path: m.path };
    }
    return e;
  }

  /** The entry at `path` (a final symlink is not followed), or undefined. */
  get(path: string): MergedEntry | undefined {
    const k = this.key(path);
    const n = this.tree.find(k);
    return n === undefined ? undefined : this.view(k, n);
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
    const paths = this.tree.paths;
    for (const n of this.nodeOrder()) yield this.view(paths[n], n);
  }

  /** The nodes of every entry but the root, bytewise by path (the order sorted once, on first use). */
  private *nodeOrder(): IterableIterator<number> {
    let order = this.sortedNodes;
    if (!order) {
      // Node numbers, not paths, are kept: each later walk is then free of lookups by path.
      const nodes = this.tree.nodes;
      const paths = [...nodes.keys()].sort(compareBytewise);
      order = new Uint32Array(paths.length);
      for (let i = 0; i < paths.length; i++) order[i] = nodes.get(paths[i])!;
      this.sortedNodes = order;
    }
    for (let i = 0; i < order.length; i++) yield order[i];
  }

  static {
    // The node numbering, for modules of this package only (see {@link ViewNodes}).
    nodesOf = (fs) => {
      const tree = fs.tree;
      return {
        limit: tree.paths.length,
        at: (path) => tree.find(path),
        pathOf: (n) => tree.paths[n],
        entryAt: (n) => fs.view(tree.paths[n], n),
        walk: () => fs.nodeOrder(),
      };
    };
  }

  /** The node of directory `dir`, or undefined if it is not one. */
  private dirNode(dir: string): number | undefined {
    const n = this.tree.find(this.key(dir));
    return n !== undefined && this.tree.type(n) === 'dir' ? n : undefined;
  }

  /** The entries directly inside directory `dir` (`.` or `` for the root), sorted bytewise; undefined if it is not a directory. */
  children(dir: string): MergedEntry[] | undefined {
    const d = this.dirNode(dir);
    if (d === undefined) return undefined;
    const t = this.tree;
    return t.kids(d).map((c) => t.paths[c]).sort(compareBytewise).map((p) => this.view(p, t.nodes.get(p)!));
  }

  /** Names (not paths) inside directory `dir` (`.` or `` for the root), sorted bytewise; undefined if it is not a directory. */
  readdir(dir: string): string[] | undefined {
    const d = this.dirNode(dir);
    return d === undefined ? undefined : this.tree.kids(d).map((c) => baseName(this.tree.paths[c])).sort(compareBytewise);
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
