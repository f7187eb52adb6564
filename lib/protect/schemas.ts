/**
 * JSON Schema validation of the documents file protection produces: the classification report,
 * the protection manifest and the keys file (`schemas/*.schema.json`, compiled once with ajv).
 * Error texts name the JSON path and the rule, never the value (keys files hold keys).
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

/** `<package>/schemas/`, the same relative place from `lib/protect` and `dist/protect`. */
const schemaDir = new URL('../../schemas/', import.meta.url);

/** File names of the protection schemas. */
export const protectionSchemaFiles: Record<ProtectionSchemaName, string> = {
  classificationReport: 'classification-report.schema.json',
  protectionManifest: 'protection-manifest.schema.json',
  keys: 'keys.schema.json',
};

/** A schema violation: JSON pointer and what is wrong there. */
export interface SchemaProblem {
  path: string;
  message: string;
}

const compiled = new Map<string, ValidateFunction>();

function validator(which: keyof typeof protectionSchemaFiles): ValidateFunction {
  let v = compiled.get(which);
  if (!v) {
    const schema = JSON.parse(readFileSync(new URL(protectionSchemaFiles[which], schemaDir), 'utf8')) as object;
    v = new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false }).compile(schema);
    compiled.set(which, v);
  }
  return v;
}

/**
 * Validates `doc` against one of the protection schemas; returns the problems (empty when valid).
 *
 * ```ts
 * protectionSchemaProblems('protectionManifest', JSON.parse(text)); // []
 * ```
 */
/** Which document {@link protectionSchemaProblems} checks (a key of `protectionSchemaFiles`). */
export type ProtectionSchemaName = 'classificationReport' | 'protectionManifest' | 'keys';

export function protectionSchemaProblems(which: ProtectionSchemaName, doc: unknown): SchemaProblem[] {
  const v = validator(which);
  if (v(doc)) return [];
  return (v.errors ?? []).map((e) => ({ path: e.instancePath, message: e.message ?? 'is invalid' }));
}
