/**
 * Per-blob byte progress of pulls and pushes, as events of the library's one progress type,
 * throttled to about ten per second per blob (plus start and the final status).
 */
import { shortDigest } from '../oci/errors.js';

// The library's ProgressEvent (SHAPES.md, lib/oci/progress.ts once the api branch lands); the
// subset the registry emits, declared here until then.
export type ProgressPhase = 'pull' | 'push';
export interface ProgressEvent {
  phase: 'open' | 'scan' | 'validate' | 'transform' | 'classify' | 'encrypt' | 'layer' | 'write' | 'pull' | 'push' | 'verify' | 'sign' | 'inspect' | 'cleanup';
  message: string;
  level?: 'info' | 'warning';
  transform?: string;
  image?: string;
  layer?: number;
  blob?: string;
  path?: string;
  bytesDone?: number;
  bytesTotal?: number;
  status?: 'start' | 'progress' | 'done' | 'skipped' | 'mounted';
}
export type ProgressListener = (event: ProgressEvent) => void;

const INTERVAL_MS = 100;

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
  ) {}

  private emit(status: ProgressEvent['status'], message: string, level?: 'warning'): void {
    this.listener?.({
      phase: this.phase, message, image: this.image, blob: this.blob, bytesDone: this.done, bytesTotal: this.total, status,
      ...(level ? { level } : {}),
    });
  }

  start(): void {
    this.emit('start', `${this.verb()} ${this.what} ${shortDigest(this.blob)} (${formatBytes(this.total)})`);
  }

  /** Counts bytes moved; `at` sets the absolute offset (a resumed transfer). */
  add(n: number, at?: number): void {
    this.done = at !== undefined ? at : this.done + n;
    if (n === 0) return;
    const now = Date.now();
    if (this.listener && now - this.last >= INTERVAL_MS) {
      this.last = now;
      this.emit('progress', `${this.verb()} ${this.what} ${shortDigest(this.blob)}: ${formatBytes(this.done)} of ${formatBytes(this.total)}`);
    }
  }

  /** A retry or resume the user may want to know about (a flaky network, a proxy). */
  retrying(why: string): void {
    this.emit('progress', `${this.verb()} ${this.what} ${shortDigest(this.blob)}: ${why}`, 'warning');
  }

  finish(status: 'done' | 'skipped' | 'mounted', from?: string): void {
    if (status === 'done') this.done = this.total;
    const how = status === 'done' ? (this.phase === 'push' ? 'pushed' : 'pulled') : status === 'skipped' ? 'already in the registry' : `mounted from ${from}`;
    this.emit(status, `${this.what} ${shortDigest(this.blob)}: ${how}`);
  }

  private verb(): string {
    return this.phase === 'push' ? 'pushing' : 'pulling';
  }
}

/** `12.3 MB` (powers of 1000, as skopeo and docker print). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n, i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}
