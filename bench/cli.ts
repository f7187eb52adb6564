/** The CLI for bench/million.ts, run from the sources (tsx) as one process: `node --import tsx bench/cli.ts ARGS`. */
import { run } from '../lib/cli/main.js';

process.exitCode = 1;
run(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => { process.stderr.write(`enclavify: internal error: ${(e as Error)?.stack ?? String(e)}\n`); process.exitCode = 1; },
);
