/**
 * Byte-level tar building for hostile-input tests and the fuzzer: headers with any field set to
 * any bytes (octal, base-256, garbage), checksums fixed or not, PAX records, end markers. Our tar
 * writer refuses to write such archives, so tests that attack the reader build them here.
 */

export const BLOCK = 512;

/** Field offsets and lengths of a ustar header. */
export const FIELDS = {
  name: [0, 100], mode: [100, 8], uid: [108, 8], gid: [116, 8], size: [124, 12], mtime: [136, 12],
  checksum: [148, 8], type: [156, 1], linkname: [157, 100], magic: [257, 6], version: [263, 2],
  uname: [265, 32], gname: [297, 32], devmajor: [329, 8], devminor: [337, 8], prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;
export type Field = keyof typeof FIELDS;
export const NUMERIC_FIELDS = ['mode', 'uid', 'gid', 'size', 'mtime', 'devmajor', 'devminor'] as const satisfies readonly Field[];

/** Octal text of `v` filling a field of `len` bytes (NUL-terminated). */
export function octal(v: number, len: number): Buffer {
  return Buffer.from(v.toString(8).padStart(len - 1, '0') + '\0', 'latin1');
}

/** GNU base-256 encoding of `v` (two's complement for negatives) in `len` bytes. */
export function base256(v: bigint, len: number): Buffer {
  const b = Buffer.alloc(len);
  let x = v < 0n ? (1n << BigInt(len * 8)) + v : v;
  for (let i = len - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  b[0] |= 0x80;
  return b;
}

/** Recomputes the checksum of a header block in place. */
export function fixChecksum(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'latin1').copy(h, 148);
  return h;
}

/** What {@link header} takes: field values as strings/numbers, or raw bytes for any field. */
export interface HeaderSpec {
  name: string;
  type?: string;
  size?: number;
  mode?: number;
  linkname?: string;
  /** Raw bytes written over a field after everything else (then the checksum is fixed unless `badChecksum`). */
  raw?: Partial<Record<Field, Buffer>>;
  badChecksum?: boolean;
}

/** One ustar header block. */
export function header(spec: HeaderSpec): Buffer {
  const h = Buffer.alloc(BLOCK);
  Buffer.from(spec.name, 'utf8').copy(h, 0, 0, 100);
  octal(spec.mode ?? 0o644, 8).copy(h, 100);
  octal(0, 8).copy(h, 108);
  octal(0, 8).copy(h, 116);
  octal(spec.size ?? 0, 12).copy(h, 124);
  octal(0, 12).copy(h, 136);
  h.write(spec.type ?? '0', 156, 'latin1');
  if (spec.linkname) Buffer.from(spec.linkname, 'utf8').copy(h, 157, 0, 100);
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  for (const [f, bytes] of Object.entries(spec.raw ?? {}) as Array<[Field, Buffer]>) {
    const [off, len] = FIELDS[f];
    h.fill(0, off, off + len);
    bytes.copy(h, off, 0, len);
  }
  fixChecksum(h);
  if (spec.badChecksum) h[148] = h[148] === 0x30 ? 0x31 : 0x30;
  return h;
}

/** Content padded to whole blocks. */
export function padded(data: Buffer): Buffer {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

/** A PAX extended header (type `x`) carrying `records`, values as given (strings or bytes). */
export function paxHeader(records: Record<string, string | Buffer>, name = 'PaxHeader'): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.isBuffer(v) ? v : Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), body]));
  }
  const data = Buffer.concat(parts);
  return Buffer.concat([header({ name, type: 'x', size: data.length }), padded(data)]);
}

/** A regular file entry with its content. */
export function fileEntry(name: string, data: Buffer | string, spec: Partial<HeaderSpec> = {}): Buffer {
  const d = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([header({ name, size: d.length, ...spec }), padded(d)]);
}

/** The two zero blocks that end an archive. */
export const END = Buffer.alloc(2 * BLOCK);

/** Concatenates entries and the end marker. */
export function archive(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, END]);
}
