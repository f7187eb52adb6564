/**
 * The CLI's rendering of progress events on stderr: info lines (hidden by --quiet), warnings
 * always (`warning:`), and, on a terminal, one status line redrawn in place for the blobs and
 * layers whose bytes are moving. Small on purpose: transfers (pull/push) add their own fields
 * through {@link statusOf}.
 */
import { formatBytes, type ProgressEvent, type ProgressListener } from '../oci/progress.js';

/** Where the renderer writes. */
export interface ProgressOutput {
  /** Writes one line (the newline is added). */
  line(text: string): void;
  /** A terminal to redraw the status line on; absent: lines only. */
  tty?: { write(raw: string): void; columns?: number | undefined } | undefined;
}

const CLEAR = '\r\x1b[K';

const VERB: Partial<Record<ProgressEvent['phase'], string>> = { write: 'writing', scan: 'scanning', validate: 'validating', layer: 'building', pull: 'pulling', push: 'pushing', verify: 'verifying' };

/** The status-line text of one active byte stream: `writing layer 2 45% (12.3 MB/27.0 MB)`. */
export function statusOf(e: ProgressEvent): string {
  const done = e.bytesDone ?? 0;
  const label = e.layer !== undefined ? `${VERB[e.phase] ?? e.phase} layer ${e.layer}` : e.message;
  if (e.bytesTotal === undefined) return `${label} ${formatBytes(done)}`;
  const pct = e.bytesTotal > 0 ? Math.floor((done / e.bytesTotal) * 100) : 100;
  // Registry transfers get a bar: the blobs of a pull or push move side by side.
  const bar = e.phase === 'pull' || e.phase === 'push' ? ` [${'#'.repeat(Math.round(pct / 10)).padEnd(10, '.')}]` : '';
  return `${label}${bar} ${pct}% (${formatBytes(done)}/${formatBytes(e.bytesTotal)})`;
}

/** Renders events; `listener` is what commands pass as `onProgress`. */
export class ProgressRenderer {
  private readonly active = new Map<string, ProgressEvent>();
  private drawn = false;
  readonly listener: ProgressListener = (e) => this.handle(e);

  constructor(
    private readonly out: ProgressOutput,
    private readonly quiet: boolean,
  ) {}

  private key(e: ProgressEvent): string {
    return `${e.phase}\0${e.blob ?? ''}\0${e.layer ?? ''}\0${e.message}`;
  }

  /** Prints a line above the status line. */
  private print(text: string): void {
    this.clear();
    this.out.line(text);
    this.redraw();
  }

  handle(e: ProgressEvent): void {
    if (e.level === 'warning') return this.print(`enclavify: warning: ${e.message}`);
    if (this.quiet) return;
    if (e.status === undefined && e.bytesDone === undefined) return this.print(`enclavify: ${e.message}`);
    // Byte progress: blob transfers get a line when they start; the rest only feeds the status line.
    const key = this.key(e);
    switch (e.status) {
      case 'start':
        if (e.blob !== undefined) this.print(`enclavify: ${e.message}`);
        if (this.out.tty) this.active.set(key, e);
        break;
      case 'skipped':
      case 'mounted':
        // A blob the registry already had, or linked from another repository: its one line.
        if (e.blob !== undefined) this.print(`enclavify: ${e.message}`);
        this.active.delete(key);
        break;
      case 'done':
        this.active.delete(key);
        break;
      default:
        if (this.out.tty) this.active.set(key, e);
    }
    this.redraw();
  }

  private clear(): void {
    if (this.drawn) this.out.tty?.write(CLEAR);
    this.drawn = false;
  }

  private redraw(): void {
    const tty = this.out.tty;
    if (!tty) return;
    if (!this.active.size) return this.clear();
    const width = Math.max(20, (tty.columns || 80) - 1);
    let text = `enclavify: ${[...this.active.values()].map(statusOf).join(' | ')}`;
    if (text.length > width) text = `${text.slice(0, width - 3)}...`;
    tty.write(CLEAR + text);
    this.drawn = true;
  }

  /** Removes the status line (call before the command's last output). */
  finish(): void {
    this.active.clear();
    this.clear();
  }
}
