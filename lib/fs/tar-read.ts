/**
 * Streaming reader of uncompressed tar archives (layer tars): yields each entry's metadata and, for
 * regular files, a stream of its content, never holding a whole file in memory.
 *
 * Our own parser rather than node-tar's `Parser`: node-tar's PAX parser splits records on newlines,
 * cuts values at NUL, decodes them as UTF-8 and drops keys it does not know, so binary xattrs
 * (`SCHILY.xattr.security.capability`) are lost; and it turns bad checksums and truncation into
 * warnings unless strict. Tar is small enough to parse exactly: ustar (with prefix), PAX (local and
 * global records), GNU long names/links and base-256 numbers.
 */
import { Readable } from 'node:stream';
import { heldError, knownLengthOf } from '../oci/digest.js';
import { EnclavifyError, type ErrorCode } from '../oci/errors.js';
import { normalizePath, ROOT, shortenPath, type EntryType, type FsEntry } from './entry.js';

/** One archive member: metadata and, for regular files, its content. */
export interface TarItem {
  entry: FsEntry;
  /**
   * The content of a regular file (present for every `file` entry, empty when size is 0). Read it
   * before asking the generator for the next item: whatever is left unread then is skipped and the
   * stream is destroyed.
   */
  content?: Readable;
  /** For regular files: where the content starts in the archive (bytes from its start). */
  offset?: number;
}

/** Options for {@link readTar}. */
export interface ReadTarOptions {
  /** Names the archive in error messages, e.g. `layer 2 (sha256:ab12…) of oci:/x:latest`. */
  source: string;
  /** Largest PAX or GNU long-name record accepted (default 8 MiB), a bound on memory. */
  maxHeaderData?: number;
  /** The archive's length in bytes when known: entry sizes running past it are refused at once. */
  length?: number | undefined;
}

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Pulls bytes from an async iterable of chunks with exact-length and bounded reads. */
class ByteSource {
  private buf: Buffer = EMPTY;
  private ended = false;
  /** The input's own error, once it failed (passed through as it is). */
  failure: unknown;
  /** Bytes handed out so far (offset into the archive, for messages). */
  offset = 0;
  private readonly it: AsyncIterator<unknown>;
  constructor(private readonly input: AsyncIterable<unknown>) {
    this.it = input[Symbol.asyncIterator]();
  }

  /** Makes `buf` non-empty; false at the end of the input. */
  private async fill(): Promise<boolean> {
    if (this.failure) throw this.failure;
    while (this.buf.length === 0) {
      if (this.ended) return false;
      let r: IteratorResult<unknown>;
      try {
        r = await this.it.next();
      } catch (e) {
        this.failure = e;
        throw e;
      }
      if (r.done) {
        this.ended = true;
        return false;
      }
      const v = r.value;
      if (typeof v === 'string') this.buf = Buffer.from(v, 'latin1');
      else if (v instanceof Uint8Array) this.buf = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      else throw err('BAD_ARGUMENT', 'tar input yielded a chunk that is not bytes');
    }
    return true;
  }

