/**
 * A cache of per-layer scan results, so that a reconversion whose base layers are unchanged reads
 * none of them again (issue 11).
 *
 * Two kinds of entries, in a directory of the user's (default `$XDG_CACHE_HOME/enclavify`):
 * - `scan/KEY.scan`: a layer's {@link LayerIndex} entries (every entry's metadata and the
 *   SHA-256 of every regular file), keyed by the layer's compressed digest and diff_id, the cache
 *   format and the tool version;
 * - `files/SHA256.file`: the content of a small file read from a cached layer (startup
 *   executables, libraries, loader configuration), content-addressed: checked against its name.
 *
 * Why it can be trusted at all: a cached hash that is wrong would break the image at run time
 * (or, worse, make the runtime accept a file it should refuse). So
 * - a scan entry is only valid for the pair (digest, diff_id) it was made from: the run that made it
 *   decompressed that blob and checked that its bytes hash to that diff_id. Its header names both
 *   (an entry copied under another key is foreign), and a SHA-256 of the body catches corruption
 *   and truncation; a wrong entry is ignored and removed, never used;
 * - a file entry must hash to the SHA-256 the (verified) scan recorded for the file;
 * - the directory must belong to the user and not be writable by group or others, else the cache
 *   is not used at all (a warning says so): whoever can write it could plant entries whose body
 *   checks out but whose hashes lie.
 * The blob of a cached layer is still verified when the image is written (its bytes are copied
 * through the digest check), so a blob that changed under its digest is still caught.
 *
 * Entries are written to a temporary name and renamed (concurrent conversions see an old entry or
 * a complete new one; not synced: a torn entry after a crash fails its digest); the directory is bounded ({@link DEFAULT_CACHE_MAX_BYTES}, least recently
 * used entries go first: a hit touches the entry's mtime).
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { FsEntry } from '../fs/entry.js';
import { compactEntry, type LayerEntry, type Whiteout } from '../fs/merged.js';
import { claimOwnership, isTmpFileName, sweepDir, tmpFileName, tmpOwnerSocket } from '../oci/owner.js';
import { EnclavifyError } from '../oci/errors.js';
import { CREATE_NOFOLLOW } from './no-follow.js';

/** The default size bound of a cache directory: 1 GiB. */
export const DEFAULT_CACHE_MAX_BYTES = 1 << 30;
/** Files up to this size read from a cached layer are kept too (startup executables, libraries). */
export const CACHED_FILE_MAX_BYTES = 32 << 20;
/** Bumped whenever what an entry holds or how it is encoded changes. */
export const SCAN_CACHE_FORMAT = 2;
const MAGIC = 'enclavify-cache';

let toolVersion: string | undefined;
/** The package version: part of every key, so that another version of enclavify never reads this one's entries. */
function tool(): string {
  if (toolVersion === undefined) {
    try {
      toolVersion = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
    } catch {
      toolVersion = 'unknown';
    }
  }
  return toolVersion;
}

/** The default cache directory: `$XDG_CACHE_HOME/enclavify`, else `~/.cache/enclavify`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec: a relative value is invalid and ignored.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'enclavify');
}

/** What identifies a layer's bytes: its compressed digest and the digest of its uncompressed tar. */
export interface LayerKey {
  digest: string;
  diffId: string;
}

/** Options of {@link ScanCache.open}. */
export interface ScanCacheOptions {
  /** The most bytes the directory's entries may take (default {@link DEFAULT_CACHE_MAX_BYTES}); least recently used entries are removed beyond it. */
  maxBytes?: number | undefined;
  /** Told why the cache is not used, or that an entry was ignored (e.g. printed as a warning). */
  onWarning?: ((message: string) => void) | undefined;
  /**
   * Read the cache but change nothing (a dry run): no directory is created, nothing is stored,
   * bad entries are ignored but not removed, hits do not touch the entries' mtimes.
   */
  readOnly?: boolean | undefined;
}

/** Counts of what a {@link ScanCache} did (for reports and tests). */
export interface ScanCacheStats {
  scanHits: number;
  scanMisses: number;
  fileHits: number;
  fileMisses: number;
  /** Entries found corrupt, truncated, foreign or of another version: ignored and removed. */
  ignored: number;
  writes: number;
  evicted: number;
}

