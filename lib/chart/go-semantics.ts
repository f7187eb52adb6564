/**
 * The few Go text/template and Sprig behaviours that the TypeScript model of the chart
 * (`render.ts`) must reproduce exactly, so that the manifests it computes equal what Helm renders
 * from the templates: truthiness, `default`, `%v` printing, `trunc` and `trimSuffix`.
 */
import { yaml } from '../oci/lazy-deps.js';

/** A YAML-compatible value as found in values.yaml (after Helm's merging). */
export type Value = null | boolean | number | string | Value[] | { [key: string]: Value };

/** A plain mapping (what Go sees as map[string]interface{}). */
export type ValueMap = { [key: string]: Value };

/** True for a plain object (a YAML mapping), false for arrays, null and scalars. */
export function isMap(v: unknown): v is ValueMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Sprig's `empty` (and the negation of Go's template truth): null, false, 0, "" and empty
 * lists/maps are empty.
 */
export function empty(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isMap(v)) return Object.keys(v).length === 0;
  return false;
}

/** Go template truth (`if`, `with`, `and`, `not`). */
export function truthy(v: unknown): boolean {
  return !empty(v);
}

/** Sprig `default d v`: `v` unless it is empty. */
export function dflt<T>(d: T, v: unknown): T | Value {
  return empty(v) ? d : (v as Value);
}

/** A mapping, or an empty one when `v` is empty (the `default (dict) x` idiom of the templates). */
export function mapOrEmpty(v: unknown): ValueMap {
  return isMap(v) ? v : {};
}

function goFloat(n: number): string {
  // Go's %v for float64 is strconv 'g' with the shortest representation: exponent form from 1e21
  // upward and below 1e-4, with at least two exponent digits.
  const abs = Math.abs(n);
  if (abs !== 0 && (abs >= 1e21 || abs < 1e-4)) {
    const [m, e] = n.toExponential().split('e');
    const sign = e.startsWith('-') ? '-' : '+';
    const digits = e.replace(/^[+-]/, '').padStart(2, '0');
    return `${m}e${sign}${digits}`;
  }
  return String(n);
}

/**
 * What `{{ v }}` prints (Go `%v`, after chart-render/Helm replace "<no value>" by nothing), and
 * what Sprig's `toString` / `quote` turn a scalar into.
 */
export function goPrint(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : goFloat(v);
  if (Array.isArray(v)) return `[${v.map(goPrint).join(' ')}]`;
  if (isMap(v)) {
    return `map[${Object.keys(v).sort().map((k) => `${k}:${goPrint(v[k])}`).join(' ')}]`;
  }
  return String(v);
}

/** Sprig `toString`: like goPrint, but Go prints a nil value as "<nil>". */
export function toGoString(v: unknown): string {
  return v === null || v === undefined ? '<nil>' : goPrint(v);
}

/**
 * The value a YAML parser reads back from `key: {{ v }}` (a raw, unquoted print), e.g. the
 * string "3" printed raw becomes the number 3.
 */
export function printedScalar(v: unknown): Value {
  return yaml().parse(goPrint(v), { version: '1.1' }) ?? null;
}

/** The value read back from `key: {{ v | quote }}`: Sprig's quote skips nil, else a string. */
export function quotedScalar(v: unknown): Value {
  return v === null || v === undefined ? null : goPrint(v);
}

/** Sprig `trunc n s` (n >= 0) followed by `trimSuffix "-"`, as every name helper does. */
export function truncName(s: string, n = 63): string {
  const t = s.length > n ? s.slice(0, n) : s;
  return t.endsWith('-') ? t.slice(0, -1) : t;
}
