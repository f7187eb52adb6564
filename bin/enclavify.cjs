#!/usr/bin/env node
// Entry point of the CLI: the compiled sources live in dist/ (built by `npm run build`, run by
// `prepare`). CommonJS, and what needs no command (no arguments, the top-level --help, --version,
// an unknown command) is answered by dist/cli/help.cjs alone, without Node's ES module loader
// reading dist/: the start-up of `enclavify --help` is then about Node's own (docs/performance.md).
'use strict';
const argv = process.argv.slice(2);
const answer = require('../dist/cli/help.cjs').early(argv);
if (answer) {
  (answer.to === 'out' ? process.stdout : process.stderr).write(`${answer.text}\n`);
  process.exitCode = answer.code;
} else {
  // Until run settles the exit code is "failed": a run that never settles must not look successful.
  process.exitCode = 1;
  import('../dist/cli/main.js').then(({ run }) => run(argv)).then(
    (code) => { process.exitCode = code; },
    (e) => { process.stderr.write(`enclavify: internal error: ${e?.stack ?? e}\n`); process.exitCode = 1; },
  );
}