interface Header {
  magic: string;
  format: number;
  tool: string;
  kind: 'scan' | 'file';
  digest?: string;
  diffId?: string;
  sha256?: string;
  bodyBytes: number;
  bodySha256: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * A cache directory of layer scans and small file contents (see the module comment for what is
 * stored and why it can be trusted). Open one with {@link ScanCache.open}; pass it as
 * `PipelineOptions.cache` or `LayersRootFsOptions.cache`. Safe to share between concurrent
 * processes.
 */
export class ScanCache {
  readonly stats: ScanCacheStats = { scanHits: 0, scanMisses: 0, fileHits: 0, fileMisses: 0, ignored: 0, writes: 0, evicted: 0 };
  private pruning: Promise<void> | undefined;
  private prunePending = false;

  private constructor(
    /** The cache directory (absolute). */
    readonly dir: string,
    /** The size bound. */
    readonly maxBytes: number,
    private readonly onWarning: ((message: string) => void) | undefined,
    /** See {@link ScanCacheOptions.readOnly}. */
    readonly readOnly = false,
  ) {}

  /**
   * Opens (creating it, mode 0700, when missing) the cache directory `dir`. Resolves to undefined,
   * after a warning, when the directory cannot be used safely: not a directory, not owned by this
   * user, or writable by group or others (someone else could plant wrong hashes in it).
   */
  static async open(dir: string, options: ScanCacheOptions = {}): Promise<ScanCache | undefined> {
    const warn = options.onWarning;
    const maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new EnclavifyError('BAD_ARGUMENT', `ScanCache: maxBytes must be a non-negative integer, not ${String(maxBytes)}`);
    const abs = path.resolve(dir);
    const readOnly = options.readOnly === true;
    try {
      if (readOnly) {
        const st = await stat(abs).catch(() => undefined);
        if (!st) return undefined; // nothing cached, and nothing to create
      } else await mkdir(abs, { recursive: true, mode: 0o700 });
      const why = unsafe(await stat(abs));
      if (why) {
        warn?.(`cache directory ${abs} ${why}; not using the cache (someone who can write it could plant wrong file hashes). Fix with: chmod go-w ${abs}, or pass --cache-dir / --no-cache`);
        return undefined;
      }
      for (const sub of ['scan', 'files']) {
        const p = path.join(abs, sub);
        if (!readOnly) {
          await mkdir(p, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'EEXIST') throw e;
          });
        }
        const st = await lstat(p).catch((e: NodeJS.ErrnoException) => {
          if (readOnly && e.code === 'ENOENT') return undefined;
          throw e;
        });
        if (!st) continue; // read-only and never written: every lookup misses
        const bad = st.isDirectory() ? unsafe(st) : 'is not a directory';
        if (bad) {
          warn?.(`cache directory ${p} ${bad}; not using the cache`);
          return undefined;
        }
      }
    } catch (e) {
      warn?.(`cache directory ${abs} cannot be used (${(e as Error).message}); converting without the cache`);
      return undefined;
    }
    return new ScanCache(abs, maxBytes, warn, readOnly);
  }

  private scanFile(key: LayerKey): string {
    const id = createHash('sha256').update(`${MAGIC}\0${SCAN_CACHE_FORMAT}\0${tool()}\0${key.digest}\0${key.diffId}`).digest('hex');
    return path.join(this.dir, 'scan', `${id}.scan`);
  }

  private contentFile(sha256: string): string {
    return path.join(this.dir, 'files', `${sha256}.file`);
  }

  /**
   * The cached scan of the layer `key` (fresh objects, safe to keep), or undefined. An entry that
   * does not check out (corrupt, truncated, foreign, other version) is removed and reported once.
   */
  async loadScan(key: LayerKey): Promise<LayerEntry[] | undefined> {
    const file = this.scanFile(key);
    const entries = await this.readScanEntry(file, (h) => h.kind === 'scan' && h.digest === key.digest && h.diffId === key.diffId);
    if (!entries) {
      this.stats.scanMisses++;
      return undefined;
    }
    this.stats.scanHits++;
    return entries;
  }

  /** Stores the scan of layer `key`. Best effort: a failure (full disk, ...) is a warning, never an error. */
  async saveScan(key: LayerKey, entries: readonly LayerEntry[]): Promise<void> {
    let body: Buffer[];
    try {
      body = encodeEntries(entries);
    } catch {
      return; // an entry shape this format cannot hold: the layer is simply not cached
    }
    await this.writeEntry(this.scanFile(key), { kind: 'scan', digest: key.digest, diffId: key.diffId }, body);
  }

  /** The cached content whose SHA-256 is `sha256` (hex), checked against it; or undefined. */
  async loadFile(sha256: string): Promise<Buffer | undefined> {
    if (!HEX64.test(sha256)) return undefined;
    const body = await this.readEntry(this.contentFile(sha256), (h) => h.kind === 'file' && h.sha256 === sha256 && h.bodySha256 === sha256);
    if (body) this.stats.fileHits++;
    else this.stats.fileMisses++;
    return body;
  }

  /** Stores a file's content under its SHA-256 (checked here: a wrong one is not stored). Best effort. */
  async saveFile(sha256: string, data: Uint8Array): Promise<void> {
    if (!HEX64.test(sha256) || data.length > CACHED_FILE_MAX_BYTES) return;
    if (createHash('sha256').update(data).digest('hex') !== sha256) return;
    await this.writeEntry(this.contentFile(sha256), { kind: 'file', sha256 }, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** The header of an entry file whose first bytes are `raw`, when it is ours and matches; else undefined (the entry rejected). */
  private async header(file: string, raw: Buffer, matches: (h: Header) => boolean): Promise<{ h: Header; nl: number } | undefined> {
    const nl = raw.indexOf(0x0a);
    let h: Header;
    try {
      if (nl < 0 || nl > 4096) throw new EnclavifyError('BAD_CACHE_ENTRY', 'no header');
      h = JSON.parse(raw.subarray(0, nl).toString('utf8')) as Header;
    } catch {
      await this.reject(file, 'it has no valid header');
      return undefined;
    }
    if (h?.magic !== MAGIC || h.format !== SCAN_CACHE_FORMAT || h.tool !== tool()) {
      await this.reject(file, `it is of another format or version (${String(h?.magic)} ${String(h?.format)}, enclavify ${String(h?.tool)})`);
      return undefined;
    }
    if (!matches(h)) {
      await this.reject(file, 'it belongs to another key (a foreign entry)');
      return undefined;
    }
    return { h, nl };
  }

  /**
   * Reads a scan entry as a stream: rows are decoded as the body goes by (a million entries'
   * body, ~170 MB, is never held), and kept only when the body's size and digest then check out.
   */
  private async readScanEntry(file: string, matches: (h: Header) => boolean): Promise<LayerEntry[] | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch {
      return undefined; // absent (or removed by a concurrent eviction): a miss
    }
    let bad: string | undefined;
    const out: LayerEntry[] = [];
    try {
      const first = Buffer.alloc(4097);
      const { bytesRead } = await fh.read(first, 0, first.length, 0);
      const head = await this.header(file, first.subarray(0, bytesRead), matches);
      if (!head) return undefined;
      const { h, nl } = head;
      const hash = createHash('sha256');
      let bytes = 0;
      let rest: Buffer = Buffer.alloc(0);
      let broken: unknown;
      for await (const c of fh.createReadStream({ start: nl + 1, highWaterMark: 1 << 20, autoClose: false }) as AsyncIterable<Buffer>) {
        hash.update(c);
        bytes += c.length;
        if (broken !== undefined) continue;
        const buf = rest.length ? Buffer.concat([rest, c]) : c;
        let at = 0;
        try {
          for (let e = buf.indexOf(0x0a, at); e >= 0; e = buf.indexOf(0x0a, at)) {
            out.push(decodeRow(JSON.parse(buf.toString('utf8', at, e)) as unknown));
            at = e + 1;
          }
        } catch (e) {
          broken = e;
        }
        rest = Buffer.from(buf.subarray(at)); // a copy: the chunk itself is not kept
        // No row is this long (a corrupt entry would otherwise be joined chunk by chunk).
        if (rest.length > MAX_ROW_BYTES) broken = new EnclavifyError('BAD_CACHE_ENTRY', `a row longer than ${MAX_ROW_BYTES} bytes`);
      }
      if (bytes !== h.bodyBytes || hash.digest('hex') !== h.bodySha256) bad = bytes !== h.bodyBytes ? `it is truncated or padded (${bytes} bytes, header says ${h.bodyBytes})` : 'its body does not match its digest (corrupt)';
      else if (broken !== undefined || rest.length) bad = `its body does not decode (${broken instanceof Error ? broken.message : 'the last row is not terminated'})`;
    } finally {
      await fh.close().catch(() => undefined);
    }
    if (bad) {
      await this.reject(file, bad);
      return undefined;
    }
    await this.touch(file);
    return out;
  }

  /** Least recently used eviction goes by mtime: a hit makes the entry young again. */
  private async touch(file: string): Promise<void> {
    if (this.readOnly) return;
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
  }

  /** Reads an entry file: the body when the header and the body's digest check out, else undefined (removing a bad entry). */
  private async readEntry(file: string, matches: (h: Header) => boolean): Promise<Buffer | undefined> {
    let raw: Buffer;
    try {
      raw = await readFile(file, { flag: 'r' });
    } catch {
      return undefined; // absent (or removed by a concurrent eviction): a miss
    }
    const head = await this.header(file, raw, matches);
    if (!head) return undefined;
    const { h, nl } = head;
    const body = raw.subarray(nl + 1);
    if (body.length !== h.bodyBytes || createHash('sha256').update(body).digest('hex') !== h.bodySha256) {
      await this.reject(file, body.length !== h.bodyBytes ? `it is truncated or padded (${body.length} bytes, header says ${h.bodyBytes})` : 'its body does not match its digest (corrupt)');
      return undefined;
    }
    await this.touch(file);
    return body;
  }

  private async reject(file: string, why: string): Promise<void> {
    this.stats.ignored++;
    if (this.readOnly) {
      this.onWarning?.(`cache entry ${file} ignored: ${why}`);
      return;
    }
    this.onWarning?.(`cache entry ${file} ignored and removed: ${why}`);
    await rm(file, { force: true }).catch(() => undefined);
  }

  private async writeEntry(file: string, fields: Pick<Header, 'kind' | 'digest' | 'diffId' | 'sha256'>, body: Buffer | Buffer[]): Promise<void> {
    if (this.readOnly) return;
    const pieces = Array.isArray(body) ? body : [body];
    const hash = createHash('sha256');
    let bytes = 0;
    for (const p of pieces) {
      hash.update(p);
      bytes += p.length;
    }
    const h: Header = { magic: MAGIC, format: SCAN_CACHE_FORMAT, tool: tool(), ...fields, bodyBytes: bytes, bodySha256: hash.digest('hex') };
    try {
      await writeEntryFile(file, [Buffer.from(JSON.stringify(h) + '\n'), ...pieces]);
      this.stats.writes++;
    } catch (e) {
      this.onWarning?.(`cache: could not write ${file} (${(e as Error).message}); continuing without it`);
      return;
    }
    this.schedulePrune();
  }

  /** One prune at a time; writes during a prune ask for one more afterwards. */
  private schedulePrune(): void {
    if (this.pruning) {
      this.prunePending = true;
      return;
    }
    this.pruning = this.prune().finally(() => {
      this.pruning = undefined;
      if (this.prunePending) {
        this.prunePending = false;
        this.schedulePrune();
      }
    });
  }

  /** Waits for pending evictions (call before reading {@link stats} or ending a test). */
  async settle(): Promise<void> {
    while (this.pruning) await this.pruning;
  }

  /**
   * Removes least recently used entries (oldest mtime first) until the entries take at most
   * {@link maxBytes}, and temporaries that killed writers left. Best effort.
   */
  async prune(): Promise<void> {
    if (this.readOnly) return;
    const all: Array<{ file: string; bytes: number; mtime: number }> = [];
    for (const sub of ['scan', 'files']) {
      const d = path.join(this.dir, sub);
      await sweepDir(d, { isTemp: isTmpFileName, socketOf: tmpOwnerSocket }).catch(() => undefined);
      for (const n of await readdir(d).catch(() => [] as string[])) {
        if (!n.endsWith('.scan') && !n.endsWith('.file')) continue;
        const st = await lstat(path.join(d, n)).catch(() => undefined);
        if (st?.isFile()) all.push({ file: path.join(d, n), bytes: st.size, mtime: st.mtimeMs });
      }
    }
    let total = all.reduce((a, e) => a + e.bytes, 0);
    all.sort((a, b) => a.mtime - b.mtime);
    for (const e of all) {
      if (total <= this.maxBytes) break;
      await rm(e.file, { force: true }).catch(() => undefined);
      total -= e.bytes;
      this.stats.evicted++;
    }
  }
}

