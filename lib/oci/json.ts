/** Parsing the JSON documents of an image with errors that say which document is wrong and how. */
import { EnclavifyError } from './errors.js';
import { isIndexType, isManifestType } from './media-types.js';
import type { ImageConfig, Index, Manifest } from './types.js';

export function parseJson(bytes: Uint8Array | string, what: string): unknown {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EnclavifyError('BAD_JSON', `${what}: malformed JSON: ${(e as Error).message}`);
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
    throw new EnclavifyError('BAD_INDEX', `${what}: media type ${x.mediaType} is not an image index`);
  }
  x.manifests.forEach((d, i) => checkDescriptor(d, `${what}: manifests[${i}]`));
  return x as unknown as Index;
}

export function parseManifest(bytes: Uint8Array | string, what: string): Manifest {
  const x = parseJson(bytes, what);
  if (!isObj(x) || x.schemaVersion !== 2) throw new EnclavifyError('BAD_MANIFEST', `${what}: not an image manifest (schemaVersion must be 2)`);
  if (x.mediaType !== undefined && !isManifestType(x.mediaType as string)) {
    throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${what}: media type ${x.mediaType} is not an image manifest`);
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
  return x as unknown as ImageConfig;
}

/** Canonical bytes for documents we write: compact JSON, as containers/image and umoci write. */
export function encodeJson(x: unknown): Buffer {
  return Buffer.from(JSON.stringify(x), 'utf8');
}
