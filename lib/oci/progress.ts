/**
 * Progress: one event type for the whole library. Long operations take
 * `onProgress?: ProgressListener` and call it with structured events; the CLI renders them
 * (lib/cli/progress.ts). Byte events are throttled here, by the emitter ({@link ByteProgress}).
 */
import { Transform, type TransformCallback } from 'node:stream';

/** What an operation is doing. */
export type ProgressPhase =
  | 'open' | 'scan' | 'validate' | 'transform' | 'classify' | 'encrypt' | 'layer'
  | 'write' | 'pull' | 'push' | 'verify' | 'sign' | 'inspect' | 'cleanup';

/** One progress event. */
export interface ProgressEvent {
  phase: ProgressPhase;
  /** One human-readable line; never a secret. */
  message: string;
  /** 'warning': something the user should read; the CLI prints warnings on stderr even with --quiet (which hides info events). */
  level?: 'info' | 'warning';
  /** Name of the transform emitting it. */
  transform?: string;
  /** Image name, for messages. */
  image?: string;
  /** 0-based layer index. */
  layer?: number;
  /** Digest of the blob being moved. */
  blob?: string;
  /** File inside the image. */
  path?: string;
  bytesDone?: number;
  bytesTotal?: number;
  /** For blob transfers: what happened to the blob. */
  status?: 'start' | 'progress' | 'done' | 'skipped' | 'mounted';
}

/** Receives progress events. */
export type ProgressListener = (event: ProgressEvent) => void;

/** At most this many byte events per second per blob (plus start and done). */
export const BYTE_EVENTS_PER_SECOND = 10;

/**
 * Byte progress of one blob or stream: `start`, then `add` as bytes move (emitting at most
 * {@link BYTE_EVENTS_PER_SECOND} `progress` events a second), then `done` (or `skipped`). A missing
 * listener makes every call a no-op.
 */
export class ByteProgress {
  private bytes = 0;
  private last = 0;
  private finished = false;
  private readonly interval = 1000 / BYTE_EVENTS_PER_SECOND;

  constructor(
    private readonly listener: ProgressListener | undefined,
    /** The fields every event of this blob carries (phase, message, layer, blob...). */
    private readonly base: ProgressEvent,
    /** Total bytes, when known. */
    private readonly total?: number,
    /** Milliseconds now (tests pass a fake clock). */
    private readonly now: () => number = Date.now,
  ) {}

  /** Bytes so far. */
  get done(): number {
    return this.bytes;
  }

  private emit(status: NonNullable<ProgressEvent['status']>): void {
    this.listener?.({ ...this.base, status, bytesDone: this.bytes, ...(this.total !== undefined ? { bytesTotal: this.total } : {}) });
  }

  start(): this {
    this.last = this.now();
    this.emit('start');
    return this;
  }

  add(n: number): void {
    this.bytes += n;
    if (!this.listener) return;
    const now = this.now();
    if (now - this.last >= this.interval) {
      this.last = now;
      this.emit('progress');
    }
  }

  finish(status: 'done' | 'skipped' = 'done'): void {
    if (this.finished) return;
    this.finished = true;
    this.emit(status);
  }
}

/** A pass-through stream that counts the bytes flowing through it into `progress`. */
export function progressTap(progress: ByteProgress): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      progress.add(chunk.length);
      cb(null, chunk);
    },
  });
}

/** Bytes for messages: `12.3 MB`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
