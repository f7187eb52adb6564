/** Flags of every command that reads images from a source: how far an untrusted layout is trusted. */
import type { OptionSpec, Parsed } from './args.js';

export const sourceFlags: Record<string, OptionSpec> = {
  'follow-blob-symlinks': {
    kind: 'flag',
    help: 'read blob files of an oci: source that are symlinks (default: refused, as a hostile layout could point them at host files); digests are verified either way',
  },
};

/** The library options the source flags stand for. */
export function sourceOptionsFrom(args: Parsed): { followBlobSymlinks?: true } {
  return args.flags['follow-blob-symlinks'] === true ? { followBlobSymlinks: true } : {};
}
