/** Captures progress events as lines (`warning: ` before warnings, as the CLI prints them). */
import type { ProgressEvent, ProgressListener } from '../../lib/oci/progress.js';

/** One line per event (byte events: their start only). */
export function progressLine(e: ProgressEvent): string | undefined {
  if (e.status !== undefined && e.status !== 'start') return undefined;
  return `${e.level === 'warning' ? 'warning: ' : ''}${e.message}`;
}

/** A listener that appends each event's line to `lines`. */
export function progressTo(lines: string[]): ProgressListener {
  return (e) => {
    const l = progressLine(e);
    if (l !== undefined) lines.push(l);
  };
}
