/** A small, strict command-line parser: `--name=value`, `--name value`, repeatable options, flags. */
import { EnclavifyError } from '../oci/errors.js';

export interface OptionSpec {
  /** Takes a value (`string`), several values (`list`), or none (`flag`). */
  kind: 'string' | 'list' | 'flag';
  /** One line for --help. */
  help: string;
  /** Placeholder for the value in --help, e.g. DIR. */
  arg?: string;
  short?: string;
}

export interface Parsed {
  positionals: string[];
  strings: Record<string, string | undefined>;
  lists: Record<string, string[]>;
  flags: Record<string, boolean>;
}

/** Thrown for usage errors (exit code 2). */
export class UsageError extends EnclavifyError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export function parseArgs(argv: string[], spec: Record<string, OptionSpec>): Parsed {
  const out: Parsed = { positionals: [], strings: {}, lists: {}, flags: {} };
  for (const [k, s] of Object.entries(spec)) if (s.kind === 'list') out.lists[k] = [];
  const byShort = new Map(Object.entries(spec).filter(([, s]) => s.short).map(([k, s]) => [s.short!, k]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined, value: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      value = eq < 0 ? undefined : a.slice(eq + 1);
    } else if (a.startsWith('-') && a.length === 2 && byShort.has(a[1])) {
      name = byShort.get(a[1]);
    } else {
      out.positionals.push(a);
      continue;
    }
    const s = spec[name!];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.kind === 'flag') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`--${name} takes no value`);
      out.flags[name!] = value !== 'false';
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value${s.arg ? ` (${s.arg})` : ''}`);
      value = argv[++i];
    }
    if (s.kind === 'list') out.lists[name!].push(value);
    else {
      if (out.strings[name!] !== undefined) throw new UsageError(`--${name} given twice`);
      out.strings[name!] = value;
    }
  }
  return out;
}

/** Option lines for --help. */
export function formatOptions(spec: Record<string, OptionSpec>): string {
  const rows = Object.entries(spec).map(([k, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${k}${s.kind === 'flag' ? '' : `=${s.arg ?? 'VALUE'}`}${s.kind === 'list' ? ' ...' : ''}`;
    return [left, s.help] as const;
  });
  const w = Math.min(38, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([l, h]) => `  ${l.padEnd(w)}${l.length >= w ? '\n  ' + ' '.repeat(w) : ''}${h}`).join('\n');
}
