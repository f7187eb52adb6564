/**
 * `node --import tsx bench/cli-startup.ts [N]`: start-up time of the built CLI (`npm run build`
 * first): `node bin/enclavify.cjs --help`, `--version` and `tree --help`, against `node -e 0` on the
 * same machine, N runs each (default 20); prints min and median in ms and a JSON summary. Never
 * asserts (benchmarks are not tests); issue 8's target is `--help` under 150 ms.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(repo, 'bin', 'enclavify.cjs');
if (!existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) throw new Error('startup bench: run `npm run build` first (the CLI runs from dist/)');
const n = Number(process.argv[2] ?? 20);

function measure(args: string[]): { min: number; median: number } {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    ms.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}`);
  }
  ms.sort((a, b) => a - b);
  return { min: Math.round(ms[0]!), median: Math.round(ms[Math.floor(ms.length / 2)]!) };
}

const results: Record<string, { min: number; median: number }> = {};
for (const [label, args] of [
  ['node -e 0', ['-e', '0']],
  ['enclavify --help', [cli, '--help']],
  ['enclavify --version', [cli, '--version']],
  ['enclavify tree --help', [cli, 'tree', '--help']],
  ['enclavify convert --help', [cli, 'convert', '--help']],
] as const) {
  const r = (results[label] = measure([...args]));
  console.log(`${label.padEnd(28)} min ${String(r.min).padStart(5)} ms   median ${String(r.median).padStart(5)} ms`);
}
console.log('\n' + JSON.stringify({ runs: n, node: process.version, ...results }));
