#!/bin/sh
':' //; case "${NODE_EXTRA_CA_CERTS:-}${NODE_OPTIONS:-}" in ''|*openssl-ca*) ;; *) [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && { ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export ENCLAVIFY_DEFERRED_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; };; esac; exec node "$0" "$@"
// The two lines above are for sh, and a string and a comment for Node: they start Node without
// NODE_EXTRA_CA_CERTS, which Node otherwise loads at start-up with its own roots, before any
// script, 60-80 ms of every command here whether or not it opens a TLS connection. It is put back
// in process.env below (child processes see it) and lib/registry/certs.ts adds those CAs when a
// TLS connection is made (not with --use-openssl-ca in NODE_OPTIONS: then Node keeps it). Run as
// `node bin/enclavify.cjs`, Node loads it as usual.
//
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
