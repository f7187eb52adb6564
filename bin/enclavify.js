#!/usr/bin/env node
// Entry point of the CLI: the compiled sources live in dist/ (built by `npm run build`, run by `prepare`).
import { run } from '../dist/cli/main.js';

// Until run settles the exit code is "failed": a run that never settles must not look successful.
process.exitCode = 1;
run(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => { process.stderr.write(`enclavify: internal error: ${e?.stack ?? e}\n`); process.exitCode = 1; },
);
