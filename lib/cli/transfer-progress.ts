/**
 * How the CLI shows blob transfers (registry pulls and pushes): progress bars on stderr when it
 * is a terminal (cli-progress), one line per blob otherwise, nothing with --quiet except
 * warnings (retries), which are always shown.
 */
import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';
import type { ProgressEvent, ProgressListener } from '../registry/progress.js';
import { formatBytes } from '../registry/progress.js';
import type { Io } from './command.js';

/** A listener for transfer events and the call that ends the display. */
export interface TransferDisplay {
  listener: ProgressListener;
  /** Removes the bars (before the command prints its result). */
  stop(): void;
}

/** The display for a command's I/O: bars on a terminal, lines otherwise, silent when quiet. */
export function transferDisplay(io: Io, opts: { quiet?: boolean }): TransferDisplay {
  const warn = (e: ProgressEvent) => io.err(`enclavify: warning: ${e.message}`);
  if (opts.quiet) return { listener: (e) => { if (e.level === 'warning') warn(e); }, stop: () => undefined };
  if (!io.tty) {
    return {
      listener: (e) => {
        if (e.level === 'warning') warn(e);
        else if (e.status === 'done' || e.status === 'skipped' || e.status === 'mounted') io.progress(e.status === 'done' && e.bytesTotal !== undefined && e.blob ? `${e.message} (${formatBytes(e.bytesTotal)})` : e.message);
      },
      stop: () => undefined,
    };
  }
  // Loaded only for a terminal: other runs do not pay for it at start-up.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
  const multi = new cliProgress.MultiBar({
    stream: process.stderr,
    format: ' {what} |{bar}| {percentage}% {done}/{size}',
    barCompleteChar: '█',
    barIncompleteChar: '░',
    hideCursor: true,
    clearOnComplete: true,
    autopadding: true,
    fps: 10,
  });
  const bars = new Map<string, CliProgress.SingleBar>();
  const key = (e: ProgressEvent) => `${e.phase} ${e.blob}`;
  return {
    listener: (e) => {
      // multi.log() lines are written at the next redraw: force one so none is lost.
      if (e.level === 'warning') {
        multi.log(`enclavify: warning: ${e.message}\n`);
        multi.update();
        return;
      }
      if (!e.blob) {
        multi.log(`enclavify: ${e.message}\n`);
        multi.update();
        return;
      }
      const total = e.bytesTotal ?? 0;
      let bar = bars.get(key(e));
      const fields = (done: number) => ({ what: `${e.phase === 'push' ? 'push' : 'pull'} ${e.blob!.slice(7, 19)}`, done: formatBytes(done), size: formatBytes(total) });
      if (e.status === 'start' && !bar) {
        bar = multi.create(Math.max(1, total), 0, fields(0));
        bars.set(key(e), bar);
      } else if (e.status === 'progress' && bar) {
        bar.update(e.bytesDone ?? 0, fields(e.bytesDone ?? 0));
      } else if (e.status === 'done' || e.status === 'skipped' || e.status === 'mounted') {
        multi.log(`enclavify: ${e.message}\n`);
        if (bar) {
          bar.update(Math.max(1, total), fields(total));
          multi.remove(bar);
          bars.delete(key(e));
        }
        multi.update();
      }
    },
    stop: () => {
      multi.update();
      multi.stop();
    },
  };
}
