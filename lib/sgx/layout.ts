/**
 * Gramine 1.9's enclave memory layout: which pages `gramine-sgx` adds to the enclave before EINIT,
 * where, with which SECINFO flags and contents. MRENCLAVE is a hash over exactly this list (see
 * measure.ts), so every address, order and byte here matters.
 *
 * From the top of the enclave (base + size) downwards: the manifest, SSA frames, TCS pages, TLS
 * pages, one stack and one signal stack per thread, the PAL's PT_LOAD segments; below the PAL the
 * heap ("free"), which without EDMM is added but not measured and with EDMM is not added at all.
 */
import { EnclavifyError } from '../oci/errors.js';
import {
  DEFAULT_ENCLAVE_BASE, ENCLAVE_SIG_STACK_SIZE, ENCLAVE_STACK_SIZE, GRAMINE_TLS, MMAP_MIN_ADDR,
  PAGE_SIZE, SECINFO_R, SECINFO_REG, SECINFO_TCS, SECINFO_W, SECINFO_X, SGX_GPR_SIZE, SSA_FRAME_NUM,
  SSA_FRAME_SIZE, STACK_PROTECTOR_CANARY_DEFAULT, TCS,
} from './constants.js';
import type { ElfImage } from './elf.js';

/** Names Gramine's signer gives the areas (its verbose output shows them). */
export type EnclaveAreaName =
  | 'manifest' | 'ssa' | 'tcs' | 'tls' | 'stack' | 'sig_stack' | 'code' | 'data' | 'free';

/** One contiguous run of pages added to the enclave, in the order they are added. */
export interface EnclaveArea {
  name: EnclaveAreaName;
  /** First byte (page aligned, absolute enclave address). */
  start: number;
  /** One past the last byte (page aligned). */
  end: number;
  /** SECINFO flags of every page: page type (REG 0x200 / TCS 0x100) and R 1, W 2, X 4. */
  secinfo: number;
  /** True if the pages' contents are measured (EEXTEND); false for the heap (EADD only). */
  measured: boolean;
  /** The bytes at `start` (shorter than the area: the rest is zero); absent: all zero. */
  content?: Uint8Array;
}

/** What decides the layout. */
export interface EnclaveLayoutOptions {
  /** `sgx.enclave_size` in bytes (a power of two). */
  enclaveSize: number;
  /** `sgx.max_threads`. */
  maxThreads: number;
  /** `sgx.edmm_enable`: with EDMM the heap is not added at build time. */
  edmm: boolean;
  /** The `.manifest.sgx` bytes exactly as measured (without the NUL Gramine appends). */
  manifestSgx: Uint8Array;
  /** The PAL (`libpal.so`) file bytes and its parsed ELF headers. */
  pal: { bytes: Uint8Array; elf: ElfImage };
}

const roundUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
const roundDown = (n: number): number => Math.floor(n / PAGE_SIZE) * PAGE_SIZE;

/** Gramine's page listing: `REG:RW-`. */
export function describeSecinfo(secinfo: number): string {
  const type = secinfo & SECINFO_TCS ? 'TCS' : 'REG';
  const r = secinfo & SECINFO_R ? 'R' : '-';
  const w = secinfo & SECINFO_W ? 'W' : '-';
  const x = secinfo & SECINFO_X ? 'X' : '-';
  return `${type}:${r}${w}${x}`;
}

/**
 * The area list in the format of `gramine-sgx-sign`'s verbose "Memory:" section, one line per
 * area: `    000000000ffff000-0000000010000000 [REG:R--] (manifest) measured`.
 */
export function formatEnclaveAreas(areas: readonly EnclaveArea[]): string[] {
  const hex = (n: number): string => n.toString(16).padStart(16, '0');
  return areas.map(
    (a) => `    ${hex(a.start)}-${hex(a.end)} [${describeSecinfo(a.secinfo)}] (${a.name})${a.measured ? ' measured' : ''}`,
  );
}

/**
 * Computes the enclave's pages in the order Gramine adds them: the measured areas from the top
 * down, each PAL segment separately, then (without EDMM) the unmeasured heap.
 * @throws EnclavifyError `SGX_ENCLAVE_TOO_SMALL` if the fixed areas do not fit above the heap floor.
 */
