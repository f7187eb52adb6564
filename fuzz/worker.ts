/**
 * The fuzzing process: runs iterations of the targets for the seeds given on the command line and
 * reports to its parent (fuzz/harness.ts) over IPC: a tick before each iteration (so a hang is
 * pinned to its seed and iteration), each finding, and a summary at the end.
 * argv: JSON {seeds: number[], iterations: number, seconds?: number, targets?: string[]}
 */
import { loadSeeds } from './seeds.js';
import { Rng } from './mutate.js';
import { cleanup, judge, runTarget, TARGETS, type TargetName } from './targets.js';

interface Job { seeds: number[]; iterations: number; seconds?: number; targets?: TargetName[] }

const job = JSON.parse(process.argv[2]) as Job;
let last: { target: string; seed: number; iteration: number } = { target: 'tar', seed: -1, iteration: -1 };
// An error escaping every handler (a stream failing with no one listening) is a finding too.
for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(ev, (e: unknown) => {
    process.send?.({ type: 'finding', finding: { ...last, kind: 'crash', message: `${ev}: ${String((e as Error)?.stack ?? e).slice(0, 800)}` } });
  });
}
const send = (m: unknown) => process.send?.(m);
/** Sends and waits until the message is written: an iteration that then spins synchronously must not swallow its tick. */
const sendNow = (m: unknown) => new Promise<void>((resolve) => (process.send ? process.send(m, undefined, {}, () => resolve()) : resolve()));
const seeds = loadSeeds();
send({ type: 'ready' });
const targets = job.targets ?? [...TARGETS];
const deadline = job.seconds ? Date.now() + job.seconds * 1000 : Infinity;
let runs = 0;
try {
  outer: for (const seed of job.seeds) {
    for (const target of targets) {
      // one PRNG per (seed, target): an iteration is reproduced by seed, target and iteration
      const rng = new Rng(seed * 7919 + TARGETS.indexOf(target) + 1);
      for (let i = 0; i < job.iterations; i++) {
        if (Date.now() > deadline) break outer;
        last = { target, seed, iteration: i };
        await sendNow({ type: 'tick', ...last });
        const outcome = await runTarget(target, seeds, rng);
        runs++;
        const bad = judge(target, outcome);
        if (bad) send({ type: 'finding', finding: { target, seed, iteration: i, ...bad } });
      }
    }
  }
} catch (e) {
  send({ type: 'finding', finding: { target: 'tar', seed: -1, iteration: -1, kind: 'crash', message: String((e as Error)?.stack ?? e) } });
} finally {
  cleanup();
}
send({ type: 'done', runs, origin: seeds.origin });
process.exit(0);
