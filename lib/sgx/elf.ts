/**
 * The little of ELF the SGX signer needs from the PAL (`libpal.so`): its PT_LOAD segments and its
 * entry point. Only 64-bit little-endian x86-64 objects are accepted.
 */
import { EnclavifyError } from '../oci/errors.js';

/** One PT_LOAD program header. Values fit in a JS number for any real PAL (< 2^53). */
export interface ElfLoadSegment {
  /** Offset of the segment's bytes in the file. */
  offset: number;
  /** Virtual address the segment is loaded at (relative to the load base for ET_DYN). */
  vaddr: number;
  /** Bytes taken from the file. */
  filesz: number;
  /** Bytes in memory (the rest after `filesz` is zero, e.g. .bss). */
  memsz: number;
  /** p_flags: PF_X = 1, PF_W = 2, PF_R = 4. */
  flags: number;
}

/** What the signer reads from the PAL's ELF file. */
export interface ElfImage {
  /** ELF type: 2 = ET_EXEC, 3 = ET_DYN. */
  type: number;
  /** e_entry. */
  entry: number;
  /** PT_LOAD segments in program-header order. */
  loads: ElfLoadSegment[];
}

const PT_LOAD = 1;
const EM_X86_64 = 62;

/**
 * Reads the ELF header and PT_LOAD program headers of `bytes`.
 * @param name used in error messages (e.g. `libpal.so`).
 */
export function parseElf(bytes: Uint8Array, name = 'PAL'): ElfImage {
  const fail = (what: string): never => {
    throw new EnclavifyError('SGX_BAD_PAL', `${name}: ${what}`);
  };
  if (bytes.length < 64) fail('too short to be an ELF file');
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    fail('not an ELF file (bad magic)');
  }
  if (bytes[4] !== 2) fail('not a 64-bit ELF file');
  if (bytes[5] !== 1) fail('not a little-endian ELF file');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (off: number): number => {
    const v = dv.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`64-bit field at offset ${off} is too large`);
    return Number(v);
  };
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64) fail(`machine ${machine} is not x86-64`);
  const entry = u64(24);
  const phoff = u64(32);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phnum === 0xffff) fail('extended program header numbering (PN_XNUM) is not supported');
  if (phentsize < 56) fail(`program header entry size ${phentsize} is too small`);
  if (phoff + phnum * phentsize > bytes.length) fail('program headers lie beyond the end of the file');

  const loads: ElfLoadSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue;
    const seg: ElfLoadSegment = {
      flags: dv.getUint32(ph + 4, true),
      offset: u64(ph + 8),
      vaddr: u64(ph + 16),
      filesz: u64(ph + 32),
      memsz: u64(ph + 40),
    };
    if (seg.offset + seg.filesz > bytes.length) {
      fail(`PT_LOAD segment ${loads.length} (offset 0x${seg.offset.toString(16)}) lies beyond the end of the file`);
    }
    if (seg.filesz > seg.memsz) fail(`PT_LOAD segment ${loads.length} has p_filesz > p_memsz`);
    loads.push(seg);
  }
  if (loads.length === 0) fail('has no PT_LOAD segment');
  return { type, entry, loads };
}
