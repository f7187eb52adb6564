/**
 * A TOML writer that lays documents out the way Gramine's signer writes `.manifest.sgx` (it uses the
 * Python `tomli_w` package), so that the same manifest gives the same bytes, hence the same
 * MRENCLAVE, as `gramine-sgx-sign`. Our own implementation of that observable layout:
 *
 * - in each table, plain key/value pairs first, then sub-tables, separated by blank lines;
 * - a table header only where the table has plain pairs (or nothing at all);
 * - arrays always multi-line, one item per line, indented 4 spaces per level, trailing comma;
 * - tables inside arrays stay inline `{ k = v, ... }` unless one of them would be longer than 100
 *   characters (with indent and comma), in which case the array becomes `[[array.of.tables]]`;
 * - basic strings only, escaping `"`, `\` and control characters (not tab).
 *
 * Values are what smol-toml's `parse(..., { integersAsBigInt: true })` returns: integers are
 * bigints, floats are numbers (written like Python's `repr`). Date-times are written in
 * smol-toml's form, which parses to the same value but is not byte-identical to Python's.
 */
import type { TomlTable, TomlValue } from 'smol-toml';
import { EnclavifyError } from '../oci/errors.js';

const INDENT = '    ';
const MAX_LINE_LENGTH = 100;

/** Serialises `doc` in the layout described above. */
export function stringifyManifestToml(doc: TomlTable): string {
  return tableChunks(doc, '', false).join('');
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function isArrayOfTables(v: unknown): v is TomlTable[] {
  return Array.isArray(v) && v.length > 0 && v.every(isTable);
}

function fitsInline(t: TomlTable): boolean {
  const line = `${INDENT}${inlineTable(t)},`;
  return [...line].length <= MAX_LINE_LENGTH && !line.includes('\n');
}

function tableChunks(table: TomlTable, name: string, inArrayOfTables: boolean): string[] {
  const out: string[] = [];
  const pairs: [string, TomlValue][] = [];
  const subtables: [string, TomlTable, boolean][] = [];
  for (const [k, v] of Object.entries(table)) {
    if (isTable(v)) subtables.push([k, v, false]);
    else if (isArrayOfTables(v) && !v.every(fitsInline)) for (const t of v) subtables.push([k, t, true]);
    else pairs.push([k, v]);
  }
  let wrote = false;
  if (inArrayOfTables || (name && (pairs.length > 0 || subtables.length === 0))) {
    out.push(inArrayOfTables ? `[[${name}]]\n` : `[${name}]\n`);
    wrote = true;
  }
  for (const [k, v] of pairs) {
    out.push(`${key(k)} = ${literal(v, 0)}\n`);
    wrote = true;
  }
  for (const [k, t, aot] of subtables) {
    if (wrote) out.push('\n');
    wrote = true;
    out.push(...tableChunks(t, name ? `${name}.${key(k)}` : key(k), aot));
  }
  return out;
}

function literal(v: TomlValue, level: number): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return pythonFloat(v);
  if (typeof v === 'string') return basicString(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    const items = v.map((item) => INDENT.repeat(level + 1) + literal(item, level + 1));
    return `[\n${items.join(',\n')},\n${INDENT.repeat(level)}]`;
  }
  if (isTable(v)) return inlineTable(v);
  throw new EnclavifyError('BAD_ARGUMENT', `cannot write ${typeof v} as TOML`);
}

function inlineTable(t: TomlTable): string {
  const entries = Object.entries(t);
  if (entries.length === 0) return '{}';
  return `{ ${entries.map(([k, v]) => `${key(k)} = ${literal(v, 0)}`).join(', ')} }`;
}

function key(k: string): string {
  return k.length > 0 && /^[A-Za-z0-9_-]+$/.test(k) ? k : basicString(k);
}

const COMPACT: Record<string, string> = {
  '\b': '\\b', '\n': '\\n', '\f': '\\f', '\r': '\\r', '"': '\\"', '\\': '\\\\',
};

function basicString(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/["\\\x00-\x08\x0a-\x1f\x7f]/g, (c) => COMPACT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** A float as Python's `repr` writes it: shortest digits, `1.0`, `1e+16`, `1e-05`, `inf`, `nan`. */
function pythonFloat(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const sign = n < 0 ? '-' : '';
  const [mant, expStr] = Math.abs(n).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac || '0'}`;
}
