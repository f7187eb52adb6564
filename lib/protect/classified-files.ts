/**
 * The classification's files as a compact index beside the merged view: one 32-bit code per
 * view node naming a small shared "kind" (class, reason, region, flags), instead of a map of an
 * absolute path string and an object per file (~140 bytes a file, 140 MB at a million). It is a
 * read-only `Map` of absolute path to {@link ClassifiedFile}, whose objects are made on each read.
 */
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
  private readonly codes: Uint32Array;
  private readonly kinds: FileKind[] = [];
  private readonly kindIds = new Map<string, number>();
  private count = 0;
  private readonly fs: ViewNodes;

  constructor(private readonly view: RootFs) {
    this.fs = viewNodes(view);
    this.codes = new Uint32Array(this.fs.limit);
  }

  /** Classifies the file at view node `n` (from {@link viewNodes}); once per node. */
  add(n: number, kind: FileKind): void {
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
    const n = this.node(path);
    return n === undefined ? undefined : this.make(n);
  }

  has(path: string): boolean {
    return this.node(path) !== undefined;
  }

  *entries(): MapIterator<[string, ClassifiedFile]> {
    for (const n of this.classified()) {
      const f = this.make(n);
      yield [f.path, f];
    }
  }

  *keys(): MapIterator<string> {
    for (const n of this.classified()) yield '/' + this.fs.pathOf(n);
  }

  *values(): MapIterator<ClassifiedFile> {
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
    const n = this.fs.at(path.slice(1));
    return n !== undefined && n < this.codes.length && this.codes[n] !== 0 ? n : undefined;
  }

  private *classified(): Generator<number> {
    const codes = this.codes;
    for (const n of this.fs.walk()) if (codes[n] !== 0) yield n;
  }

  /**
   * For a walk of the very view this classifies (see {@link classifies}): the file at node `n`,
   * whose entry `e` the walk already made, without a lookup by path; undefined if not classified.
   */
  fileAt(n: number, e: { path: string; size: number; sha256?: string }): ClassifiedFile | undefined {
    return n < this.codes.length && this.codes[n] !== 0 ? this.make(n, e) : undefined;
  }

  /** Whether {@link fileAt}'s node numbers are those of `view`. */
  classifies(view: RootFs): boolean {
    return view === this.view;
  }

  /** The file at node `n`: one literal of the common shape (see classify.ts), then the rare fields. */
  private make(n: number, e?: { path: string; size: number; sha256?: string }): ClassifiedFile {
    const k = this.kinds[this.codes[n] - 1];
    const path = '/' + (e?.path ?? this.fs.pathOf(n));
    let size: number, sha256: string | undefined;
    if (k.copy) ({ size, sha256 } = k.copy);
    else ({ size, sha256 } = e ?? this.fs.entryAt(n));
    const f: ClassifiedFile = sha256 !== undefined ? { path, class: k.class, reason: k.reason, size, sha256 } : { path, class: k.class, reason: k.reason, size };
    if (k.region !== undefined) f.region = k.region;
    if (k.hostPath) f.hostPath = true;
    if (k.startup) f.startup = true;
    if (k.copy) f.symlinkTo = k.copy.symlinkTo;
    return f;
  }
}
