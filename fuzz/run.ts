/**
 * `npm run fuzz [-- --seconds N] [--seed S] [--targets tar,json,...]`: a longer campaign with
 * random seeds (or the one given), printing every finding with what reproduces it. Exit 1 when
 * something broke the invariant (see fuzz/targets.ts).
 */
import { randomInt } from 'node:crypto';
import { fuzz } from './harness.js';
import { TARGETS, type TargetName } from './targets.js';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(opt('seconds') ?? 300);
const seed = opt('seed');
const seeds = seed !== undefined ? [Number(seed)] : Array.from({ length: 1000 }, () => randomInt(2 ** 31));
const targets = (opt('targets')?.split(',') as TargetName[] | undefined) ?? [...TARGETS];
const iterations = Number(opt('iterations') ?? 200);

console.error(`fuzz: ${seconds} s, targets ${targets.join(', ')}, ${iterations} iterations per seed and target, seeds ${seeds.slice(0, 5).join(', ')}${seeds.length > 5 ? ', …' : ''}`);
const started = Date.now();
const r = await fuzz({ seeds, iterations, seconds, targets });
console.error(`fuzz: ${r.runs} runs in ${((Date.now() - started) / 1000).toFixed(0)} s (seeds from ${r.origin}), ${r.findings.length} finding(s)`);
for (const f of r.findings) {
  console.log(JSON.stringify(f));
  console.error(`  reproduce: npm run fuzz -- --seed ${f.seed} --targets ${f.target} --iterations ${f.iteration + 1}`);
}
process.exit(r.findings.length ? 1 : 0);
