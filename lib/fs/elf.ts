/**
 * A small, defensive ELF reader: the header, the program interpreter (PT_INTERP) and the dynamic
 * section (DT_NEEDED, DT_RUNPATH, DT_RPATH, DT_SONAME, DT_FLAGS_1). It reads what the kernel and
 * the dynamic loader read (program headers, strings through DT_STRTAB mapped by PT_LOAD), not the
 * section headers, so it sees a file the way it is loaded. Every offset is checked against the
 * buffer and every loop is bounded by the buffer size, so malformed input gives an {@link ElfError},
 * never an out-of-bounds read or a hang.
 */
import { EnclavifyError } from '../oci/errors.js';

/** Raised for input that is not a well-formed ELF file; the message names the file and the problem. */
export class ElfError extends EnclavifyError {
  constructor(message: string) {
    super('ELF_INVALID', message);
    this.name = 'ElfError';
  }
}

/** e_type values, by name. */
export type ElfType = 'NONE' | 'REL' | 'EXEC' | 'DYN' | 'CORE' | 'OTHER';

/** What {@link parseElf} learns from an ELF file. */
export interface ElfInfo {
  /** EI_CLASS: 32- or 64-bit. */
  class: 32 | 64;
  /** EI_DATA: byte order. */
  endian: 'little' | 'big';
  /** EI_OSABI (0 System V, 3 GNU/Linux, ...). */
  osabi: number;
  /** e_machine, e.g. 62 for x86-64, 183 for AArch64, 3 for i386. */
  machine: number;
  /** A short name for e_machine (`x86_64`, `aarch64`, `i386`, ...), or `machine-<n>` when unknown. */
  machineName: string;
  /** e_type by name; `OTHER` for OS- or processor-specific values. */
  type: ElfType;
  /** PT_INTERP: the program interpreter path as written in the file (e.g. `/lib64/ld-linux-x86-64.so.2`). */
  interpreter?: string;
  /** Whether there is a PT_DYNAMIC segment. */
  dynamic: boolean;
  /** DT_NEEDED names, in file order. */
  needed: string[];
  /** DT_RUNPATH, verbatim (colon-separated, may contain `$ORIGIN`). */
  runpath?: string;
  /** DT_RPATH, verbatim. */
  rpath?: string;
  /** DT_SONAME. */
  soname?: string;
  /** DT_FLAGS_1 (0 when absent); DF_1_NODEFLIB is 0x800, DF_1_PIE 0x08000000. */
  flags1: number;
  /**
   * True when the file starts without loading any other file: no program interpreter and no
   * DT_NEEDED (static and static-pie executables, and the dynamic loader itself).
   */
  static: boolean;
}

/** DF_1_NODEFLIB: do not search the default library directories (nor ld.so.cache) for this object's needs. */
export const DF_1_NODEFLIB = 0x800;

const MACHINES: Record<number, string> = {
  2: 'sparc', 3: 'i386', 8: 'mips', 20: 'ppc', 21: 'ppc64', 22: 's390', 40: 'arm', 43: 'sparcv9',
  50: 'ia64', 62: 'x86_64', 183: 'aarch64', 243: 'riscv', 258: 'loongarch',
};

