/**
 * Where the writer assembles an encrypted file before it can be read out. The metadata node and
 * the MHT nodes depend on everything after them, so output is staged: in memory for small files,
 * in a private temporary file (positional writes) for larger ones.
 *
 * The writer also parks each MHT node's data-node pairs (keys and tags) until the node can be
 * sealed. In a temporary file these are protected with an ephemeral AES-GCM key that lives only in
 * memory, so node keys never reach the disk in the clear.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { CryptoBackend } from '../../crypto/backend.js';
import { NODE_SIZE } from './format.js';
import { EnclavifyError } from '../../oci/errors.js';
import { makeTempDir, removeTemp } from '../../oci/temp.js';
import { ensureFreeSpace, noSpaceError } from '../../store/space.js';
import { tmpdir } from 'node:os';

/** Positional node store for one file being written. */
export interface Staging {
  /** Whether the staged bytes live in a temporary file. */
  readonly onDisk: boolean;
  /** Writes `bytes` (at most one node) at the start of physical node `physical`. */
  put(physical: number, bytes: Uint8Array): Promise<void>;
  /** Keeps `bytes` (private, at most 4080 bytes) in the slot of physical node `physical` until `unpark`. */
  park(physical: number, bytes: Uint8Array): Promise<void>;
  /** Returns the `length` bytes parked at `physical`. */
  unpark(physical: number, length: number): Promise<Uint8Array>;
  /** Flushes pending writes; the staged file is complete afterwards. */
  finish(): Promise<void>;
  /** A Readable of the whole staged file (call after `finish`). */
  stream(): Readable;
  /** Releases memory / removes the temporary file. Idempotent. */
  dispose(): Promise<void>;
}

/** Stages in one Buffer of the final size. */
export class MemoryStaging implements Staging {
  readonly onDisk = false;
  private buf: Buffer | undefined;

  constructor(diskSize: number) {
    this.buf = Buffer.alloc(diskSize);
  }

  private get bytes(): Buffer {
    if (!this.buf) throw new EnclavifyError('DISPOSED', 'encrypted file staging was disposed');
    return this.buf;
  }

  async put(physical: number, bytes: Uint8Array): Promise<void> {
    this.bytes.set(bytes, physical * NODE_SIZE);
  }

  async park(physical: number, bytes: Uint8Array): Promise<void> {
    // Memory is private: the pairs can sit in the node's slot until it is overwritten.
    this.bytes.set(bytes, physical * NODE_SIZE);
  }

  async unpark(physical: number, length: number): Promise<Uint8Array> {
    const off = physical * NODE_SIZE;
    return new Uint8Array(this.bytes.subarray(off, off + length));
  }

  private finished = false;

  async finish(): Promise<void> {
    this.finished = true;
  }

  stream(): Readable {
    const buf = this.bytes;
    return Readable.from(
      (function* () {
        for (let off = 0; off < buf.length; off += 1 << 16) yield buf.subarray(off, off + (1 << 16));
      })(),
    );
  }

  async dispose(): Promise<void> {
    // Before finish the buffer may hold parked key pairs: wipe them. After finish it holds only
    // ciphertext, and chunks handed out by stream() may still sit in a consumer's queue (a tar
    // writer passes them on zero-copy), so it must not be overwritten.
    if (!this.finished) this.buf?.fill(0);
    this.buf = undefined;
  }
}

/** Nodes buffered before one positional write (contiguous runs are typical: 96 data nodes). */
const WRITE_BATCH_NODES = 128;

/** Stages in a temporary file, created with mode 0600 in its own directory. */
export class FileStaging implements Staging {
  readonly onDisk = true;
  // Two batch buffers: one fills while the other is being written (overlaps I/O with crypto).
  private pending = Buffer.alloc(WRITE_BATCH_NODES * NODE_SIZE);
  private spare = Buffer.alloc(WRITE_BATCH_NODES * NODE_SIZE);
  private pendingStart = 0;
  private pendingNodes = 0;
  private inflight: Promise<void> | undefined;
  private writeError: unknown;
  private disposed = false;
  /** Ephemeral key protecting parked node pairs; never leaves memory. */
  private readonly parkKey: Uint8Array;

  private constructor(
    private readonly dir: string,
    readonly file: string,
    private fh: FileHandle | undefined,
    private readonly backend: CryptoBackend,
  ) {
    this.parkKey = backend.randomBytes(16);
  }

