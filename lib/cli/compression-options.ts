/** `--compression` and `--compression-level`: how the layers a command builds are compressed. */
import { UsageError, type OptionSpec, type Parsed } from './args.js';
import type { CompressionOptions } from '../oci/compression.js';

export const compressionFlags: Record<string, OptionSpec> = {
  compression: {
    kind: 'string',
    arg: 'gzip|zstd|none',
    help: 'compression of the layers this command rewrites or adds (default gzip, which every runtime reads; zstd needs containerd 1.5+, Docker 23+ or podman 3+ to run, and the zstd-napi addon to write); unchanged layers keep theirs',
  },
  'compression-level': {
    kind: 'string',
    arg: 'N',
    help: 'gzip 1-9 (default 2, chosen by measurement: docs/performance.md), zstd 1-19 (default 3); not with --compression none',
  },
};

/** The library option the flags stand for (absent: the pipeline's default). */
export function compressionFrom(args: Parsed): { compression?: CompressionOptions } {
  const c = args.strings.compression;
  const l = args.strings['compression-level'];
  if (c === undefined && l === undefined) return {};
  if (c !== undefined && c !== 'gzip' && c !== 'zstd' && c !== 'none') throw new UsageError(`--compression: ${JSON.stringify(c)} is not gzip, zstd or none`);
  const compression = c ?? 'gzip';
  if (l === undefined) return { compression: { compression } };
  if (compression === 'none') throw new UsageError('--compression-level: not with --compression none');
  const max = compression === 'gzip' ? 9 : 19;
  if (!/^[0-9]{1,2}$/.test(l) || Number(l) < 1 || Number(l) > max) throw new UsageError(`--compression-level: ${JSON.stringify(l)} is not a ${compression} level (1-${max})`);
  return { compression: { compression, level: Number(l) } };
}
