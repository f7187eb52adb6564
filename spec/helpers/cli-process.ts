/** The CLI as its own process (what bin/enclavify.cjs runs for a command, from the sources): `node --import tsx spec/helpers/cli-process.ts ARGS`. */
import { run } from '../../lib/cli/main.js';

process.exitCode = 1;
run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
