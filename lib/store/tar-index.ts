/**
 * Random access to the members of a tar file on disk (a `docker save` archive): one pass over the
 * headers with positional reads, skipping contents, so a multi-gigabyte archive is indexed
 * without reading its layers.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { EnclavifyError } from '../oci/errors.js';

export interface TarMember { name: string; offset: number; size: number; type: string; linkname: string }

function str(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}
function num(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) { // base-256
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i];
    return v;
  }
  const s = str(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString(), 10);
    if (!(len > 0)) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** An indexed tar file: members by normalised name, with symlinks between members resolved. */
export class TarIndex {
  private constructor(readonly file: string, readonly members: Map<string, TarMember>) {}

  static async open(file: string): Promise<TarIndex> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      throw new EnclavifyError('NOT_FOUND', `docker-archive ${file}: cannot open: ${(e as Error).message}`);
    }
    const members = new Map<string, TarMember>();
    try {
      const { size: fileSize } = await fh.stat();
      const hdr = Buffer.alloc(512);
      let off = 0;
      let longName: string | undefined, longLink: string | undefined, pax: Record<string, string> = {};
      for (;;) {
        if (off + 512 > fileSize) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${file}: truncated tar at byte ${off}`);
        await fh.read(hdr, 0, 512, off);
        if (hdr.every((x) => x === 0)) break;
        let sum = 0;
        for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : hdr[i];
        if (sum !== num(hdr, 148, 8)) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${file}: bad tar header checksum at byte ${off}`);
        const type = String.fromCharCode(hdr[156] || 0x30);
        // A PAX `size` record overrides the header's field (Go writes 0 there for members >= 8 GiB).
        const size = type !== 'x' && type !== 'g' && pax.size !== undefined ? Number(pax.size) : num(hdr, 124, 12);
        if (!Number.isSafeInteger(size) || size < 0) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${file}: bad member size at byte ${off}`);
        const dataOff = off + 512;
        if (dataOff + size > fileSize) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${file}: truncated: member at byte ${off} needs ${size} bytes`);
        const next = dataOff + Math.ceil(size / 512) * 512;
        if (type === 'x' || type === 'L' || type === 'K') {
          if (size > 1 << 20) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${file}: oversized extended header at byte ${off}`);
          const data = Buffer.alloc(size);
          await fh.read(data, 0, size, dataOff);
          if (type === 'x') pax = paxRecords(data);
          else if (type === 'L') longName = str(data, 0, size);
          else longLink = str(data, 0, size);
          off = next;
          continue;
        }
        if (type === 'g') { off = next; continue; }
        const prefix = hdr.subarray(257, 263).toString() === 'ustar\x00' ? str(hdr, 345, 155) : '';
        const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${str(hdr, 0, 100)}` : str(hdr, 0, 100));
        const name = path.posix.normalize(rawName).replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
        const linkname = pax.linkpath ?? longLink ?? str(hdr, 157, 100);
        members.set(name, { name, offset: dataOff, size, type, linkname });
        longName = longLink = undefined;
        pax = {};
        off = next;
      }
    } finally {
      await fh.close();
    }
    return new TarIndex(file, members);
  }

  /** The member at `name`, following symlinks and hard links between members (bounded). */
  get(name: string): TarMember | undefined {
    let n = path.posix.normalize(name).replace(/^(\.\/|\/)+/, '');
    for (let hops = 0; hops < 16; hops++) {
      const m = this.members.get(n);
      if (!m) return undefined;
      if (m.type === '2') n = path.posix.normalize(path.posix.join(path.posix.dirname(n), m.linkname));
      else if (m.type === '1') n = path.posix.normalize(m.linkname).replace(/^(\.\/|\/)+/, '');
      else return m.type === '0' || m.type === '\0' || m.type === '7' ? m : undefined;
    }
    return undefined;
  }

  async read(name: string, max = 16 << 20): Promise<Buffer> {
    const m = this.need(name);
    if (m.size > max) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${this.file}: ${name} is too large (${m.size} bytes)`);
    const fh = await open(this.file, 'r');
    try {
      const b = Buffer.alloc(m.size);
      await fh.read(b, 0, m.size, m.offset);
      return b;
    } finally {
      await fh.close();
    }
  }

  /** Up to `length` bytes from the start of a member (e.g. magic numbers). */
  async head(name: string, length: number): Promise<Buffer> {
    const m = this.need(name);
    const fh = await open(this.file, 'r');
    try {
      const b = Buffer.alloc(Math.min(length, m.size));
      await fh.read(b, 0, b.length, m.offset);
      return b;
    } finally {
      await fh.close();
    }
  }

  stream(name: string): Readable {
    const m = this.need(name);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }

  need(name: string): TarMember {
    const m = this.get(name);
    if (!m) throw new EnclavifyError('BAD_ARCHIVE', `docker-archive ${this.file}: member ${name} is missing`);
    return m;
  }
}
