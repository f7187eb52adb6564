/** What a CLI command is: its options, its help text and the function that runs it. */
import type { ProgressListener } from '../oci/progress.js';
import type { OptionSpec, Parsed } from './args.js';
import { jsonPieces } from '../oci/json-pieces.js';

/** Where a command writes: results to stdout, progress and reports to stderr. */
export interface Io {
  out(text: string): void;
  /**
   * A long result written in pieces as they come (a million-file `--json` report is ~100 MB):
   * their concatenation is one `out` text, newline included. Without it, {@link outJson} joins
   * them and calls `out`.
   */
  outPieces?(pieces: Iterable<string>): Promise<void>;
  err(text: string): void;
  /** Progress events, rendered on stderr (info silenced by --quiet; warnings always shown). */
  progress: ProgressListener;
  /** Fires on SIGINT/SIGTERM: commands pass it to every long operation. */
  signal?: AbortSignal | undefined;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Longer explanation for --help. */
  description: string;
  options: Record<string, OptionSpec>;
  /** Returns the exit code. */
  run(args: Parsed, io: Io): Promise<number>;
}

/** Prints `value` as one line of JSON on stdout, in pieces when `io` can take them. */
export async function outJson(io: Io, value: unknown): Promise<void> {
  if (!io.outPieces) return io.out(JSON.stringify(value));
  await io.outPieces(
    (function* () {
      yield* jsonPieces(value);
      yield '\n';
    })(),
  );
}

/** Exit codes that CI can switch on. */
export const EXIT = {
  ok: 0,
  /** The operation failed: bad input image, I/O error, refused rule. */
  failed: 1,
  /** Usage error: unknown option, missing argument, malformed reference. */
  usage: 2,
  /** Verification found problems (enclavify verify). */
  findings: 3,
} as const;

/** Options every command has. */
export const COMMON: Record<string, OptionSpec> = {
  help: { kind: 'flag', short: 'h', help: 'show this help' },
  json: { kind: 'flag', help: 'print one JSON object on stdout (progress still goes to stderr)' },
  quiet: { kind: 'flag', short: 'q', help: 'no progress messages on stderr (warnings are still shown)' },
};