  /** Up to `max` bytes (a view of the current chunk), or null at the end of the input. */
  async readSome(max: number): Promise<Buffer | null> {
    if (!(max >= 0)) throw err('INTERNAL', `tar reader asked for ${max} bytes`);
    if (!(await this.fill())) return null;
    const n = Math.min(max, this.buf.length);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes; fewer (possibly 0) only at the end of the input. */
  async readExact(n: number): Promise<Buffer> {
    const first = await this.readSome(n);
    if (!first || first.length === n) return first ?? EMPTY;
    const parts = [first];
    let got = first.length;
    while (got < n) {
      const b = await this.readSome(n - got);
      if (!b) break;
      parts.push(b);
      got += b.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Skips `n` bytes; returns how many were skipped (fewer only at the end of the input). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const b = await this.readSome(left);
      if (!b) break;
      left -= b.length;
    }
    return n - left;
  }

  /** Releases the input early: destroys a stream at once (even with a read pending), else returns the iterator. */
  async close(): Promise<void> {
    if (this.ended) return;
    const d = (this.input as { destroy?: unknown }).destroy;
    if (typeof d === 'function') d.call(this.input);
    else await this.it.return?.();
  }
}

function err(code: ErrorCode, message: string): EnclavifyError {
  return new EnclavifyError(code, message);
}

function cstr(b: Buffer, off: number, len: number): Buffer {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return z < 0 ? s : s.subarray(0, z);
}

/** Largest value each numeric header field may hold (beyond it no runtime can apply the entry). */
const FIELD_MAX = {
  mode: 0o7777777, // 21 bits: the permission bits and, from some writers, the file-type bits
  // ids, device numbers, times: any exact integer (Go's archive/tar takes int64; tools write 2^33 ids)
  uid: Number.MAX_SAFE_INTEGER, gid: Number.MAX_SAFE_INTEGER, devmajor: Number.MAX_SAFE_INTEGER, devminor: Number.MAX_SAFE_INTEGER,
  mtime: Number.MAX_SAFE_INTEGER,
  size: Number.MAX_SAFE_INTEGER, // and no further than the end of the stream, when its length is known
  checksum: 0o7777777,
} as const;
type NumField = keyof typeof FIELD_MAX;

/**
 * Parses a numeric header field: octal text, or GNU base-256 when the high bit is set. Every
 * field is checked for its sign and range: only `mtime` may be negative (before 1970), and a value
 * beyond {@link FIELD_MAX} or beyond exact integers is refused, so that no header can make the
 * reader seek backwards or spin (a negative size once did).
 */
function num(b: Buffer, off: number, len: number, field: NumField, where: () => string): number {
  let v: number;
  if (b[off] & 0x80) {
    // base-256 two's complement after the marker bit; bit 6 of the lead byte is the sign
    const inv = b[off] & 0x40 ? 0xff : 0;
    v = 0;
    for (let i = off; i < off + len; i++) {
      let c = b[i] ^ inv;
      if (i === off) c &= 0x7f;
      v = v * 256 + c;
      if (v > Number.MAX_SAFE_INTEGER) throw err('TAR_BAD_NUMBER', `${where()}: ${field} field (base-256) is beyond the largest exact integer`);
    }
    if (inv) v = -v - 1;
  } else {
    // Octal text up to the first NUL, blank-padded on either side (String.prototype.trim's
    // blanks of Latin-1: tab to carriage return, space, no-break space), read without a string.
    let end = off;
    while (end < off + len && b[end] !== 0) end++;
    let i = off;
    while (i < end && isBlank(b[i])) i++;
    while (end > i && isBlank(b[end - 1])) end--;
    if (i === end) return 0;
    v = 0;
    for (; i < end; i++) {
      const d = b[i] - 0x30;
      // Nothing of the field is quoted: it may be any bytes of a hostile header.
      if (d < 0 || d > 7) throw err('TAR_BAD_NUMBER', `${where()}: ${field} field is not an octal number`);
      v = v * 8 + d;
    }
  }
  if (v < 0 && field !== 'mtime') throw err('TAR_BAD_NUMBER', `${where()}: ${field} field is negative (${v})`);
  if (Math.abs(v) > FIELD_MAX[field]) throw err('TAR_BAD_NUMBER', `${where()}: ${field} field ${v} is out of range (at most ${FIELD_MAX[field]})`);
  return v;
}

/** Verifies the header checksum (unsigned sum, or the historical signed sum). */
function checksumOk(b: Buffer, stored: number): boolean {
  // Every byte, then the checksum field's eight counted as spaces; the signed sum is the
  // unsigned one less 256 for each byte above 127.
  let u = 0, high = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = b[i];
    u += c;
    high += c >> 7;
  }
  for (let i = 148; i < 156; i++) {
    const c = b[i];
    u -= c;
    high -= c >> 7;
  }
  u += 8 * 0x20;
  return stored === u || stored === u - 256 * high;
}

/** A byte String.prototype.trim removes (for Latin-1 text). */
const isBlank = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function decodeName(bytes: Buffer, what: string, where: () => string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    // JS strings cannot carry arbitrary bytes losslessly; refuse rather than rename the file.
    throw err('TAR_BAD_NAME', `${where()}: ${what} ${JSON.stringify(shortenPath(bytes.toString('latin1')))} is not valid UTF-8`);
  }
}

