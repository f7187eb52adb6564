/**
 * Streaming writer of POSIX (pax/ustar) tar archives with deterministic bytes: the same entries
 * and contents always give the same archive, so a rebuilt layer has a stable diff_id.
 */
import { Readable } from 'node:stream';
import { EnclavifyError, type ErrorCode } from '../oci/errors.js';
import { normalizePath, ROOT, type EntryType, type FsEntry } from './entry.js';
import { isEmptyTarContent } from './tar-read.js';

/** One member to write: its metadata and, for regular files, exactly `entry.size` bytes. */
export interface TarWriteItem {
  entry: FsEntry;
  /** Regular-file content; chunks of 8 KiB or more are passed on as given (zero-copy), so don't reuse their buffers (shorter ones are copied). */
  content?: AsyncIterable<Uint8Array> | Uint8Array;
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(2 * BLOCK);
const TYPE_FLAG: Record<EntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6',
};
const MAX_OCTAL_7 = 0o7777777; // 8-byte fields: 7 digits + NUL
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields: 11 digits + NUL (size < 8 GiB)
/** PAX keys computed from FsEntry fields; the same keys in `entry.pax` are ignored. */
const COMPUTED = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime']);

function bad(code: ErrorCode, message: string): EnclavifyError {
  return new EnclavifyError(code, message);
}

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c >= 0x80) return false;
  return true;
}

/** The longest prefix of `b` of at most `max` bytes that does not cut a UTF-8 sequence. */
function truncateUtf8(b: Buffer, max: number): Buffer {
  if (b.length <= max) return b;
  let n = max;
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
  return b.subarray(0, n);
}

/** `v` as len-1 zero-padded octal digits and a NUL (v fits: callers check the range). */
function octal(h: Buffer, off: number, len: number, v: number): void {
  let x = v;
  for (let i = off + len - 2; i >= off; i--) {
    h[i] = 0x30 + (x % 8);
    x = Math.floor(x / 8);
  }
  h[off + len - 1] = 0;
}

/** GNU base-256 for values that do not fit the octal field (device numbers). */
function base256(h: Buffer, off: number, len: number, v: number): void {
  let x = v;
  for (let i = off + len - 1; i > off; i--) {
    h[i] = x % 256;
    x = Math.floor(x / 256);
  }
  h[off] = 0x80;
}

