/**
 * Validation against the official OCI image-spec JSON schemas (draft-04) in ../shared/reference.
 * As the reference notes say, Ajv loads them only after the nested `id`s are stripped and each
 * file is registered under a URL its relative `$ref`s resolve against.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Ajv as AjvCore } from 'ajv';

// CJS packages: loaded with require so the class is the constructor under NodeNext and tsx alike.
const require = createRequire(import.meta.url);
const Ajv = require('ajv-draft-04') as new (opts: object) => AjvCore;
const addFormats = require('ajv-formats') as (a: AjvCore) => void;
type Ajv = AjvCore;
import { shared } from './tools.js';

const dir = path.join(shared, 'reference', 'oci-image-spec-v1.1.1');
const base = 'https://opencontainers.org/schema/image/';

function stripIds(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripIds);
  if (x && typeof x === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (k !== 'id' || typeof v !== 'string') o[k] = stripIds(v);
    return o;
  }
  return x;
}

let ajv: Ajv | undefined;
function load(): Ajv {
  if (ajv) return ajv;
  const a = new Ajv({ allErrors: true, strict: false });
  addFormats(a);
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    a.addSchema(stripIds(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))) as object, base + f);
  }
  return (ajv = a);
}

export type OciDocument = 'image-manifest' | 'image-index' | 'config' | 'image-layout' | 'content-descriptor';

/** Returns the schema errors of `doc` (empty when valid). */
export function ociSchemaErrors(kind: OciDocument, doc: unknown): string[] {
  const file = kind === 'content-descriptor' ? 'content-descriptor.json' : `${kind}-schema.json`;
  const v = load().getSchema(base + file);
  if (!v) throw new Error(`schema ${file} not loaded`);
  return v(doc) ? [] : (v.errors ?? []).map((e: { instancePath: string; message?: string }) => `${e.instancePath || '/'} ${e.message}`);
}
