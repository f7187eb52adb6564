/** `--max-entries N`: the limit on the entries of an image's merged view, for every command that builds one. */
import { UsageError, type OptionSpec, type Parsed } from './args.js';

export const maxEntriesFlag: Record<string, OptionSpec> = {
  'max-entries': {
    kind: 'string',
    arg: 'N',
    help: 'refuse an image whose layers hold more than N entries (files, directories, links, whiteouts; default 2000000), before it exhausts memory (TOO_MANY_ENTRIES)',
  },
};

/** The library option `--max-entries` stands for (absent: the default). */
export function maxEntriesFrom(args: Parsed): { maxEntries?: number } {
  const v = args.strings['max-entries'];
  if (v === undefined) return {};
  if (!/^[0-9]{1,15}$/.test(v)) throw new UsageError(`--max-entries: ${JSON.stringify(v)} is not a non-negative integer`);
  return { maxEntries: Number(v) };
}
