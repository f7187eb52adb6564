/**
 * JSON Schema validation of the documents file protection produces: the classification report,
 * the protection manifest and the keys file (`schemas/*.schema.json`, compiled once with ajv).
 * Error texts name the JSON path and the rule, never the value (keys files hold keys).
 */
import type { ValidateFunction } from 'ajv';
import { ajv } from '../oci/lazy-deps.js';
import classificationReport from '../schemas/classification-report.js';
import protectionManifest from '../schemas/protection-manifest.js';
import keys from '../schemas/keys.js';

/** The schemas, imported as modules (generated from `schemas/*.json` by `npm run schemas`). */
const schemas = { classificationReport, protectionManifest, keys } as const;

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
    v = new (ajv().Ajv)({ allErrors: true, strict: true, strictRequired: false, strictTypes: false }).compile(schemas[which]);
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
