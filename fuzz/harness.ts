/**
 * Runs fuzzing campaigns in a child process watched by a timer: an iteration that makes no
 * progress for `stallSeconds` is a hang (the child is killed and the finding names its seed,
 * target and iteration: a hang in a synchronous loop could not be caught in-process).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Finding, TargetName } from './targets.js';

export interface FuzzOptions {
  seeds: number[];
  /** Iterations per seed and target. */
  iterations: number;
  /** Stop after this long (the spec bounds its run with it too). */
  seconds?: number;
  targets?: TargetName[];
  /** No progress for this long is a hang (default 30 s: CPUs may be shared). */
  stallSeconds?: number;
}

export interface FuzzResult {
  findings: Finding[];
  runs: number;
  origin: string;
}

export function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const job = { seeds: options.seeds, iterations: options.iterations, seconds: options.seconds, targets: options.targets };
  const child = fork(worker, [JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const findings: Finding[] = [];
  let last: { target: TargetName; seed: number; iteration: number } | undefined;
  let runs = 0;
  let origin = '?';
  let done = false;
  return new Promise((resolve) => {
    const stallMs = (options.stallSeconds ?? 30) * 1000;
    // Starting up (tsx compiling the library on a busy machine) is not an iteration: a long grace.
    const startupMs = Math.max(stallMs, 180_000);
    let timer = setTimeout(onStartupStall, startupMs);
    function onStartupStall() {
      findings.push({ target: 'tar', seed: -1, iteration: -1, kind: 'crash', message: `the fuzzing process did not start within ${startupMs / 1000} s` });
      child.kill('SIGKILL');
    }
    function onStall() {
      findings.push({ target: last?.target ?? 'tar', seed: last?.seed ?? -1, iteration: last?.iteration ?? -1, kind: 'hang', message: `no progress for ${stallMs / 1000} s` });
      child.kill('SIGKILL');
    }
    child.on('message', (m: { type: string; finding?: Finding; target?: TargetName; seed?: number; iteration?: number; runs?: number; origin?: string }) => {
      clearTimeout(timer);
      timer = setTimeout(onStall, stallMs);
      if (m.type === 'tick') last = { target: m.target!, seed: m.seed!, iteration: m.iteration! };
      else if (m.type === 'finding') findings.push(m.finding!);
      else if (m.type === 'done') {
        done = true;
        runs = m.runs!;
        origin = m.origin!;
      }
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (!done && !findings.some((f) => f.kind === 'hang')) {
        findings.push({ target: last?.target ?? 'tar', seed: last?.seed ?? -1, iteration: last?.iteration ?? -1, kind: 'crash', message: `the fuzzing process died (${sig ?? code})` });
      }
      resolve({ findings, runs, origin });
    });
  });
}
