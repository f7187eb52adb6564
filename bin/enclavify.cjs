#!/bin/sh
':' //; case "${NODE_EXTRA_CA_CERTS:-}${NODE_OPTIONS:-}" in ''|*openssl-ca*) ;; *) [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && { ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; };; esac; exec node "$0" "$@"
// Lines 1-2: sh starts Node without NODE_EXTRA_CA_CERTS (loaded by Node at start-up: 60-80 ms
// here); it is put back below and lib/registry/certs.ts adds those CAs on TLS connections.
// Entry point of the CLI: the compiled sources live in dist/ (built by `npm run build`, run by
// `prepare`). CommonJS, and what needs no command (no arguments, the top-level --help, --version,
// an unknown command) is answered by dist/cli/help.cjs alone, without Node's ES module loader
// reading dist/: the start-up of `enclavify --help` is then about Node's own (docs/performance.md).
'use strict';
if (process.env.ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS !== undefined) {
  if (process.env.NODE_EXTRA_CA_CERTS === undefined) {
    process.env.NODE_EXTRA_CA_CERTS = process.env.ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS;
    globalThis[Symbol.for('enclavify.extraCaCertsDeferred')] = true;
  }
  delete process.env.ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS;
}
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
