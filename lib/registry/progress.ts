/**
 * Per-blob byte progress of pulls and pushes, as events of the library's one progress type,
 * throttled to about ten per second per blob (plus start and the final status).
 */
import { shortDigest } from '../oci/errors.js';
import { BYTE_EVENTS_PER_SECOND, formatBytes, type ProgressEvent, type ProgressListener } from '../oci/progress.js';

export type { ProgressEvent, ProgressListener } from '../oci/progress.js';
type ProgressPhase = 'pull' | 'push';

const INTERVAL_MS = 1000 / BYTE_EVENTS_PER_SECOND;

/** Emits the events of one blob's transfer. */
export class BlobProgress {
  private done = 0;
  private last = 0;
  constructor(
    private readonly listener: ProgressListener | undefined,
    private readonly phase: ProgressPhase,
    private readonly image: string,
    private readonly blob: string,
    private readonly total: number,
    private readonly what: string,
    /** 0-based index of the layer, for a layer blob. */
    private readonly layer?: number,
  ) {}

  private emit(status: NonNullable<ProgressEvent['status']>, message: string, level?: 'warning'): void {
    this.listener?.({
      phase: this.phase, message, image: this.image, blob: this.blob, bytesDone: this.done, bytesTotal: this.total, status,
      ...(this.layer !== undefined ? { layer: this.layer } : {}),
      ...(level ? { level } : {}),
    });
  }

  /** The one message of a transfer's start, progress and done events (renderers key on it). */
  private get line(): string {
    return `${this.verb()} ${this.what} ${shortDigest(this.blob)} (${formatBytes(this.total)})`;
  }

  start(): void {
    this.emit('start', this.line);
  }

  /** Counts bytes moved; `at` sets the absolute offset (a resumed transfer). */
  add(n: number, at?: number): void {
    this.done = at !== undefined ? at : this.done + n;
    if (n === 0) return;
    const now = Date.now();
    if (this.listener && now - this.last >= INTERVAL_MS) {
      this.last = now;
      this.emit('progress', this.line);
    }
  }

  /** A retry or resume the user may want to know about (a flaky network, a proxy). */
  retrying(why: string): void {
    this.emit('progress', `${this.verb()} ${this.what} ${shortDigest(this.blob)}: ${why}`, 'warning');
  }

  finish(status: 'done' | 'skipped' | 'mounted', from?: string): void {
    if (status === 'done') {
      this.done = this.total;
      this.emit('done', this.line);
      return;
    }
    this.emit(status, `${this.what} ${shortDigest(this.blob)}: ${status === 'skipped' ? 'already in the registry' : `mounted from ${from}`}`);
  }

  private verb(): string {
    return this.phase === 'push' ? 'pushing' : 'pulling';
  }
}
