#!/usr/bin/env node
// Entry point of the CLI: the compiled sources live in dist/ (built by `npm run build`, run by `prepare`).
import { main } from '../dist/cli/main.js';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
