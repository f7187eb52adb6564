/** Parsing the JSON documents of an image with errors that say which document is wrong and how. */
import { clip, EnclavifyError, type ErrorCode } from './errors.js';
import { isIndexType, isManifestType } from './media-types.js';
import type { ImageConfig, Index, Manifest } from './types.js';

/** Deepest nesting of arrays and objects accepted in a JSON document (real manifests and configs stay below 10). */
export const MAX_JSON_DEPTH = 64;

/** Options of {@link parseJson}. */
export interface ParseJsonOptions {
  /** Deepest nesting accepted (default {@link MAX_JSON_DEPTH}). */
  maxDepth?: number;
  /** Code of a parse error (default `BAD_JSON`), e.g. `KEYS_FILE_INVALID` for a keys file. */
  code?: ErrorCode;
}

/**
 * Refuses text nested deeper than `max` before JSON.parse sees it (a config nested 100k levels
 * deep otherwise overflows the stack of whatever walks it later). Strings are skipped exactly, so
 * brackets inside them do not count.
 */
export function checkJsonDepth(text: string, max: number, what: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip the string: up to the next quote not escaped by a backslash
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) throw new EnclavifyError('JSON_TOO_DEEP', `${what}: JSON nested more than ${max} levels deep (at byte ${i}); refused`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/**
 * Parses a JSON document of an image, nested at most {@link MAX_JSON_DEPTH} levels. Errors name
 * the document and say where the problem is, never what the bytes there are: a document is
 * parsed only after its digest is verified, but a keys file or index.json has no digest.
 */
export function parseJson(bytes: Uint8Array | string, what: string, options: ParseJsonOptions = {}): unknown {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  checkJsonDepth(text, options.maxDepth ?? MAX_JSON_DEPTH, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : '';
    const at = /position (\d+)/.exec(msg)?.[1];
    const where = at !== undefined ? ` at byte ${at}` : /end of JSON input|Unterminated/.test(msg) ? ' (it ends early)' : '';
    throw new EnclavifyError(options.code ?? 'BAD_JSON', `${what}: malformed JSON${where}`);
  }
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkDescriptor(d: unknown, what: string): void {
  if (!isObj(d) || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new EnclavifyError('BAD_MANIFEST', `${what}: not a valid descriptor (needs mediaType, digest and a non-negative integer size)`);
  }
}

export function parseIndex(bytes: Uint8Array | string, what: string): Index {
  const x = parseJson(bytes, what);
  if (!isObj(x) || x.schemaVersion !== 2 || !Array.isArray(x.manifests)) {
    throw new EnclavifyError('BAD_INDEX', `${what}: not an image index (needs schemaVersion 2 and a manifests array)`);
  }
  if (x.mediaType !== undefined && !isIndexType(x.mediaType as string)) {
    throw new EnclavifyError('BAD_INDEX', `${what}: media type ${clip(String(x.mediaType))} is not an image index`);
  }
  x.manifests.forEach((d, i) => checkDescriptor(d, `${what}: manifests[${i}]`));
  return x as unknown as Index;
}

export function parseManifest(bytes: Uint8Array | string, what: string): Manifest {
  const x = parseJson(bytes, what);
  if (!isObj(x) || x.schemaVersion !== 2) throw new EnclavifyError('BAD_MANIFEST', `${what}: not an image manifest (schemaVersion must be 2)`);
  if (x.mediaType !== undefined && !isManifestType(x.mediaType as string)) {
    throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${what}: media type ${clip(String(x.mediaType))} is not an image manifest`);
  }
  checkDescriptor(x.config, `${what}: config`);
  if (!Array.isArray(x.layers)) throw new EnclavifyError('BAD_MANIFEST', `${what}: layers must be an array`);
  x.layers.forEach((d, i) => checkDescriptor(d, `${what}: layers[${i}]`));
  return x as unknown as Manifest;
}

export function parseConfig(bytes: Uint8Array | string, what: string): ImageConfig {
  const x = parseJson(bytes, what);
  if (!isObj(x) || !isObj(x.rootfs) || !Array.isArray(x.rootfs.diff_ids)) {
    throw new EnclavifyError('BAD_CONFIG', `${what}: not an image config (rootfs.diff_ids missing)`);
  }
  x.rootfs.diff_ids.forEach((d, i) => {
    if (typeof d !== 'string') throw new EnclavifyError('BAD_CONFIG', `${what}: rootfs.diff_ids[${i}] is not a digest string`);
  });
  return x as unknown as ImageConfig;
}

/** Canonical bytes for documents we write: compact JSON, as containers/image and umoci write. */
export function encodeJson(x: unknown): Buffer {
  return Buffer.from(JSON.stringify(x), 'utf8');
}
