/**
 * MRENCLAVE: the SHA-256 the CPU accumulates while the enclave is built (SDM vol. 3D, "Enclave
 * Measurement"), computed here without SGX. ECREATE, then for every page EADD (offset and SECINFO
 * flags) and, for measured pages, 16 EEXTENDs (offset and 256 bytes of content). Each record is a
 * 64-byte block fed to the same SHA-256.
 */
import { createHash, type Hash } from 'node:crypto';
import { PAGE_SIZE, SSA_FRAME_SIZE } from './constants.js';
import { parseElf } from './elf.js';
import { layoutGramineEnclave, type EnclaveArea } from './layout.js';
import { readGramineSgxSettings } from './manifest.js';

/** Input of {@link measureGramineEnclave}. */
export interface MeasureOptions {
  /** The expanded manifest (`.manifest.sgx`) exactly as it will ship; its bytes are measured. */
  manifestSgx: Uint8Array | string;
  /** The PAL, Gramine's `libpal.so` for SGX (e.g. `/usr/lib/x86_64-linux-gnu/gramine/sgx/libpal.so`). */
  pal: Uint8Array;
}

/** Result of {@link measureGramineEnclave}. */
export interface Measurement {
  /** MRENCLAVE, lowercase hex (64 characters). */
  mrenclave: string;
  /** The pages added to the enclave, in order (without their contents). */
  areas: Omit<EnclaveArea, 'content'>[];
}

/**
 * Lays out the Gramine 1.9 enclave for `manifestSgx` and `pal` and computes its MRENCLAVE.
 * Enclave size, thread count and EDMM are read from the manifest's `sgx` table (with Gramine's
 * defaults). Deterministic and offline.
 */
export function measureGramineEnclave(opts: MeasureOptions): Measurement {
  const manifestSgx = typeof opts.manifestSgx === 'string' ? new TextEncoder().encode(opts.manifestSgx) : opts.manifestSgx;
  const settings = readGramineSgxSettings(manifestSgx);
  const areas = layoutGramineEnclave({
    enclaveSize: settings.enclaveSize,
    maxThreads: settings.maxThreads,
    edmm: settings.edmm,
    manifestSgx,
    pal: { bytes: opts.pal, elf: parseElf(opts.pal, 'PAL') },
  });
  const mrenclave = Buffer.from(measureAreas(settings.enclaveSize, areas)).toString('hex');
  return { mrenclave, areas: areas.map(({ content: _content, ...a }) => a) };
}

/**
 * The raw measurement of an enclave of `enclaveSize` bytes built from `areas` (32 bytes).
 * Enclave base is 0, so page offsets equal addresses.
 */
export function measureAreas(enclaveSize: number, areas: readonly EnclaveArea[]): Uint8Array {
  const m = new MeasurementLog(createHash('sha256'));
  m.ecreate(SSA_FRAME_SIZE / PAGE_SIZE, enclaveSize);
  for (const area of areas) {
    for (let page = area.start; page < area.end; page += PAGE_SIZE) {
      m.eadd(page, area.secinfo);
      if (!area.measured) continue;
      for (let i = 0; i < PAGE_SIZE; i += 256) {
        const rel = page - area.start + i;
        m.eextend(page + i, area.content, rel);
      }
    }
  }
  return m.digest();
}

/** Stages measurement records in a buffer so SHA-256 gets large updates (millions of EADDs). */
class MeasurementLog {
  private readonly buf = Buffer.alloc(1 << 20);
  private readonly view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private pos = 0;

  constructor(private readonly hash: Hash) {}

  /** Reserves a record: its 64-byte header is `tag` then zeros; `extra` content bytes follow. */
  private record(tag: Uint8Array, extra: number): number {
    if (this.pos + 64 + extra > this.buf.length) this.flush();
    const at = this.pos;
    this.buf.set(tag, at); // tags are 64-byte templates: ASCII name, zero padded
    this.pos += 64 + extra;
    return at;
  }

  /** A u64 field; addresses stay below 2^53, so two u32 writes avoid BigInt. */
  private u64(at: number, v: number): void {
    this.view.setUint32(at, v % 0x100000000, true);
    this.view.setUint32(at + 4, Math.floor(v / 0x100000000), true);
  }

  /** ECREATE: "ECREATE\0", SSAFRAMESIZE in pages (u32), SIZE (u64), 44 zero bytes. */
  ecreate(ssaFramePages: number, size: number): void {
    const at = this.record(TAG_ECREATE, 0);
    this.view.setUint32(at + 8, ssaFramePages, true);
    this.u64(at + 12, size);
  }

  /** EADD: "EADD\0\0\0\0", page offset (u64), SECINFO flags (u64), 40 zero bytes. */
  eadd(offset: number, secinfo: number): void {
    const at = this.record(TAG_EADD, 0);
    this.u64(at + 8, offset);
    this.u64(at + 16, secinfo);
  }

  /** EEXTEND: "EEXTEND\0", offset (u64), 48 zero bytes, then the 256 bytes at that offset. */
  eextend(offset: number, content: Uint8Array | undefined, rel: number): void {
    const at = this.record(TAG_EEXTEND, 256);
    this.u64(at + 8, offset);
    const data = at + 64;
    let n = 0;
    if (content && rel < content.length) {
      const chunk = content.subarray(rel, Math.min(rel + 256, content.length));
      this.buf.set(chunk, data);
      n = chunk.length;
    }
    if (n < 256) this.buf.fill(0, data + n, data + 256);
  }

  private flush(): void {
    if (this.pos > 0) this.hash.update(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  digest(): Uint8Array {
    this.flush();
    return new Uint8Array(this.hash.digest());
  }
}

function tag(name: string): Uint8Array {
  const t = new Uint8Array(64);
  t.set(Buffer.from(name, 'latin1'));
  return t;
}
const TAG_ECREATE = tag('ECREATE');
const TAG_EADD = tag('EADD');
const TAG_EEXTEND = tag('EEXTEND');