const TYPES: Record<number, ElfType> = { 0: 'NONE', 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
const DT_FLAGS_1 = 0x6ffffffbn;
/** e_phnum value meaning "the real count is in section header 0's sh_info". */
const PN_XNUM = 0xffff;
/**
 * Caps that keep hostile input cheap to reject; real objects stay far below them (a few dozen
 * dynamic entries, strings of at most a few KiB).
 */
const MAX_DYNAMIC_ENTRIES = 65536;
const MAX_STRING_ENTRIES = 4096;
const MAX_STRING_LENGTH = 65536;

/** True when `bytes` starts with the ELF magic `\x7fELF`. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** Options for {@link parseElf}. */
export interface ParseElfOptions {
  /** Name of the file, used in error messages. */
  path?: string;
}

interface Segment {
  type: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
}

/**
 * Parse the header, program headers and dynamic section of an ELF file (32/64-bit, either byte
 * order). Throws {@link ElfError} for input that is not ELF or whose structures point outside the
 * buffer.
 */
export function parseElf(bytes: Uint8Array, options: ParseElfOptions = {}): ElfInfo {
  const where = options.path ? `ELF file ${options.path}` : 'ELF file';
  function fail(what: string): never {
    throw new ElfError(`${where}: ${what}`);
  }
  if (!isElf(bytes)) fail('no ELF magic (\\x7fELF)');
  if (bytes.length < 52) fail(`truncated: ${bytes.length} bytes, shorter than an ELF header`);
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) fail(`unknown EI_CLASS ${cls}`);
  const data = bytes[5];
  if (data !== 1 && data !== 2) fail(`unknown EI_DATA ${data}`);
  const is64 = cls === 2;
  const le = data === 1;
  const size = BigInt(bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  // Readers take bigint offsets so that 64-bit values never lose precision; each checks bounds.
  const inside = (off: bigint, len: bigint): boolean => off >= 0n && len >= 0n && off + len <= size;
  const u16 = (off: bigint): number => {
    if (!inside(off, 2n)) fail(`truncated: reading 2 bytes at offset ${off}`);
    return view.getUint16(Number(off), le);
  };
  const u32 = (off: bigint): number => {
    if (!inside(off, 4n)) fail(`truncated: reading 4 bytes at offset ${off}`);
    return view.getUint32(Number(off), le);
  };
  const u64 = (off: bigint): bigint => {
    if (!inside(off, 8n)) fail(`truncated: reading 8 bytes at offset ${off}`);
    return view.getBigUint64(Number(off), le);
  };
  const word = (off: bigint): bigint => (is64 ? u64(off) : BigInt(u32(off)));
  const sword = (off: bigint): bigint => (is64 ? view.getBigInt64(Number(checked(off, 8n)), le) : BigInt(view.getInt32(Number(checked(off, 4n)), le)));
  function checked(off: bigint, len: bigint): bigint {
    if (!inside(off, len)) fail(`truncated: reading ${len} bytes at offset ${off}`);
    return off;
  }

  if (is64 && bytes.length < 64) fail(`truncated: ${bytes.length} bytes, shorter than a 64-bit ELF header`);
  const etype = u16(16n);
  const machine = u16(18n);
  const phoff = is64 ? u64(32n) : BigInt(u32(28n));
  const shoff = is64 ? u64(40n) : BigInt(u32(32n));
  const phentsize = BigInt(u16(is64 ? 54n : 42n));
  let phnum = u16(is64 ? 56n : 44n);
  const shentsize = BigInt(u16(is64 ? 58n : 46n));

  if (phnum === PN_XNUM) {
    // The real count lives in sh_info of the first section header.
    if (shoff === 0n) fail('e_phnum is PN_XNUM but there are no section headers');
    if (shentsize < (is64 ? 64n : 40n)) fail(`e_shentsize ${shentsize} too small`);
    phnum = u32(shoff + (is64 ? 44n : 28n));
  }
  const minPhent = is64 ? 56n : 32n;
  const segments: Segment[] = [];
  if (phnum > 0) {
    if (phentsize < minPhent) fail(`e_phentsize ${phentsize} smaller than a program header (${minPhent})`);
    if (!inside(phoff, phentsize * BigInt(phnum))) {
      fail(`truncated: ${phnum} program headers at offset ${phoff} run past the end (${bytes.length} bytes)`);
    }
    for (let i = 0; i < phnum; i++) {
      const at = phoff + phentsize * BigInt(i);
      segments.push(
        is64
          ? { type: u32(at), offset: u64(at + 8n), vaddr: u64(at + 16n), filesz: u64(at + 32n) }
          : { type: u32(at), offset: BigInt(u32(at + 4n)), vaddr: BigInt(u32(at + 8n)), filesz: BigInt(u32(at + 16n)) },
      );
    }
  }

  const decoder = new TextDecoder('utf-8');
  /** A NUL-terminated string starting at `off` that must end before `limit`. */
  const cstring = (off: bigint, limit: bigint, what: string): string => {
    const end = limit < size ? limit : size;
    if (off < 0n || off >= end) fail(`${what} at offset ${off} is outside the file or its table`);
    const start = Number(off);
    const stop = Math.min(Number(end), start + MAX_STRING_LENGTH);
    const nul = bytes.subarray(start, stop).indexOf(0);
    if (nul < 0) fail(`${what} at offset ${off} is not NUL-terminated${stop < Number(end) ? ` within ${MAX_STRING_LENGTH} bytes` : ''}`);
    return decoder.decode(bytes.subarray(start, start + nul));
  };

  const info: ElfInfo = {
    class: is64 ? 64 : 32,
    endian: le ? 'little' : 'big',
    osabi: bytes[7],
    machine,
    machineName: MACHINES[machine] ?? `machine-${machine}`,
    type: TYPES[etype] ?? 'OTHER',
    dynamic: false,
    needed: [],
    flags1: 0,
    static: true,
  };

  // The kernel uses the first PT_INTERP; its content must be a NUL-terminated path.
  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp) {
    if (!inside(interp.offset, interp.filesz) || interp.filesz === 0n) {
      fail(`PT_INTERP (offset ${interp.offset}, size ${interp.filesz}) is outside the file`);
    }
    info.interpreter = cstring(interp.offset, interp.offset + interp.filesz, 'PT_INTERP path');
  }

  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (dyn) {
    info.dynamic = true;
    if (!inside(dyn.offset, dyn.filesz)) {
      fail(`PT_DYNAMIC (offset ${dyn.offset}, size ${dyn.filesz}) is outside the file`);
    }
    const entsize = is64 ? 16n : 8n;
    const count = dyn.filesz / entsize;
    const tags: Array<[bigint, bigint]> = [];
    for (let i = 0n; i < count; i++) {
      const at = dyn.offset + i * entsize;
      const tag = sword(at);
      if (tag === DT_NULL) break;
      if (tags.length >= MAX_DYNAMIC_ENTRIES) fail(`more than ${MAX_DYNAMIC_ENTRIES} dynamic entries`);
      tags.push([tag, word(at + entsize / 2n)]);
    }
    const value = (tag: bigint): bigint | undefined => tags.find(([t]) => t === tag)?.[1];
    const strtabAddr = value(DT_STRTAB);
    const strsz = value(DT_STRSZ);
    const stringTags = tags.filter(([t]) => t === DT_NEEDED || t === DT_SONAME || t === DT_RPATH || t === DT_RUNPATH);
    const flags1 = value(DT_FLAGS_1);
    if (flags1 !== undefined) info.flags1 = Number(flags1 & 0xffffffffn);
    if (stringTags.length > MAX_STRING_ENTRIES) fail(`${stringTags.length} DT_NEEDED/SONAME/RPATH/RUNPATH entries (at most ${MAX_STRING_ENTRIES})`);
    if (stringTags.length) {
      if (strtabAddr === undefined) fail('dynamic section has string entries but no DT_STRTAB');
      // DT_STRTAB is a virtual address: find the PT_LOAD segment whose file image contains it.
      const load = segments.find((s) => s.type === PT_LOAD && strtabAddr >= s.vaddr && strtabAddr < s.vaddr + s.filesz);
      if (!load) fail(`DT_STRTAB address 0x${strtabAddr.toString(16)} is not in any PT_LOAD segment`);
      const tableOff = load.offset + (strtabAddr - load.vaddr);
      let tableEnd = load.offset + load.filesz;
      if (strsz !== undefined && tableOff + strsz < tableEnd) tableEnd = tableOff + strsz;
      if (tableOff >= size) fail(`string table at offset ${tableOff} is outside the file`);
      for (const [tag, val] of stringTags) {
        const name = tag === DT_NEEDED ? 'DT_NEEDED' : tag === DT_SONAME ? 'DT_SONAME' : tag === DT_RPATH ? 'DT_RPATH' : 'DT_RUNPATH';
        const s = cstring(tableOff + val, tableEnd, `${name} string`);
        if (tag === DT_NEEDED) info.needed.push(s);
        else if (tag === DT_SONAME) info.soname ??= s;
        else if (tag === DT_RPATH) info.rpath ??= s;
        else info.runpath ??= s;
      }
    }
  }
  info.static = info.interpreter === undefined && info.needed.length === 0;
  return info;
}