/** Parses PAX extended header records (`LEN KEY=VALUE\n`), values kept as bytes. */
export function parsePaxRecords(data: Buffer, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // some writers pad the record block with NULs
    const sp = data.indexOf(0x20, i);
    const lenText = sp > i ? data.subarray(i, sp).toString('latin1') : '';
    const len = /^[0-9]+$/.test(lenText) ? parseInt(lenText, 10) : NaN;
    if (!(len > sp - i + 1) || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw err('TAR_BAD_HEADER', `${where}: malformed PAX record at byte ${i} of the extended header`);
    }
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw err('TAR_BAD_HEADER', `${where}: PAX record without a key at byte ${i} of the extended header`);
    let key: string;
    try {
      key = utf8.decode(rec.subarray(0, eq));
    } catch {
      throw err('TAR_BAD_HEADER', `${where}: PAX record key at byte ${i} is not valid UTF-8`);
    }
    out.set(key, Buffer.from(rec.subarray(eq + 1))); // copy: the chunk it came from is transient
    i += len;
  }
  return out;
}

/** PAX keys folded into FsEntry fields; every other key is kept in `entry.pax`. */
const FOLDED = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime']);
/** PAX keys that change what an entry is (refused in global headers: readers disagree on them). */
const ENTRY_KEYS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime', 'GNU.sparse.major', 'GNU.sparse.map', 'GNU.sparse.size']);

const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'chardev',
  '4': 'blockdev', '5': 'dir', '6': 'fifo',
};

function paxNumber(v: Buffer, key: NumField, where: () => string, fractional = false): number {
  const s = v.toString('latin1');
  const re = fractional ? /^-?[0-9]{1,20}(\.[0-9]{1,20})?$/ : /^[0-9]{1,20}$/;
  const n = Number(s);
  if (!re.test(s) || !Number.isFinite(n) || (!fractional && !Number.isSafeInteger(n))) {
    throw err('TAR_BAD_NUMBER', `${where()}: PAX ${key} record is not a valid number`);
  }
  if (Math.abs(n) > FIELD_MAX[key]) throw err('TAR_BAD_NUMBER', `${where()}: PAX ${key} ${n} is out of range (at most ${FIELD_MAX[key]})`);
  return n;
}

/** Longest name component and path Linux accepts (NAME_MAX, PATH_MAX): anything longer cannot be unpacked. */
export const MAX_NAME_COMPONENT = 255;
export const MAX_PATH_BYTES = 4096;

/**
 * Refuses a path (entry name or link target) with a component over {@link MAX_NAME_COMPONENT}
 * bytes or a total over {@link MAX_PATH_BYTES} bytes (UTF-8), with a shortened path in the message.
 */
export function checkPathLimits(p: string, what: string, where: () => string): void {
  const total = Buffer.byteLength(p);
  if (total > MAX_PATH_BYTES) {
    throw err('TAR_PATH_TOO_LONG', `${where()}: ${what} is ${total} bytes, more than the ${MAX_PATH_BYTES} a Linux path may have`);
  }
  let start = 0;
  for (;;) {
    const slash = p.indexOf('/', start);
    const end = slash < 0 ? p.length : slash;
    if (end - start > MAX_NAME_COMPONENT / 3) {
      const n = Buffer.byteLength(p.slice(start, end));
      if (n > MAX_NAME_COMPONENT) throw err('TAR_PATH_TOO_LONG', `${where()}: ${what} has a component of ${n} bytes (${JSON.stringify(shortenPath(p.slice(start, end)))}), more than the ${MAX_NAME_COMPONENT} a Linux file name may have`);
    }
    if (slash < 0) break;
    start = slash + 1;
  }
}

/**
 * Reads an uncompressed tar stream entry by entry. Errors are {@link EnclavifyError}s naming
 * `source` and the entry: `TAR_TRUNCATED` (the stream ends inside a header or content, or without
 * the end-of-archive block), `TAR_BAD_CHECKSUM`, `TAR_BAD_HEADER`, `TAR_BAD_NAME` (a name that is
 * not UTF-8), `TAR_UNSAFE_PATH` (a `..` component in a path or hard link target; leading `/` and
 * `./` are simply stripped) and `TAR_UNSUPPORTED_TYPE` (e.g. GNU sparse files). Errors of the input
 * stream itself pass through unchanged. A root entry (`./`) is yielded with path `.`.
 * When `input` carries a blob check (a layer's stream, see `setBlobCheck`), the reader's own
 * errors are held until the blob is verified, and a digest mismatch is thrown in their place.
 *
 * Whatever of the input follows the end-of-archive blocks is read and discarded, so a verifying
 * stream upstream sees every byte. Leaving the loop early destroys the input.
 */