/** Encodes PAX records `LEN KEY=VALUE\n`, sorted by key so the bytes are deterministic. */
export function encodePaxRecords(records: Map<string, Buffer>): Buffer {
  const keys = [...records.keys()].sort();
  const parts: Buffer[] = [];
  for (const k of keys) {
    const kb = Buffer.from(k, 'utf8');
    if (!k || k.includes('=') || k.includes('\0')) throw bad('TAR_BAD_ENTRY', `PAX record key ${JSON.stringify(k)} is not valid`);
    const v = records.get(k)!;
    const base = kb.length + v.length + 3; // ' ', '=', '\n'
    let len = base + String(base).length;
    if (String(len).length !== String(base).length) len = base + String(len).length;
    parts.push(Buffer.from(`${len} `, 'latin1'), kb, Buffer.from('='), v, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

function formatMtime(t: number): string {
  if (Number.isInteger(t)) return String(t);
  const s = String(t);
  return /e/i.test(s) ? t.toFixed(9).replace(/0+$/, '') : s;
}

function ustarHeader(o: {
  name: Buffer; mode: number; uid: number; gid: number; size: number; mtime: number; flag: string;
  linkname?: Buffer | undefined; uname?: Buffer | undefined; gname?: Buffer | undefined; devmajor?: number | undefined; devminor?: number | undefined;
}): Buffer {
  const h = Buffer.allocUnsafe(BLOCK).fill(0); // from the pool: a fresh zeroed ArrayBuffer per header costs more
  o.name.copy(h, 0, 0, 100);
  octal(h, 100, 8, o.mode);
  octal(h, 108, 8, o.uid);
  octal(h, 116, 8, o.gid);
  octal(h, 124, 12, o.size);
  octal(h, 136, 12, o.mtime);
  h.write(o.flag, 156, 1, 'latin1');
  o.linkname?.copy(h, 157, 0, 100);
  h.write('ustar\x0000', 257, 8, 'latin1');
  o.uname?.copy(h, 265, 0, 32);
  o.gname?.copy(h, 297, 0, 32);
  for (const [off, v] of [[329, o.devmajor], [337, o.devminor]] as const) {
    if (v === undefined) continue;
    if (v <= MAX_OCTAL_7) octal(h, off, 8, v);
    else base256(h, off, 8, v);
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  octal(h, 148, 7, sum); // six digits and a NUL, then the space left by the fill
  return h;
}

function checkUint(v: number, field: string, path: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw bad('TAR_BAD_ENTRY', `tar entry ${JSON.stringify(path)}: ${field} ${v} is not a non-negative integer`);
}

/**
 * The header blocks of one entry: a PAX extended header when some field does not fit ustar
 * (names over 100 bytes or non-ASCII, long or non-ASCII link targets and user/group names, sizes
 * of 8 GiB or more, ids over 2097151, negative, huge or fractional mtimes, or records kept in
 * `entry.pax` such as xattrs), then the ustar header.
 */
export function encodeHeader(entry: FsEntry): Buffer {
  const { path, type } = entry;
  const flag = TYPE_FLAG[type];
  if (!flag) throw bad('TAR_BAD_ENTRY', `tar entry ${JSON.stringify(path)}: unknown type ${JSON.stringify(type)}`);
  const norm = normalizePath(path);
  if (norm instanceof Error || (norm ?? ROOT) !== path || path.includes('\0')) {
    throw bad('TAR_BAD_ENTRY', `tar entry ${JSON.stringify(path)}: path is not normalised (relative, no "." or ".." components, no trailing "/")`);
  }
  if (path === ROOT && type !== 'dir') throw bad('TAR_BAD_ENTRY', `tar entry ".": the root must be a directory`);
  const mode = entry.mode & 0o7777;
  checkUint(entry.uid, 'uid', path);
  checkUint(entry.gid, 'gid', path);
  const size = type === 'file' ? entry.size : 0;
  checkUint(size, 'size', path);
  if (!Number.isFinite(entry.mtime)) throw bad('TAR_BAD_ENTRY', `tar entry ${JSON.stringify(path)}: mtime ${entry.mtime} is not a number`);

  const pax = new Map<string, Buffer>();
  if (entry.pax) for (const [k, v] of Object.entries(entry.pax)) if (!COMPUTED.has(k)) pax.set(k, Buffer.from(v));

  const nameStr = path === ROOT ? './' : type === 'dir' ? path + '/' : path;
  const name = Buffer.from(nameStr, 'utf8');
  if (name.length > 100 || !isAscii(name)) pax.set('path', name);

  let linkname: Buffer | undefined;
  if (type === 'symlink' || type === 'hardlink') {
    const l = entry.linkname;
    if (!l || l.includes('\0')) throw bad('TAR_BAD_ENTRY', `tar entry ${JSON.stringify(path)}: ${type} needs a link target`);
    if (type === 'hardlink') {
      const t = normalizePath(l);
      if (t instanceof Error || t !== l) throw bad('TAR_BAD_ENTRY', `tar entry ${JSON.stringify(path)}: hard link target ${JSON.stringify(l)} is not a normalised path`);
    }
    linkname = Buffer.from(l, 'utf8');
    if (linkname.length > 100 || !isAscii(linkname)) pax.set('linkpath', linkname);
  }
  let uname: Buffer | undefined, gname: Buffer | undefined;
  if (entry.uname) {
    uname = Buffer.from(entry.uname, 'utf8');
    if (uname.length > 32 || !isAscii(uname)) pax.set('uname', uname);
  }
  if (entry.gname) {
    gname = Buffer.from(entry.gname, 'utf8');
    if (gname.length > 32 || !isAscii(gname)) pax.set('gname', gname);
  }
  if (entry.uid > MAX_OCTAL_7) pax.set('uid', Buffer.from(String(entry.uid)));
  if (entry.gid > MAX_OCTAL_7) pax.set('gid', Buffer.from(String(entry.gid)));
  if (size > MAX_OCTAL_11) pax.set('size', Buffer.from(String(size)));
  const intMtime = Math.min(Math.max(Math.floor(entry.mtime), 0), MAX_OCTAL_11);
  if (intMtime !== entry.mtime) pax.set('mtime', Buffer.from(formatMtime(entry.mtime)));
  let devmajor: number | undefined, devminor: number | undefined;
  if (type === 'chardev' || type === 'blockdev') {
    devmajor = entry.devmajor ?? 0;
    devminor = entry.devminor ?? 0;
    checkUint(devmajor, 'devmajor', path);
    checkUint(devminor, 'devminor', path);
  }

  const header = ustarHeader({
    name: truncateUtf8(name, 100),
    mode,
    uid: entry.uid > MAX_OCTAL_7 ? 0 : entry.uid,
    gid: entry.gid > MAX_OCTAL_7 ? 0 : entry.gid,
    size: size > MAX_OCTAL_11 ? 0 : size,
    mtime: intMtime,
    flag,
    linkname: linkname && truncateUtf8(linkname, 100),
    uname: uname && truncateUtf8(uname, 32),
    gname: gname && truncateUtf8(gname, 32),
    devmajor,
    devminor,
  });
  if (pax.size === 0) return header;

  const data = encodePaxRecords(pax);
  const base = nameStr.replace(/\/$/, '');
  const paxName = Buffer.from(`PaxHeaders.0/${base.slice(base.lastIndexOf('/') + 1)}`, 'utf8');
  const xh = ustarHeader({ name: truncateUtf8(paxName, 100), mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: intMtime, flag: 'x' });
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([xh, data, ZEROS.subarray(0, pad), header]);
}

function view(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Bytes gathered before they are passed on: small headers one by one would cost a stream turn each. */
const BATCH = 64 * 1024;
/** Content chunks at least this long are passed on as they are (zero-copy); shorter ones are copied into the batch. */
const COPY_BELOW = 8 * 1024;

/** Gathers small pieces into buffers of up to {@link BATCH} bytes. */
class Batch {
  private buf = Buffer.allocUnsafe(BATCH);
  private used = 0;
  /** Copies `b` in (b.length <= BATCH); returns a full batch to pass on first, if `b` does not fit. */
  put(b: Uint8Array): Buffer | undefined {
    let out: Buffer | undefined;
    if (this.used + b.length > BATCH) out = this.take();
    this.buf.set(b, this.used);
    this.used += b.length;
    return out;
  }
  /** What was gathered (a buffer no longer written to), or undefined if nothing was. */
  take(): Buffer | undefined {
    if (!this.used) return undefined;
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(BATCH);
    this.used = 0;
    return out;
  }
}

async function* archive(items: AsyncIterable<TarWriteItem> | Iterable<TarWriteItem>): AsyncGenerator<Buffer> {
  const batch = new Batch();
  // Small pieces go through the batch; a large one first flushes it (the order is kept).
  function* emit(b: Uint8Array): Generator<Buffer> {
    if (b.length < COPY_BELOW) {
      const full = batch.put(b);
      if (full) yield full;
      return;
    }
    const pending = batch.take();
    if (pending) yield pending;
    yield view(b);
  }
  for await (const { entry, content } of items) {
    yield* emit(encodeHeader(entry));
    const size = entry.type === 'file' ? entry.size : 0;
    const name = (): string => JSON.stringify(entry.path); // for messages only: not made per entry
    if (entry.type !== 'file') {
      if (content !== undefined && !(content instanceof Uint8Array && content.length === 0)) {
        throw bad('TAR_BAD_ENTRY', `tar entry ${name()}: a ${entry.type} has no content, but content was given`);
      }
      continue;
    }
    let written = 0;
    if (content instanceof Uint8Array) {
      if (content.length !== size) throw bad('TAR_SIZE_MISMATCH', `tar entry ${name()}: content is ${content.length} bytes but the entry's size is ${size}`);
      if (size) yield* emit(content);
      written = size;
    } else if (content && !(size === 0 && isEmptyTarContent(content))) {
      // (An empty file's content from the tar reader holds nothing to pull: a million empty
      // files cost a million async iterators otherwise, most of a rewrite's time.)
      for await (const chunk of content) {
        if (!(chunk instanceof Uint8Array)) throw bad('TAR_BAD_ENTRY', `tar entry ${name()}: content yielded a chunk that is not bytes`);
        written += chunk.length;
        if (written > size) throw bad('TAR_SIZE_MISMATCH', `tar entry ${name()}: content is longer than the entry's size ${size}`);
        if (chunk.length) yield* emit(chunk);
      }
    }
    if (written !== size) throw bad('TAR_SIZE_MISMATCH', `tar entry ${name()}: content is ${written} bytes but the entry's size is ${size}`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) yield* emit(ZEROS.subarray(0, pad));
  }
  yield* emit(ZEROS); // end of archive: two zero blocks
  const rest = batch.take();
  if (rest) yield rest;
}

/**
 * Writes a POSIX tar archive of `items` as a byte stream, pulling the next item (and chunk) only
 * when the consumer wants more (backpressure). Errors destroy the stream: `TAR_SIZE_MISMATCH` when
 * a file's content is not exactly `entry.size` bytes, `TAR_BAD_ENTRY` for an entry that cannot be
 * written (unnormalised path, hard link without target, negative id, ...). Items are written in the
 * order given; the archive ends with two zero blocks.
 */
export function tarStream(items: AsyncIterable<TarWriteItem> | Iterable<TarWriteItem>): Readable {
  return Readable.from(archive(items), { objectMode: false, highWaterMark: 256 * 1024 });
}
