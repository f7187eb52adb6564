/**
 * `node --import tsx bench/cli-startup.ts [N]`: start-up time of the built CLI (`npm run build`
 * first): `enclavify --help`, `--version`, `tree --help` and `convert --help` run as an installed
 * command runs (bin/enclavify.cjs executed: its sh line starts Node without NODE_EXTRA_CA_CERTS),
 * `--help` also as `node bin/enclavify.cjs`, against `node -e 0` with the machine's environment and
 * without NODE_EXTRA_CA_CERTS; N runs each (default 20); prints min and median in ms and a JSON
 * summary. Never asserts (benchmarks are not tests); issue 8's target is `--help` under 150 ms.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(repo, 'bin', 'enclavify.cjs');
if (!existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) throw new Error('startup bench: run `npm run build` first (the CLI runs from dist/)');
const n = Number(process.argv[2] ?? 20);

function measure([cmd, ...args]: string[], env: NodeJS.ProcessEnv = process.env): { min: number; median: number } {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd!, args, { stdio: 'ignore', env });
    ms.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}`);
  }
  ms.sort((a, b) => a - b);
  return { min: Math.round(ms[0]!), median: Math.round(ms[Math.floor(ms.length / 2)]!) };
}

const results: Record<string, { min: number; median: number }> = {};
const { NODE_EXTRA_CA_CERTS: extraCa, ...withoutExtraCa } = process.env;
const node = process.execPath;
for (const [label, args, env] of [
  ['node -e 0', [node, '-e', '0']],
  ...(extraCa ? [['node -e 0, no NODE_EXTRA_CA_CERTS', [node, '-e', '0'], withoutExtraCa] as const] : []),
  ['node bin/enclavify.cjs --help', [node, cli, '--help']],
  ['enclavify --help', [cli, '--help']],
  ['enclavify --version', [cli, '--version']],
  ['enclavify tree --help', [cli, 'tree', '--help']],
  ['enclavify convert --help', [cli, 'convert', '--help']],
] as const) {
  const r = (results[label] = measure([...args], env));
  console.log(`${label.padEnd(36)} min ${String(r.min).padStart(5)} ms   median ${String(r.median).padStart(5)} ms`);
}
console.log('\n' + JSON.stringify({ runs: n, node: process.version, nodeExtraCaCerts: extraCa !== undefined, ...results }));
