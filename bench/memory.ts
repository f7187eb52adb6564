/** Memory readings for the in-process benches (run node with --expose-gc). */
import { readFileSync } from 'node:fs';

/** The process's peak RSS so far (VmHWM), MB. */
export const peakRssMB = (): number => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024);

/** Live memory in bytes (heap plus typed arrays) after two full collections; `who` names the bench in the error without --expose-gc. */
export function liveBytes(who: string): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error(`${who}: run node with --expose-gc`);
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
