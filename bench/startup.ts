/**
 * Packaging and start-up (`npm run bench`, or alone: `node --import tsx bench/startup.ts [--json]`):
 * the size of the packed tarball (`npm pack`, which builds dist/), the time of
 * `npm install --ignore-scripts` of that tarball into a fresh project (dependencies from the npm
 * cache when it has them), and the time of `await import('enclavify')` in that project (a fresh
 * node process each time; median of 5). Prints the load average with the numbers: on a shared
 * machine they say as much about the scheduler as about the package. Never asserts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS') e[k] = v;
  return e;
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, env: env(), encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status}\n${r.stderr}`);
  return r.stdout;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

/** One fresh `node` importing `spec` from `cwd`: the milliseconds `import()` took. */
function importMs(spec: string, cwd: string): number {
  return Number(run(process.execPath, ['--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(spec)}); console.log(performance.now() - t)`], cwd).trim());
}

export interface StartupResult {
  tarballBytes: number;
  unpackedBytes: number;
  files: number;
  installMs: number;
  importMs: { median: number; runs: number[] };
  /** `node -e 0`, for scale: the cost of starting node at all, at the same load. */
  nodeStartMs: number;
  load: string;
}

export async function startupBench(): Promise<StartupResult> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-startup-'));
  try {
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tmp], root)) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number }>;
    const project = path.join(tmp, 'project');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'bench-consumer', private: true }));
    // Warm the cache once (a first install may fetch what the cache lacks), then time a fresh one.
    run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, packed!.filename)], project);
    rmSync(path.join(project, 'node_modules'), { recursive: true, force: true });
    rmSync(path.join(project, 'package-lock.json'), { force: true });
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'bench-consumer', private: true }));
    const t0 = performance.now();
    run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, packed!.filename)], project);
    const installMs = performance.now() - t0;
    importMs('enclavify', project); // the first run pays for cold file caches
    const runs = Array.from({ length: 5 }, () => importMs('enclavify', project));
    const s0 = performance.now();
    run(process.execPath, ['-e', '0'], project);
    const nodeStartMs = performance.now() - s0;
    return { tarballBytes: packed!.size, unpackedBytes: packed!.unpackedSize, files: packed!.entryCount, installMs: Math.round(installMs), importMs: { median: Math.round(median(runs)), runs: runs.map(Math.round) }, nodeStartMs: Math.round(nodeStartMs), load: load() };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function printStartup(r: StartupResult): void {
  console.log(`${'packed tarball'.padEnd(48)} ${(r.tarballBytes / 1000).toFixed(1).padStart(7)} kB (${r.files} files, ${(r.unpackedBytes / 1e6).toFixed(2)} MB unpacked)`);
  console.log(`${'npm install --ignore-scripts (fresh project)'.padEnd(48)} ${String(r.installMs).padStart(7)} ms`);
  console.log(`${"import('enclavify'), median of 5".padEnd(48)} ${String(r.importMs.median).padStart(7)} ms (runs ${r.importMs.runs.join(', ')}; node -e 0: ${r.nodeStartMs} ms; load ${r.load})`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await startupBench();
  if (process.argv.includes('--json')) console.log(JSON.stringify(r));
  else printStartup(r);
}