export async function* readTar(input: AsyncIterable<unknown>, options: ReadTarOptions): AsyncGenerator<TarItem> {
  const { source } = options;
  const maxData = options.maxHeaderData ?? 8 * 1024 * 1024;
  const src = new ByteSource(input);
  const length = options.length ?? knownLengthOf(input);
  /** Refuses a size that runs past the known end of the stream (or past exact integers). */
  const checkRemaining = (size: number, offset: number, where: () => string) => {
    const end = offset + size;
    if (!Number.isSafeInteger(end)) throw err('TAR_BAD_NUMBER', `${where()}: size ${size} runs beyond the largest exact offset`);
    if (length !== undefined && end > length) {
      throw err('TAR_TRUNCATED', `${where()}: size ${size} runs ${end - length} bytes past the end of the ${length}-byte archive`);
    }
  };
  let finished = false;
  let current: ContentStream | undefined;
  const names = new Interner();
  try {
    let local: Map<string, Buffer> | undefined;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    let sawAny = false;
    for (;;) {
      const at = src.offset;
      const h = await src.readExact(BLOCK);
      if (h.length === 0) {
        if (!sawAny) break; // an empty stream is an empty archive
        throw err('TAR_TRUNCATED', `${source}: tar stream ends at byte ${at} without the end-of-archive marker (truncated?)`);
      }
      if (h.length < BLOCK) throw err('TAR_TRUNCATED', `${source}: tar stream ends inside a header at byte ${at} (truncated)`);
      sawAny = true;
      if (isZeroBlock(h)) {
        if (local || longName || longLink) throw err('TAR_BAD_HEADER', `${source}: extended header at byte ${at} is followed by the end of the archive`);
        while (await src.readSome(Infinity)); // drain: a second zero block, record padding
        break;
      }
      const rawName = cstr(h, 0, 100);
      const where0 = () => `${source}: tar header at byte ${at} (${JSON.stringify(shortenPath(rawName.toString('utf8')))})`;
      let stored = -1;
      try {
        stored = num(h, 148, 8, 'checksum', where0);
      } catch {
        // not even a number: reported as a bad checksum below
      }
      if (!checksumOk(h, stored)) {
        throw err('TAR_BAD_CHECKSUM', `${source}: bad tar header checksum at byte ${at}; the archive is corrupt or not a tar`);
      }
      const flag = String.fromCharCode(h[156]);
      const headerSize = num(h, 124, 12, 'size', where0);

      // Extension headers: their data describes the next entry.
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        checkRemaining(headerSize, src.offset, where0);
        if (headerSize > maxData) throw err('TAR_BAD_HEADER', `${where0()}: extended header of ${headerSize} bytes exceeds the ${maxData}-byte limit`);
        const data = await src.readExact(headerSize);
        if (data.length < headerSize) throw err('TAR_TRUNCATED', `${where0()}: tar stream ends inside an extended header (truncated)`);
        await skipPadding(src, headerSize, where0);
        if (flag === 'x') local = parsePaxRecords(data, where0());
        else if (flag === 'g') {
          // Go's archive/tar (containerd, Docker, podman, umoci) does not apply global records to
          // the entries that follow; neither do we, so we see the files the runtime sees. Records
          // that would change what an entry is are refused rather than silently ignored.
          for (const k of parsePaxRecords(data, where0()).keys()) {
            if (ENTRY_KEYS.has(k)) throw err('TAR_BAD_HEADER', `${where0()}: global extended header sets ${JSON.stringify(k)}; container runtimes ignore it while other readers apply it, so the layer is ambiguous`);
          }
        } else {
          const z = data.indexOf(0);
          const name = Buffer.from(z < 0 ? data : data.subarray(0, z));
          if (flag === 'L') longName = name; else longLink = name;
        }
        continue;
      }

      // The entry's PAX records (an empty value unsets, i.e. is absent).
      const pax = new Map<string, Buffer>();
      if (local) for (const [k, v] of local) if (v.length) pax.set(k, v);

      const posix = h.subarray(257, 263).toString('latin1') === 'ustar\0';
      let nameBytes: Buffer = rawName;
      // Precedence as in Go's archive/tar: a GNU long name wins over a PAX path, which wins over
      // the ustar name (with its prefix).
      if (longName) nameBytes = longName;
      else if (pax.has('path')) nameBytes = pax.get('path')!;
      else if (posix) {
        const prefix = cstr(h, 345, 155);
        if (prefix.length) nameBytes = Buffer.concat([prefix, Buffer.from('/'), rawName]);
      }
      const rawPath = decodeName(nameBytes, 'name', where0);
      if (rawPath.includes('\0')) throw err('TAR_BAD_NAME', `${where0()}: name contains a NUL byte`);
      const where = () => `${source}: entry ${JSON.stringify(shortenPath(rawPath))}`;
      checkPathLimits(rawPath, 'the name', where);

      let type = TYPES[flag];
      if (!type) {
        const what = flag === 'S' ? 'GNU sparse file' : flag === 'D' ? 'GNU dump directory' : flag === 'V' ? 'GNU volume label' : flag === 'M' ? 'GNU multi-volume continuation' : `type ${JSON.stringify(flag)}`;
        throw err('TAR_UNSUPPORTED_TYPE', `${where()}: unsupported tar entry (${what})`);
      }
      if (pax.has('GNU.sparse.major') || pax.has('GNU.sparse.size') || pax.has('GNU.sparse.map')) {
        throw err('TAR_UNSUPPORTED_TYPE', `${where()}: unsupported tar entry (PAX sparse file)`);
      }
      // Old tars mark directories with a trailing slash on a regular-file entry.
      if (flag === '\0' && rawPath.endsWith('/')) type = 'dir';

      const norm = normalizePath(rawPath);
      if (norm instanceof Error) throw err('TAR_UNSAFE_PATH', `${where()}: path has a ".." component; refusing to read outside the root`);
      const path = norm ?? ROOT;
      if (path === ROOT && type !== 'dir') throw err('TAR_UNSAFE_PATH', `${where()}: the root directory must be a directory, not a ${type}`);

      const size = pax.has('size') ? paxNumber(pax.get('size')!, 'size', where) : headerSize;
      checkRemaining(size, src.offset, where);
      const entry: FsEntry = {
        path,
        type,
        mode: num(h, 100, 8, 'mode', where) & 0o7777,
        uid: pax.has('uid') ? paxNumber(pax.get('uid')!, 'uid', where) : num(h, 108, 8, 'uid', where),
        gid: pax.has('gid') ? paxNumber(pax.get('gid')!, 'gid', where) : num(h, 116, 8, 'gid', where),
        mtime: pax.has('mtime') ? paxNumber(pax.get('mtime')!, 'mtime', where, true) : num(h, 136, 12, 'mtime', where),
        size: type === 'file' ? size : 0,
      };
      const uname = names.intern(pax.has('uname') ? decodeName(pax.get('uname')!, 'uname', where) : cstr(h, 265, 32).toString('utf8'));
      const gname = names.intern(pax.has('gname') ? decodeName(pax.get('gname')!, 'gname', where) : cstr(h, 297, 32).toString('utf8'));
      if (uname) entry.uname = uname;
      if (gname) entry.gname = gname;
      if (type === 'symlink' || type === 'hardlink') {
        const linkBytes = longLink ?? pax.get('linkpath') ?? cstr(h, 157, 100);
        const link = decodeName(linkBytes, 'link target', where);
        if (link.includes('\0')) throw err('TAR_BAD_NAME', `${where()}: link target contains a NUL byte`);
        checkPathLimits(link, 'the link target', where);
        if (type === 'symlink') {
          if (link === '') throw err('TAR_BAD_HEADER', `${where()}: symlink has an empty target`);
          entry.linkname = link;
        } else {
          const t = normalizePath(link);
          if (t instanceof Error) throw err('TAR_UNSAFE_PATH', `${where()}: hard link target ${JSON.stringify(shortenPath(link))} has a ".." component`);
          if (t === undefined) throw err('TAR_BAD_HEADER', `${where()}: hard link to the root directory`);
          entry.linkname = t;
        }
      }
      if (type === 'chardev' || type === 'blockdev') {
        entry.devmajor = num(h, 329, 8, 'devmajor', where);
        entry.devminor = num(h, 337, 8, 'devminor', where);
      }
      const extra: Record<string, Buffer> = {};
      let hasExtra = false;
      for (const [k, v] of pax) {
        if (!FOLDED.has(k)) {
          extra[k] = v;
          hasExtra = true;
        }
      }
      if (hasExtra) entry.pax = extra;
      local = longName = longLink = undefined;

      if (type !== 'file') {
        // Links, directories, devices and fifos have no data: Go's archive/tar reads the bytes
        // after such a header as the next header, whatever its size field says. Skipping them
        // instead would hide entries that the container runtime extracts, so a size is refused.
        if (size !== 0) throw err('TAR_BAD_HEADER', `${where()}: a ${type} entry with a size of ${size} bytes; container runtimes read no data after it, other readers skip it, so the layer is ambiguous`);
        yield { entry };
        continue;
      }

      const offset = src.offset;
      const content = (current = new ContentStream(src, size, where));
      yield { entry, content, offset };
      await content.finish();
      current = undefined;
      await skipPadding(src, size, where);
    }
    finished = true;
  } catch (e) {
    // A problem with the archive is reported only once the blob it comes from has been verified:
    // until then its bytes (names quoted in the message) may be anything, e.g. a host file.
    if (e === src.failure) throw e;
    throw await heldError(input, e);
  } finally {
    if (!finished) {
      if (current && !current.destroyed) current.destroy();
      await src.close().catch(() => {});
    }
  }
}

