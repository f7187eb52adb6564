/** Synthetic ELF files for tests of the ELF parser and of startup-file discovery. */

/** What to put in a synthetic ELF. */
export interface ElfSpec {
  class?: 32 | 64;
  endian?: 'little' | 'big';
  machine?: number;
  type?: number;
  interp?: string;
  needed?: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
  flags1?: number;
}

/** Build a minimal ELF: header, PT_LOAD over the whole file, PT_INTERP, PT_DYNAMIC, .dynstr, .dynamic. */
export function buildElf(s: ElfSpec): { bytes: Uint8Array; layout: Record<string, number> } {
  const is64 = (s.class ?? 64) === 64;
  const le = (s.endian ?? 'little') === 'little';
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const strings: number[] = [0];
  const str = (v: string): number => {
    const off = strings.length;
    strings.push(...new TextEncoder().encode(v), 0);
    return off;
  };
  const dyn: Array<[number, number]> = [];
  for (const n of s.needed ?? []) dyn.push([1, str(n)]);
  if (s.soname !== undefined) dyn.push([14, str(s.soname)]);
  if (s.rpath !== undefined) dyn.push([15, str(s.rpath)]);
  if (s.runpath !== undefined) dyn.push([29, str(s.runpath)]);
  if (s.flags1 !== undefined) dyn.push([0x6ffffffb, s.flags1]);
  const hasDyn = dyn.length > 0;
  const phnum = 1 + (s.interp ? 1 : 0) + (hasDyn ? 1 : 0);
  const interpOff = ehsize + phnum * phentsize;
  const interpBytes = s.interp ? [...new TextEncoder().encode(s.interp), 0] : [];
  const strOff = interpOff + interpBytes.length;
  const dynOff = Math.ceil((strOff + strings.length) / 8) * 8;
  const entsize = is64 ? 16 : 8;
  if (hasDyn) dyn.push([5, 0], [10, strings.length], [0, 0]); // DT_STRTAB patched below, DT_STRSZ, DT_NULL
  const total = dynOff + dyn.length * entsize;
  const base = 0x400000;
  const buf = new Uint8Array(total);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1, 0]);
  v.setUint16(16, s.type ?? 3, le);
  v.setUint16(18, s.machine ?? 62, le);
  v.setUint32(20, 1, le);
  const word = (off: number, val: number): void => (is64 ? v.setBigUint64(off, BigInt(val), le) : v.setUint32(off, val, le));
  word(is64 ? 32 : 28, ehsize); // e_phoff
  v.setUint16(is64 ? 52 : 40, ehsize, le);
  v.setUint16(is64 ? 54 : 42, phentsize, le);
  v.setUint16(is64 ? 56 : 44, phnum, le);
  let ph = ehsize;
  const phdr = (type: number, offset: number, size: number): void => {
    v.setUint32(ph, type, le);
    if (is64) {
      v.setUint32(ph + 4, 4, le);
      word(ph + 8, offset);
      word(ph + 16, base + offset);
      word(ph + 24, base + offset);
      word(ph + 32, size);
      word(ph + 40, size);
      word(ph + 48, type === 1 ? 0x1000 : 1);
    } else {
      word(ph + 4, offset);
      word(ph + 8, base + offset);
      word(ph + 12, base + offset);
      word(ph + 16, size);
      word(ph + 20, size);
      v.setUint32(ph + 24, 4, le);
      v.setUint32(ph + 28, type === 1 ? 0x1000 : 1, le);
    }
    ph += phentsize;
  };
  phdr(1, 0, total);
  if (s.interp) phdr(3, interpOff, interpBytes.length);
  if (hasDyn) phdr(2, dynOff, dyn.length * entsize);
  buf.set(interpBytes, interpOff);
  buf.set(strings, strOff);
  dyn.forEach(([tag, val], i) => {
    const at = dynOff + i * entsize;
    if (tag === 5) val = base + strOff;
    if (is64) {
      v.setBigInt64(at, BigInt(tag), le);
      v.setBigUint64(at + 8, BigInt(val), le);
    } else {
      v.setInt32(at, tag, le);
      v.setUint32(at + 4, val, le);
    }
  });
  return { bytes: buf, layout: { phoff: ehsize, phentsize, phnum, interpOff, strOff, dynOff, entsize, total } };
}
