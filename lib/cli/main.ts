/** The `enclavify` command line: dispatch, --help, exit codes, error reporting. */
import { asEnclavifyError, EnclavifyError, ERROR_CODES } from '../oci/errors.js';
import { formatOptions, parseArgs } from './args.js';
import { once } from 'node:events';
import { EXIT, type Command, type Io } from './command.js';
import help from './help.cjs';
import { ProgressRenderer } from './progress.js';

/** One command in the dispatch table: its name, its line of top-level --help, and how to load it. */
export interface CommandEntry {
  name: string;
  /** The line `enclavify --help` prints (the command's own `summary`: a spec checks they agree). */
  summary: string;
  load: () => Promise<Command>;
}

/** How each command is loaded: only when it runs (or for its own --help). */
const loaders: Record<string, () => Promise<Command>> = {
  convert: async () => (await import('./convert.js')).convertCommand,
  copy: async () => (await import('./copy.js')).copyCommand,
  tree: async () => (await import('./tree.js')).treeCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  sign: async () => (await import('./sign.js')).signCommand,
  inspect: async () => (await import('./inspect.js')).inspectCommand,
};

/**
 * All commands, in --help order (help.cts's table), each loaded only when it runs (or for its own
 * --help): a command's dependencies (Gramine, policies, charts, ajv, yaml, the registry client)
 * cost start-up time the others should not pay, and `enclavify --help` loads none of them.
 */
export const commandLoaders: readonly CommandEntry[] = help.commands.map((c) => {
  const load = loaders[c.name];
  if (!load) throw new EnclavifyError('INTERNAL', `lib/cli/main.ts: no loader for the command ${c.name}`);
  return { ...c, load };
});

/** Every command, loaded. */
export async function loadCommands(): Promise<Command[]> {
  return Promise.all(commandLoaders.map((c) => c.load()));
}

/** The entry of a command that {@link help.early} let through (so it exists). */
function entryOf(name: string): CommandEntry {
  const entry = commandLoaders.find((c) => c.name === name);
  if (!entry) throw new EnclavifyError('INTERNAL', `lib/cli/main.ts: help.early let the unknown command ${JSON.stringify(name)} through`);
  return entry;
}

function commandHelp(c: Command): string {
  return `Usage: ${c.usage}\n\n${c.description}\n\nOptions:\n${formatOptions(c.options)}`;
}

/** Whether a command module was loaded (and with it the temporary-directory bookkeeping). */
let commandLoaded = false;

/** Writes pieces to stdout, waiting whenever its buffer is full (a pipe to a slow reader). */
async function writeStdout(pieces: Iterable<string>): Promise<void> {
  for (const p of pieces) if (!process.stdout.write(p)) await once(process.stdout, 'drain');
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[], io?: Partial<Io>): Promise<number> {
  const quiet = argv.includes('--quiet') || argv.includes('-q');
  const out = io?.out ?? ((t: string) => process.stdout.write(t + '\n'));
  const err = io?.err ?? ((t: string) => process.stderr.write(t + '\n'));
  // No command, the top-level help, --version, an unknown command: what bin/enclavify.cjs
  // answers before loading this module.
  const answer = help.early(argv);
  if (answer) {
    (answer.to === 'out' ? out : err)(answer.text);
    return answer.code;
  }
  const [name = '', ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    out(commandHelp(await entryOf(rest[0] ?? '').load()));
    return EXIT.ok;
  }
  const entry = entryOf(name);
  const cmd = await entry.load();
  commandLoaded = true;
  // A status line is redrawn only on a terminal, and only when stderr is the process's own.
  const tty = !io?.err && process.stderr.isTTY ? { write: (s: string) => void process.stderr.write(s), columns: process.stderr.columns } : undefined;
  const renderer = new ProgressRenderer({ line: err, tty }, quiet);
  const sink: Io = { out, err, progress: io?.progress ?? renderer.listener, signal: io?.signal };
  if (io?.outPieces) sink.outPieces = io.outPieces;
  else if (!io?.out) sink.outPieces = writeStdout;
  let ran = false;
  try {
    const args = parseArgs(rest, cmd.options);
    if (args.flags.help) {
      out(commandHelp(cmd));
      return EXIT.ok;
    }
    ran = true;
    // Every command first removes what killed runs left in the temporary directory (only
    // directories whose owner is proved dead: lib/oci/owner.ts).
    const { sweepTemps } = await import('../oci/temp.js');
    await sweepTemps().catch(() => undefined);
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
    // Idle keep-alive connections to registries must not hold the process open (only a command
    // that reached a registry loaded the client).
    if (ran && (await import('../registry/loaded.js')).registryModule.loaded) await (await import('../registry/client.js')).closeRegistryClients();
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
    // Only a command makes temporary directories; --help and --version never load that module.
    if (commandLoaded) await (await import('../oci/temp.js')).removeAllTemps();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
