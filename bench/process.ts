/**
 * Timing of whole processes for the benches: wall seconds, CPU seconds (user + system) and peak
 * RSS from /usr/bin/time, and medians. Never asserts: benchmarks are not tests.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** One process run. */
export interface Run { seconds: number; cpuSeconds: number; peakRssMB: number }

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs `cmd args` under /usr/bin/time (its report written into `tmp`); throws on a non-zero exit. */
export function timed(cmd: string, args: string[], tmp: string): Run {
  const f = path.join(tmp, 'time.out');
  // Wall time from our own clock (to the millisecond; /usr/bin/time's %e has 10 ms steps, as
  // coarse as the differences the registry bench looks for); CPU and RSS from /usr/bin/time.
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', f, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const [, m, u, s] = readFileSync(f, 'utf8').trim().split('\n').pop()!.split(' ');
  return { seconds: +wall.toFixed(3), peakRssMB: +(Number(m) / 1024).toFixed(1), cpuSeconds: +(Number(u) + Number(s)).toFixed(2) };
}
