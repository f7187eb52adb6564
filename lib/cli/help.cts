/**
 * What the CLI answers without loading any command: the top-level help, --version, an unknown
 * command. CommonJS, so that bin/enclavify.cjs answers these by `require` alone, before Node's ES
 * module loader reads a single file of dist/ (issue 8: `enclavify --help` within 0.15 s, about
 * Node's own start-up); lib/cli/main.ts answers the same way through {@link early}.
 */

/** A command's name and its line of `enclavify --help`, in --help order. */
interface CommandSummary {
  name: string;
  /** The command's own `summary` (a spec checks they agree). */
  summary: string;
}

const commands: readonly CommandSummary[] = [
  { name: 'convert', summary: 'convert a native image into a confidential one (encrypted and authenticated files, ...)' },
  { name: 'copy', summary: 'copy an image between transports, verifying every blob' },
  { name: 'tree', summary: 'print the merged root file system of an image' },
  { name: 'verify', summary: 'check a converted image against its protection manifest (and its keys)' },
  { name: 'sign', summary: 'sign the Gramine enclave of a converted image (MRENCLAVE, SIGSTRUCT) without Gramine\'s tools' },
  { name: 'inspect', summary: 'show what a converted image holds: runtime, manifest, MRENCLAVE/MRSIGNER, protected regions' },
];

/** Exit statuses (lib/cli/command.ts's EXIT, which this CommonJS module does not import). */
const OK = 0;
const USAGE = 2;

function version(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function topHelp(): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `enclavify ${version()}: turn native container images into confidential images (Intel SGX:
Gramine, SCONE; Confidential Containers): encrypted and authenticated files, runtime, attestation
policy and Helm chart. No Docker daemon needed.

Usage: enclavify COMMAND [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`).join('\n')}

Run 'enclavify COMMAND --help' for a command's options; docs/cli.md lists the environment variables.
Exit codes: 0 success, 1 failure (bad input, I/O), 2 usage error, 3 verification findings.`;
}

/** An answer that needs no command module: the text, where it goes, the exit status. */
interface EarlyAnswer {
  to: 'out' | 'err';
  text: string;
  code: number;
}

const isCommand = (name: string) => commands.some((c) => c.name === name);

function unknown(name: string): EarlyAnswer {
  return { to: 'err', text: `enclavify: unknown command ${JSON.stringify(name)}\n\n${topHelp()}`, code: USAGE };
}

/**
 * The answer to `argv` (without node and script) when it needs no command: no arguments (the
 * help on stderr, a usage error), `--help`/`-h`/`help` without a command, `help NOPE`,
 * `--version`/`-V`, an unknown command. `undefined`: a command has to be loaded.
 */
function early(argv: readonly string[]): EarlyAnswer | undefined {
  const [name, next] = argv;
  if (name === undefined || name === '') return { to: 'err', text: topHelp(), code: USAGE };
  if (name === '--help' || name === '-h' || name === 'help') {
    if (next === undefined || next.startsWith('-')) return { to: 'out', text: topHelp(), code: OK };
    return isCommand(next) ? undefined : unknown(next);
  }
  if (name === '--version' || name === '-V') return { to: 'out', text: version(), code: OK };
  return isCommand(name) ? undefined : unknown(name);
}

export = { commands, topHelp, version, early };