export function layoutGramineEnclave(opts: EnclaveLayoutOptions): EnclaveArea[] {
  const { enclaveSize, maxThreads, edmm } = opts;
  const base = DEFAULT_ENCLAVE_BASE;
  const heapMin = MMAP_MIN_ADDR;
  const rw = SECINFO_R | SECINFO_W | SECINFO_REG;

  // The loader maps the manifest NUL-terminated.
  const manifestBytes = new Uint8Array(opts.manifestSgx.length + 1);
  manifestBytes.set(opts.manifestSgx);

  const { elf, bytes: palBytes } = opts.pal;
  const palMin = Math.min(...elf.loads.map((s) => roundDown(s.vaddr)));
  const palMax = Math.max(...elf.loads.map((s) => roundUp(s.vaddr + s.memsz)));
  if (palMin !== 0) {
    // Gramine would then load the PAL at a fixed address; libpal.so is always linked at 0.
    throw new EnclavifyError('SGX_BAD_PAL', `PAL: first PT_LOAD segment is at 0x${palMin.toString(16)}, expected a position-independent object linked at 0`);
  }

  // Top-down placement, in Gramine's order.
  type Slot = { name: EnclaveAreaName; size: number; secinfo: number; start: number };
  const slots: Slot[] = [];
  const push = (name: EnclaveAreaName, size: number, secinfo: number): Slot => {
    const s = { name, size: roundUp(size), secinfo, start: 0 };
    slots.push(s);
    return s;
  };
  const manifest = push('manifest', manifestBytes.length, SECINFO_R | SECINFO_REG);
  const ssa = push('ssa', maxThreads * SSA_FRAME_SIZE * SSA_FRAME_NUM, rw);
  const tcs = push('tcs', maxThreads * TCS.SIZE, SECINFO_TCS);
  const tls = push('tls', maxThreads * PAGE_SIZE, rw);
  const stacks = Array.from({ length: maxThreads }, () => push('stack', ENCLAVE_STACK_SIZE, rw));
  const sigStacks = Array.from({ length: maxThreads }, () => push('sig_stack', ENCLAVE_SIG_STACK_SIZE, rw));
  const pal = push('data', palMax - palMin, SECINFO_REG); // placeholder name; split into segments below

  let top = base + enclaveSize;
  for (const s of slots) {
    s.start = top - s.size;
    if (s.start < heapMin) {
      throw new EnclavifyError('SGX_ENCLAVE_TOO_SMALL',
        `sgx.enclave_size 0x${enclaveSize.toString(16)} is not large enough for ${maxThreads} threads, the manifest and the PAL`);
    }
    top = s.start;
  }
  const heapMax = pal.start;

  // TCS and TLS pages: one of each per thread, pointing at that thread's SSA, stacks and TLS.
  const tcsData = new Uint8Array(tcs.size);
  const tlsData = new Uint8Array(tls.size);
  const tcsView = new DataView(tcsData.buffer);
  const tlsView = new DataView(tlsData.buffer);
  const palEntry = pal.start + elf.entry - base;
  for (let t = 0; t < maxThreads; t++) {
    const ssaAddr = ssa.start + SSA_FRAME_SIZE * SSA_FRAME_NUM * t;
    const c = t * TCS.SIZE;
    tcsView.setBigUint64(c + TCS.OSSA, BigInt(ssaAddr - base), true);
    tcsView.setUint32(c + TCS.NSSA, SSA_FRAME_NUM, true);
    tcsView.setBigUint64(c + TCS.OENTRY, BigInt(palEntry), true);
    tcsView.setBigUint64(c + TCS.OGS_BASE, BigInt(tls.start - base + PAGE_SIZE * t), true);
    tcsView.setUint32(c + TCS.OFS_LIMIT, 0xfff, true);
    tcsView.setUint32(c + TCS.OGS_LIMIT, 0xfff, true);

    const l = t * PAGE_SIZE;
    const set = (off: number, v: number | bigint): void => tlsView.setBigUint64(l + off, BigInt(v), true);
    set(GRAMINE_TLS.SELF, tls.start + PAGE_SIZE * t);
    set(GRAMINE_TLS.STACK_PROTECTOR_CANARY, STACK_PROTECTOR_CANARY_DEFAULT);
    set(GRAMINE_TLS.ENCLAVE_SIZE, enclaveSize);
    set(GRAMINE_TLS.TCS_OFFSET, tcs.start - base + TCS.SIZE * t);
    set(GRAMINE_TLS.INITIAL_STACK_ADDR, stacks[t].start + stacks[t].size);
    set(GRAMINE_TLS.SIG_STACK_LOW, sigStacks[t].start);
    set(GRAMINE_TLS.SIG_STACK_HIGH, sigStacks[t].start + sigStacks[t].size);
    set(GRAMINE_TLS.SSA, ssaAddr);
    set(GRAMINE_TLS.GPR, ssaAddr + SSA_FRAME_SIZE - SGX_GPR_SIZE);
    set(GRAMINE_TLS.MANIFEST_SIZE, manifestBytes.length);
    set(GRAMINE_TLS.HEAP_MIN, heapMin);
    set(GRAMINE_TLS.HEAP_MAX, heapMax);
  }

  const contents = new Map<Slot, Uint8Array>([[manifest, manifestBytes], [tcs, tcsData], [tls, tlsData]]);
  const areas: EnclaveArea[] = [];
  for (const s of slots) {
    if (s === pal) continue;
    const area: EnclaveArea = { name: s.name, start: s.start, end: s.start + s.size, secinfo: s.secinfo, measured: true };
    const content = contents.get(s);
    if (content) area.content = content;
    areas.push(area);
  }

  // The PAL: each PT_LOAD segment separately, in program-header order, with its own permissions.
  const palBase = pal.start - palMin;
  for (const seg of elf.loads) {
    let secinfo = SECINFO_REG;
    if (seg.flags & 4) secinfo |= SECINFO_R;
    if (seg.flags & 2) secinfo |= SECINFO_W;
    if (seg.flags & 1) secinfo |= SECINFO_X;
    const start = roundDown(palBase + seg.vaddr);
    const end = roundUp(palBase + seg.vaddr + seg.memsz);
    // Page k of the segment holds file bytes from rounddown(offset) + k pages, restricted to
    // [offset, offset + filesz); everything else is zero.
    const content = new Uint8Array(end - start);
    const fileStart = roundDown(seg.offset);
    content.set(palBytes.subarray(seg.offset, seg.offset + seg.filesz), seg.offset - fileStart);
    areas.push({ name: secinfo & SECINFO_X ? 'code' : 'data', start, end, secinfo, measured: true, content });
  }

  // The heap: with EDMM added on demand at run time, otherwise added now but not measured
  // (Gramine zeroes it at start-up).
  if (!edmm && heapMax > heapMin) {
    areas.push({ name: 'free', start: heapMin, end: heapMax, secinfo: SECINFO_R | SECINFO_W | SECINFO_X | SECINFO_REG, measured: false });
  }
  return areas;
}
