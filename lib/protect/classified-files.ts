/**
 * The classification's files as a compact index beside the merged view: one 32-bit code per
 * view node naming a small shared "kind" (class, reason, region, flags), instead of a map of an
 * absolute path string and an object per file (~140 bytes a file, 140 MB at a million). It is a
 * read-only `Map` of absolute path to {@link ClassifiedFile}, whose objects are made on each read.
 * Once the view is replaced (encryptFS rewrote its layers), {@link ClassifiedFiles.detach} copies
 * what the files need out of it (paths, sizes, digests: ~70 bytes a file) so that the old view, a
 * few hundred bytes an entry, can be collected while the pipeline builds the next one.
 */
import { compareBytewise } from '../fs/entry.js';
import { EnclavifyError } from '../oci/errors.js';
import { viewNodes, type RootFs, type ViewNodes } from '../fs/merged.js';
import type { ClassifiedFile, FileClass } from '../transforms/state.js';

/** What files of one kind share; a symlink copy's kind is its own (its target's size and digest). */
export interface FileKind {
  class: FileClass;
  reason: string;
  region?: string;
  hostPath?: boolean;
  startup?: boolean;
  /** A symlink in an encrypted region kept as an encrypted copy of this target. */
  copy?: { symlinkTo: string; size: number; sha256?: string };
}

/**
 * Classified files of one view, by absolute path, in the view's order (bytewise by path). Reads
 * are as a `Map`'s (exact keys: `/a/b`, not `a/b` or `/a//b`); each `get` and each iteration step
 * makes a new {@link ClassifiedFile} from the view the classification was made on, so a caller
 * that keeps them keeps only those it keeps.
 */
export class ClassifiedFiles implements ReadonlyMap<string, ClassifiedFile> {
  /** Per view node: 1 + the index of its kind, 0 when not classified. */
  private codes: Uint32Array;
  private readonly kinds: FileKind[] = [];
  private readonly kindIds = new Map<string, number>();
  private count = 0;
  private fs: ViewNodes | undefined;
  private view: RootFs | undefined;
  /** After {@link detach}: the files in path order, without the view. */
  private own: Detached | undefined;

  constructor(view: RootFs) {
    this.view = view;
    this.fs = viewNodes(view);
    this.codes = new Uint32Array(this.fs.limit);
  }

  /** Classifies the file at view node `n` (from {@link viewNodes}); once per node. */
  add(n: number, kind: FileKind): void {
    if (this.own) throw new EnclavifyError('ENCRYPT_INTERNAL', 'ClassifiedFiles.add after detach');
    if (this.codes[n] === 0) this.count++;
    let id: number | undefined;
    if (kind.copy) id = this.kinds.push(kind) - 1;
    else {
      const key = `${kind.class}\0${kind.reason}\0${kind.region ?? ''}\0${kind.hostPath ? 1 : 0}${kind.startup ? 1 : 0}`;
      id = this.kindIds.get(key);
      if (id === undefined) {
        id = this.kinds.push(kind) - 1;
        this.kindIds.set(key, id);
      }
    }
    this.codes[n] = id + 1;
  }

  get size(): number {
    return this.count;
  }

  get(path: string): ClassifiedFile | undefined {
    if (this.own) {
      const i = this.own.find(path);
      return i === undefined ? undefined : this.makeOwn(i);
    }
    const n = this.node(path);
    return n === undefined ? undefined : this.make(n);
  }

  has(path: string): boolean {
    return this.own ? this.own.find(path) !== undefined : this.node(path) !== undefined;
  }

  *entries(): MapIterator<[string, ClassifiedFile]> {
    for (const f of this.values()) yield [f.path, f];
  }

  *keys(): MapIterator<string> {
    if (this.own) {
      for (let i = 0; i < this.count; i++) yield '/' + this.own.pathAt(i);
      return;
    }
    for (const n of this.classified()) yield '/' + this.fs!.pathOf(n);
  }

  *values(): MapIterator<ClassifiedFile> {
    if (this.own) {
      for (let i = 0; i < this.count; i++) yield this.makeOwn(i);
      return;
    }
    for (const n of this.classified()) yield this.make(n);
  }

  [Symbol.iterator](): MapIterator<[string, ClassifiedFile]> {
    return this.entries();
  }

