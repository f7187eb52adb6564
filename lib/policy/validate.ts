/**
 * JSON Schema validation of the policies enclavify emits: the SCONE CAS session
 * (`schemas/scone-session.schema.json`) and the Gramine attestation policy
 * (`schemas/gramine-policy.schema.json`). The schemas are imported as modules (generated from
 * the JSON files by `npm run schemas`, so that a bundled copy needs no files) and compiled once
 * with ajv, which is loaded on the first validation.
 *
 * Error texts name the JSON path and the rule, never the offending value: sessions carry FSPF keys.
 */
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { EnclavifyError } from '../oci/errors.js';
import { ajv as loadAjv } from '../oci/lazy-deps.js';
import sconeSession from '../schemas/scone-session.js';
import gramineAttestationPolicy from '../schemas/gramine-policy.js';

const schemas = { sconeSession, gramineAttestationPolicy } as const;

/**
 * Where the public JSON files of the schemas are: `<package>/schemas/` (the same relative place
 * from `lib/policy` and `dist/policy`). The library itself does not read them.
 */
export const schemaDir = new URL('../../schemas/', import.meta.url);

/** File names of the schemas in {@link schemaDir}. */
export const schemaFiles = {
  sconeSession: 'scone-session.schema.json',
  gramineAttestationPolicy: 'gramine-policy.schema.json',
} as const;

/** One schema violation: the JSON pointer of the offending place and what is wrong there. */
export interface PolicyProblem {
  /** JSON pointer into the document, e.g. `/services/0/fspf_key`; `` for the root. */
  path: string;
  /** What is wrong, e.g. `must match pattern "^[0-9a-fA-F]{64}$"`. */
  message: string;
}

const instances = new Map<keyof typeof schemaFiles, { ajv: Ajv; id: string }>();

/** Compiles `schemas/<file>` once; `fragment` selects a definition, e.g. `/definitions/secret`. */
function validator(which: keyof typeof schemaFiles, fragment = ''): ValidateFunction {
  let inst = instances.get(which);
  if (!inst) {
    const schema = schemas[which];
    // strictRequired is off: the schemas use `required` inside `not` to forbid key combinations.
    const ajv = new (loadAjv().Ajv)({ allErrors: true, strict: true, strictRequired: false });
    ajv.addSchema(schema);
    inst = { ajv, id: schema.$id };
    instances.set(which, inst);
  }
  const ref = `${inst.id}#${fragment}`;
  const v = inst.ajv.getSchema(ref);
  if (!v) throw new EnclavifyError('INTERNAL', `schema ${schemaFiles[which]} has no ${fragment || 'root'}`);
  return v;
}

function problems(errors: ErrorObject[] | null | undefined): PolicyProblem[] {
  return (errors ?? []).map((e) => {
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      message += ` (${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)})`;
    } else if (e.keyword === 'enum') {
      message += `: ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}`;
    }
    return { path: e.instancePath, message };
  });
}

/**
 * Validates a parsed SCONE session against `scone-session.schema.json` and the rules the schema
 * cannot express: unique service, secret, volume and image names, and image volumes that name a
 * declared volume. Returns the problems; an empty list means valid.
 */
export function validateSconeSession(session: unknown): PolicyProblem[] {
  const v = validator('sconeSession');
  if (!v(session)) return problems(v.errors);
  return semanticProblems(session as Record<string, unknown>);
}

/**
 * Validates one part of a SCONE session against a definition of the session schema, e.g. a user's
 * secret against `secret` or an injected file against `injectionFile`.
 */
export function validateSconeDefinition(definition: 'secret' | 'injectionFile' | 'volume' | 'service', value: unknown): PolicyProblem[] {
  const v = validator('sconeSession', `/definitions/${definition}`);
  return v(value) ? [] : problems(v.errors);
}

/** Validates a Gramine attestation policy against `gramine-policy.schema.json`. */
export function validateGramineAttestationPolicy(policy: unknown): PolicyProblem[] {
  const v = validator('gramineAttestationPolicy');
  return v(policy) ? [] : problems(v.errors);
}

/** Formats problems as one line each: `<path>: <message>` (the root shows as `root`). */
export function formatProblems(list: PolicyProblem[], root = '(root)'): string {
  return list.map((p) => `${p.path || root}: ${p.message}`).join('\n');
}

function semanticProblems(s: Record<string, unknown>): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  for (const key of ['services', 'secrets', 'volumes', 'images'] as const) {
    const list = s[key];
    if (!Array.isArray(list)) continue;
    const seen = new Map<string, number>();
    list.forEach((item: { name: string }, i) => {
      const first = seen.get(item.name);
      if (first !== undefined) {
        out.push({ path: `/${key}/${i}/name`, message: `duplicate name ${JSON.stringify(item.name)} (also /${key}/${first})` });
      } else seen.set(item.name, i);
    });
  }
  const volumes = new Set(Array.isArray(s.volumes) ? (s.volumes as { name: string }[]).map((v) => v.name) : []);
  if (Array.isArray(s.images)) {
    (s.images as { volumes?: { name: string }[] }[]).forEach((img, i) => {
      img.volumes?.forEach((v, j) => {
        if (!volumes.has(v.name)) {
          out.push({ path: `/images/${i}/volumes/${j}/name`, message: `volume ${JSON.stringify(v.name)} is not declared in /volumes` });
        }
      });
    });
  }
  return out;
}
