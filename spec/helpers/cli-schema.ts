/**
 * The `--json` output of the CLI against schemas/cli-result.schema.json: {@link cliJson} parses
 * stdout and fails the test, naming the JSON path, when the object does not match (the whole
 * schema, or one command's definition).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

const file = new URL('../../schemas/cli-result.schema.json', import.meta.url);
const schema = JSON.parse(readFileSync(file, 'utf8')) as { $id: string; definitions: Record<string, unknown> };

/** The per-command definitions of the schema (`copy`, `convert`, `convertDryRun`, ..., `error`). */
export type CliResultKind = keyof typeof definitions;
const definitions = schema.definitions as Record<'copy' | 'tree' | 'convert' | 'convertDryRun' | 'convertAlreadyDone' | 'sign' | 'verify' | 'verifyLayersClosed' | 'inspect' | 'error', unknown>;

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();
function validator(kind?: CliResultKind): ValidateFunction {
  const key = kind ?? '';
  let v = validators.get(key);
  if (!v) {
    ajv ??= (() => {
      const a = new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
      a.addSchema(schema);
      return a;
    })();
    v = ajv.getSchema(kind ? `${schema.$id}#/definitions/${kind}` : schema.$id);
    if (!v) throw new Error(`cli-result schema: no definition ${key}`);
    validators.set(key, v);
  }
  return v;
}

/** The schema errors of `doc` (empty when valid), against the whole schema or one definition. */
export function cliResultErrors(doc: unknown, kind?: CliResultKind): string[] {
  const v = validator(kind);
  return v(doc) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params ? ' ' + JSON.stringify(e.params) : ''}`);
}

/** Parses `stdout` (one JSON object), asserts it matches the schema (and `kind`'s definition), returns it. */
export function cliJson<T = Record<string, any>>(stdout: string, kind?: CliResultKind): T {
  const doc = JSON.parse(stdout) as unknown;
  const errors = [...cliResultErrors(doc), ...(kind ? cliResultErrors(doc, kind) : [])];
  assert.deepEqual(errors, [], `--json output does not match schemas/cli-result.schema.json${kind ? ` (${kind})` : ''}:\n${errors.join('\n')}\n${stdout.slice(0, 2000)}`);
  return doc as T;
}