  forEach(fn: (value: ClassifiedFile, key: string, map: ReadonlyMap<string, ClassifiedFile>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  get [Symbol.toStringTag](): string {
    return 'ClassifiedFiles';
  }

  private node(path: string): number | undefined {
    if (typeof path !== 'string' || path.length < 2 || path[0] !== '/') return undefined;
    const n = this.fs!.at(path.slice(1));
    return n !== undefined && n < this.codes.length && this.codes[n] !== 0 ? n : undefined;
  }

  private *classified(): Generator<number> {
    const codes = this.codes;
    for (const n of this.fs!.walk()) if (codes[n] !== 0) yield n;
  }

  /**
   * For a walk of the very view this classifies (see {@link classifies}): the file at node `n`,
   * whose entry `e` the walk already made, without a lookup by path; undefined if not classified.
   */
  fileAt(n: number, e: { path: string; size: number; sha256?: string }): ClassifiedFile | undefined {
    if (this.own) throw new EnclavifyError('ENCRYPT_INTERNAL', 'ClassifiedFiles.fileAt after detach');
    return n < this.codes.length && this.codes[n] !== 0 ? this.make(n, e) : undefined;
  }

  /** Whether {@link fileAt}'s node numbers are those of `view`. */
  classifies(view: RootFs): boolean {
    return this.view !== undefined && view === this.view;
  }

  /**
   * Copies each classified file's path, size and digest out of the view and lets go of the view
   * (reads then find a path by binary search over the sorted paths). Idempotent; the answers of
   * every read are the same before and after.
   */
  detach(): void {
    if (this.own || !this.fs) return;
    const fs = this.fs;
    let bytes = 0;
    for (const n of this.classified()) bytes += Buffer.byteLength(fs.pathOf(n));
    const d = new Detached(this.count, bytes);
    let i = 0;
    for (const n of this.classified()) {
      const k = this.kinds[this.codes[n] - 1];
      const e = k.copy ? undefined : fs.entryAt(n);
      d.set(i++, fs.pathOf(n), this.codes[n], e?.size ?? 0, e?.sha256);
    }
    this.own = d;
    this.codes = new Uint32Array(0);
    this.fs = undefined;
    this.view = undefined;
  }

  /** The file at node `n`: one literal of the common shape (see classify.ts), then the rare fields. */
  private make(n: number, e?: { path: string; size: number; sha256?: string }): ClassifiedFile {
    const k = this.kinds[this.codes[n] - 1];
    const path = '/' + (e?.path ?? this.fs!.pathOf(n));
    let size: number, sha256: string | undefined;
    if (k.copy) ({ size, sha256 } = k.copy);
    else ({ size, sha256 } = e ?? this.fs!.entryAt(n));
    return this.shape(k, path, size, sha256);
  }

  /** The file at index `i` of the detached list. */
  private makeOwn(i: number): ClassifiedFile {
    const d = this.own!;
    const k = this.kinds[d.codes[i] - 1];
    return k.copy ? this.shape(k, '/' + d.pathAt(i), k.copy.size, k.copy.sha256) : this.shape(k, '/' + d.pathAt(i), d.sizes[i], d.shaAt(i));
  }

  private shape(k: FileKind, path: string, size: number, sha256: string | undefined): ClassifiedFile {
    const f: ClassifiedFile = sha256 !== undefined ? { path, class: k.class, reason: k.reason, size, sha256 } : { path, class: k.class, reason: k.reason, size };
    if (k.region !== undefined) f.region = k.region;
    if (k.hostPath) f.hostPath = true;
    if (k.startup) f.startup = true;
    if (k.copy) f.symlinkTo = k.copy.symlinkTo;
    return f;
  }
}

/**
 * The classified files of a detached {@link ClassifiedFiles}, in the view's order (bytewise by
 * path): their relative paths as UTF-8 in one buffer, sizes, kind codes and SHA-256 digests.
 */
class Detached {
  readonly offsets: Uint32Array;
  readonly paths: Buffer;
  readonly sizes: Float64Array;
  readonly codes: Uint32Array;
  readonly sha: Buffer;
  /** 1 where the file has a digest. */
  readonly hasSha: Uint8Array;
  private end = 0;

  constructor(count: number, pathBytes: number) {
    this.offsets = new Uint32Array(count + 1);
    this.paths = Buffer.allocUnsafe(pathBytes);
    this.sizes = new Float64Array(count);
    this.codes = new Uint32Array(count);
    this.sha = Buffer.alloc(count * 32);
    this.hasSha = new Uint8Array(count);
  }

  set(i: number, path: string, code: number, size: number, sha256: string | undefined): void {
    this.end += this.paths.write(path, this.end, 'utf8');
    this.offsets[i + 1] = this.end;
    this.codes[i] = code;
    this.sizes[i] = size;
    if (sha256 !== undefined) {
      this.sha.write(sha256, i * 32, 'hex');
      this.hasSha[i] = 1;
    }
  }

  pathAt(i: number): string {
    return this.paths.toString('utf8', this.offsets[i], this.offsets[i + 1]);
  }

  shaAt(i: number): string | undefined {
    return this.hasSha[i] ? this.sha.toString('hex', i * 32, i * 32 + 32) : undefined;
  }

  /** The index of the file at absolute path `path` (exact key, as a Map's), or undefined. */
  find(path: string): number | undefined {
    if (typeof path !== 'string' || path.length < 2 || path[0] !== '/') return undefined;
    const key = path.slice(1);
    let lo = 0;
    let hi = this.codes.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytewise(this.pathAt(mid), key);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }
}