/**
 * One string per distinct user or group name: an index keeps every entry of a layer, and a
 * million entries owned by `root` should hold one `"root"`, not a million copies.
 */
class Interner {
  private readonly seen = new Map<string, string>();
  intern(s: string): string {
    if (s === '') return s;
    const had = this.seen.get(s);
    if (had !== undefined) return had;
    if (this.seen.size < 4096) this.seen.set(s, s); // bounded: a layer may have a name per entry
    return s;
  }
}

async function skipPadding(src: ByteSource, size: number, where: () => string): Promise<void> {
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  if (pad && (await src.skip(pad)) < pad) throw err('TAR_TRUNCATED', `${where()}: tar stream ends inside padding (truncated)`);
}


/** Whether `content` is an empty file's content from {@link readTar}: nothing to read (no need to iterate it). */
export function isEmptyTarContent(content: unknown): boolean {
  return content instanceof ContentStream && content.size === 0;
}

/** A file's content, pulled from the archive on demand (no read-ahead beyond the stream buffer). */
class ContentStream extends Readable {
  private remaining: number;
  private inflight: Promise<void> | undefined;
  constructor(
    private readonly src: ByteSource,
    readonly size: number,
    private readonly where: () => string,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.remaining = size;
  }

  override _read(): void {
    if (this.inflight) return;
    // The end is pushed when first read, not made in the constructor: an empty file's stream
    // nobody reads then schedules nothing.
    if (this.remaining === 0) {
      this.push(null);
      return;
    }
    this.inflight = this.src.readSome(this.remaining).then(
      (b) => {
        this.inflight = undefined;
        if (!b) {
          this.destroy(err('TAR_TRUNCATED', `${this.where()}: tar stream ends inside the file's content, ${this.remaining} bytes short (truncated)`));
          return;
        }
        this.remaining -= b.length;
        this.push(b);
        if (this.remaining === 0) this.push(null);
      },
      (e: unknown) => {
        this.inflight = undefined;
        this.destroy(e as Error);
      },
    );
  }

  /** Called when the consumer moves on: skips what was not read and closes the stream. */
  async finish(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.remaining > 0) {
      const left = this.remaining;
      this.remaining = 0;
      if (!this.destroyed) this.destroy();
      if ((await this.src.skip(left)) < left) throw err('TAR_TRUNCATED', `${this.where()}: tar stream ends inside the file's content (truncated)`);
    }
  }
}