/**
 * Writes an entry: a temporary name (created exclusively, mode 0600, never through a symlink, with
 * an owner socket so that a sweep removes it if this process dies), then a rename over `file`:
 * readers see the old entry or the complete new one. No fsync, unlike `writeFileAtomic`: after a
 * crash a torn entry fails its body digest and is ignored, so durability would only cost time.
 */
async function writeEntryFile(file: string, data: Buffer[]): Promise<void> {
  const tmp = tmpFileName(file, true);
  const owner = await claimOwnership(tmpOwnerSocket(tmp));
  let created = false;
  try {
    const fh = await open(tmp, CREATE_NOFOLLOW, 0o600);
    created = true;
    try {
      await fh.writeFile(data as unknown as Uint8Array); // every piece, in order (FileHandle.writeFile takes an iterable)
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    if (created) await unlink(tmp).catch(() => undefined);
    throw e;
  } finally {
    await owner.release();
  }
}

/** Why a directory cannot hold a trusted cache, or undefined when it can. */
function unsafe(st: { uid: number; mode: number; isDirectory(): boolean }): string | undefined {
  if (!st.isDirectory()) return 'is not a directory';
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `belongs to uid ${st.uid}, not to this user (uid ${uid})`;
  if (st.mode & 0o022) return `is writable by ${st.mode & 0o020 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

// The scan body: one JSON array per entry, fields by position (short: a base layer has tens of
// thousands of entries). Optional fields are null when absent; pax values are base64.
type Row = [
  path: string, type: LayerEntry['type'], mode: number, uid: number, gid: number, mtime: number, size: number,
  sha256: string | null, uname: string | null, gname: string | null, linkname: string | null,
  devmajor: number | null, devminor: number | null, pax: Record<string, string> | null, whiteout: Whiteout | null,
  offset: number | null,
];
const FIELDS = new Set(['path', 'type', 'mode', 'uid', 'gid', 'mtime', 'size', 'sha256', 'uname', 'gname', 'linkname', 'devmajor', 'devminor', 'pax', 'whiteout', 'offset']);

/** The longest row a scan entry may hold (a row with large PAX records stays far below). */
const MAX_ROW_BYTES = 16 << 20;

/** Rows encoded per piece of the body. */
const ROWS_PER_PIECE = 4096;

/**
 * The body in pieces: one row per line (format 2), so that neither writing nor reading a million
 * entries makes one string of them all or one array of every row.
 */
function encodeEntries(entries: readonly LayerEntry[]): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < entries.length; i += ROWS_PER_PIECE) {
    const lines: string[] = [];
    for (const e of entries.slice(i, i + ROWS_PER_PIECE)) {
      for (const k of Object.keys(e)) if (!FIELDS.has(k)) throw new EnclavifyError('BAD_CACHE_ENTRY', `unknown field ${k}`);
      let pax: Record<string, string> | null = null;
      if (e.pax) {
        pax = {};
        for (const [k, v] of Object.entries(e.pax)) pax[k] = v.toString('base64');
      }
      const row: Row = [e.path, e.type, e.mode, e.uid, e.gid, e.mtime, e.size, e.sha256 ?? null, e.uname ?? null, e.gname ?? null, e.linkname ?? null, e.devmajor ?? null, e.devminor ?? null, pax, e.whiteout ?? null, e.offset ?? null];
      lines.push(JSON.stringify(row) + '\n');
    }
    pieces.push(Buffer.from(lines.join('')));
  }
  return pieces;
}

const TYPES = new Set(['file', 'dir', 'symlink', 'hardlink', 'chardev', 'blockdev', 'fifo']);

/** One row of the body (format 2: one per line), as the tar reader and the scan would make its entry. */
function decodeRow(r: unknown): LayerEntry {
  {
    if (!Array.isArray(r) || r.length !== 16) throw new EnclavifyError('BAD_CACHE_ENTRY', 'bad row');
    const [p, type, mode, uid, gid, mtime, size, sha256, uname, gname, linkname, devmajor, devminor, pax, whiteout, offset] = r as Row;
    if (typeof p !== 'string' || !TYPES.has(type) || ![mode, uid, gid, mtime, size].every((n) => typeof n === 'number')) throw new EnclavifyError('BAD_CACHE_ENTRY', 'bad row');
    // Built as the tar reader would, then compacted as the scan does: the same few object shapes.
    const t: FsEntry = { path: p, type, mode, uid, gid, mtime, size };
    if (uname !== null) t.uname = uname;
    if (gname !== null) t.gname = gname;
    if (linkname !== null) t.linkname = linkname;
    if (devmajor !== null) t.devmajor = devmajor;
    if (devminor !== null) t.devminor = devminor;
    if (pax !== null) {
      t.pax = {};
      for (const [k, v] of Object.entries(pax)) t.pax[k] = Buffer.from(v, 'base64');
    }
    const e = compactEntry(t, sha256 ?? undefined, offset ?? undefined);
    if (whiteout !== null) e.whiteout = whiteout;
    return e;
  }
}