  /** Creates the temporary directory and file under `tmpDir` (default: the OS temp dir). */
  static async create(opts: { tmpDir?: string | undefined; backend: CryptoBackend; size?: number | undefined; what?: string | undefined }): Promise<FileStaging> {
    // Before anything is written: a file larger than the free space fails now, with the numbers.
    if (opts.size !== undefined) await ensureFreeSpace(opts.tmpDir ?? tmpdir(), opts.size, `staging the encrypted file ${opts.what ?? ''}`.trimEnd(), 'temporary directory');
    const dir = await makeTempDir('enclavify-pf-', opts.tmpDir);
    const file = path.join(dir, 'staged.pf');
    try {
      const fh = await open(file, 'w+', 0o600);
      return new FileStaging(dir, file, fh, opts.backend);
    } catch (err) {
      await removeTemp(dir);
      throw err;
    }
  }

  private get handle(): FileHandle {
    if (!this.fh) throw new EnclavifyError('DISPOSED', `encrypted file staging ${this.file} was disposed or finished`);
    return this.fh;
  }

  /** Starts writing the pending batch; returns once the previous write has finished. */
  private async flush(): Promise<void> {
    if (this.pendingNodes === 0) return;
    const buf = this.pending;
    const len = this.pendingNodes * NODE_SIZE;
    const pos = this.pendingStart * NODE_SIZE;
    await this.settle();
    this.pending = this.spare; // free again: its write has completed
    this.spare = buf;
    this.pendingNodes = 0;
    // The rejection is kept and rethrown by settle(), never left unhandled.
    this.inflight = this.handle.write(buf, 0, len, pos).then(
      () => {},
      (err: unknown) => {
        this.writeError = err;
      },
    );
  }

  /** Waits for the write in flight, rethrowing its error. */
  private async settle(): Promise<void> {
    await this.inflight;
    this.inflight = undefined;
    if (this.writeError) throw (await noSpaceError(this.writeError, this.file, 'staging an encrypted file in the temporary directory')) ?? this.writeError;
  }

  /** Writes everything pending and waits for it. */
  private async drain(): Promise<void> {
    await this.flush();
    await this.settle();
  }

  async put(physical: number, bytes: Uint8Array): Promise<void> {
    if (bytes.length < NODE_SIZE) {
      // Partial nodes are rare (parked pairs, metadata): write them directly.
      await this.drain();
      await this.handle.write(bytes, 0, bytes.length, physical * NODE_SIZE);
      return;
    }
    const contiguous = this.pendingNodes > 0 && physical === this.pendingStart + this.pendingNodes;
    if (!contiguous || this.pendingNodes === WRITE_BATCH_NODES) {
      await this.flush();
      this.pendingStart = physical;
    }
    this.pending.set(bytes, this.pendingNodes * NODE_SIZE);
    this.pendingNodes++;
  }

  private parkIv(physical: number): Uint8Array {
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setBigUint64(4, BigInt(physical), true);
    return iv;
  }

  async park(physical: number, bytes: Uint8Array): Promise<void> {
    // Each physical slot is parked at most once per writer, so (parkKey, IV) never repeats.
    const { ciphertext, tag } = this.backend.aesGcmEncrypt(this.parkKey, this.parkIv(physical), bytes);
    const sealed = new Uint8Array(bytes.length + 16);
    sealed.set(ciphertext);
    sealed.set(tag, bytes.length);
    await this.put(physical, sealed);
  }

  async unpark(physical: number, length: number): Promise<Uint8Array> {
    await this.drain();
    const sealed = Buffer.alloc(length + 16);
    const { bytesRead } = await this.handle.read(sealed, 0, sealed.length, physical * NODE_SIZE);
    if (bytesRead !== sealed.length) throw new EnclavifyError('IO_ERROR', `temporary file ${this.file} is short at node ${physical}`);
    // A failure here means someone modified our private temporary file.
    return this.backend.aesGcmDecrypt(this.parkKey, this.parkIv(physical), sealed.subarray(0, length), sealed.subarray(length));
  }

  async finish(): Promise<void> {
    await this.drain();
    const fh = this.handle;
    this.fh = undefined;
    this.pending = this.spare = Buffer.alloc(0);
    this.parkKey.fill(0);
    await fh.close();
  }

  stream(): Readable {
    if (this.disposed) throw new EnclavifyError('DISPOSED', `encrypted file staging ${this.file} was disposed`);
    return createReadStream(this.file, { highWaterMark: 1 << 20 });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const fh = this.fh;
    this.fh = undefined;
    this.parkKey.fill(0);
    await this.inflight; // never rejects (errors are captured)
    await fh?.close().catch(() => {});
    await removeTemp(this.dir);
  }
}
