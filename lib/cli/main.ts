/** The `enclavify` command line: dispatch, --help, exit codes, error reporting. */
import { createRequire } from 'node:module';
import { asEnclavifyError, EnclavifyError, ERROR_CODES } from '../oci/errors.js';
import { removeAllTemps } from '../oci/temp.js';
import { formatOptions, parseArgs } from './args.js';
import { EXIT, type Command, type Io } from './command.js';
import { ProgressRenderer } from './progress.js';
import { convertCommand } from './convert.js';
import { copyCommand } from './copy.js';
import { inspectCommand } from './inspect.js';
import { signCommand } from './sign.js';
import { treeCommand } from './tree.js';
import { verifyCommand } from './verify.js';

/** All commands, in --help order. */
export const commands: Command[] = [convertCommand, copyCommand, treeCommand, verifyCommand, signCommand, inspectCommand];

function version(): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function topHelp(): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `enclavify ${version()}: turn native container images into confidential images (Intel SGX:
Gramine, SCONE): encrypted and authenticated files, runtime, attestation policy and Helm chart.
No Docker daemon needed.

Usage: enclavify COMMAND [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`).join('\n')}

Run 'enclavify COMMAND --help' for a command's options.
Exit codes: 0 success, 1 failure (bad input, I/O), 2 usage error, 3 verification findings.`;
}

function commandHelp(c: Command): string {
  return `Usage: ${c.usage}\n\n${c.description}\n\nOptions:\n${formatOptions(c.options)}`;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[], io?: Partial<Io>): Promise<number> {
  const quiet = argv.includes('--quiet') || argv.includes('-q');
  const out = io?.out ?? ((t: string) => process.stdout.write(t + '\n'));
  const err = io?.err ?? ((t: string) => process.stderr.write(t + '\n'));
  // A status line is redrawn only on a terminal, and only when stderr is the process's own.
  const tty = !io?.err && process.stderr.isTTY ? { write: (s: string) => void process.stderr.write(s), columns: process.stderr.columns } : undefined;
  const renderer = new ProgressRenderer({ line: err, tty }, quiet);
  const sink: Io = { out, err, progress: io?.progress ?? renderer.listener, signal: io?.signal };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const c = commands.find((x) => x.name === rest[0]);
    out(c ? commandHelp(c) : topHelp());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === '-V') {
    out(version());
    return EXIT.ok;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    err(`enclavify: unknown command ${JSON.stringify(name)}\n\n${topHelp()}`);
    return EXIT.usage;
  }
  try {
    const args = parseArgs(rest, cmd.options);
    if (args.flags.help) {
      out(commandHelp(cmd));
      return EXIT.ok;
    }
    return await cmd.run(args, sink);
  } catch (e) {
    renderer.finish();
    const json = rest.includes('--json');
    const error = asEnclavifyError(e, '');
    const { code, message } = error;
    if (json) out(JSON.stringify({ error: { code, message } }));
    err(`enclavify ${cmd.name}: ${message}`);
    const exit = ERROR_CODES[code].exit;
    if (exit === EXIT.usage) err(`Run 'enclavify ${cmd.name} --help' for usage.`);
    if (process.env.ENCLAVIFY_DEBUG) err(String((error.cause as Error | undefined)?.stack ?? error.stack));
    return exit;
  } finally {
    renderer.finish();
  }
}

/** Exit statuses after a signal, as shells report them (128 + signal number). */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * The `enclavify` process: {@link main} with SIGINT/SIGTERM handlers. A first signal cancels the
 * running command (its streams stop, its temporaries are removed, it returns) and the process
 * exits 130/143; a second one exits at once (the exit handler still removes temporary
 * directories). The library itself installs no signal handler.
 */
export async function run(argv: string[]): Promise<number> {
  const ac = new AbortController();
  let interrupted: number | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted !== undefined) process.exit(interrupted);
    interrupted = SIGNAL_EXIT[sig] ?? 1;
    process.stderr.write(`\nenclavify: ${sig}: cancelling\n`);
    ac.abort(new EnclavifyError('ABORTED', `interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const code = await main(argv, { signal: ac.signal });
    return interrupted ?? code;
  } finally {
    await removeAllTemps();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
