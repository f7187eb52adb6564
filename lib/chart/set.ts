/**
 * Helm's `--set` syntax, used for `--k8s-helm-set=PATH=VALUE`: the overrides are written into the
 * chart's values.yaml, so `helm install` later sees them as defaults.
 *
 * Supported like Helm: dotted paths (`a.b.c=v`), `\.` and `\,` escapes, several assignments
 * separated by commas (`a=1,b=2`), list indices (`a[0].b=v`), list values (`a={x,y}`), and
 * typing of values: `true`/`false` (any case) are booleans, `null` removes the key, integers
 * become numbers (but not ones with a leading zero, such as `0755`), anything else stays a string.
 */
import { isMap, type Value, type ValueMap } from './go-semantics.js';
import { EnclavifyError } from '../oci/errors.js';

/** One parsed assignment: the path (map keys and list indices) and its typed value. */
export interface SetAssignment {
  path: (string | number)[];
  value: Value;
}

/** Helm caps list indices so that `a[999999999]=x` cannot allocate a huge list. */
const MAX_INDEX = 65536;
/** Keys that would reach Object.prototype instead of a values entry. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Helm's typedVal: how a --set value string is typed. */
export function typedSetValue(s: string): Value {
  if (s.toLowerCase() === 'true') return true;
  if (s.toLowerCase() === 'false') return false;
  if (s.toLowerCase() === 'null') return null;
  if (s === '0') return 0;
  if (s.length > 1 && s.startsWith('0')) return s;
  if (/^[-+]?[0-9]+$/.test(s)) {
    const n = BigInt(s);
    // Helm parses as int64; beyond that (or beyond exact doubles) keep the text.
    if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(n);
  }
  return s;
}

/** Parses one `--set` argument (possibly several comma-separated assignments). */
export function parseSetExpression(expr: string): SetAssignment[] {
  const out: SetAssignment[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new EnclavifyError('BAD_CHART', `--set ${JSON.stringify(expr)}: ${why} (at character ${i + 1})`);
  };
  while (i < expr.length) {
    // key path
    const path: (string | number)[] = [];
    let seg = '';
    let segStarted = false;
    for (;;) {
      if (i >= expr.length) fail('key without "=value"');
      const c = expr[i];
      if (c === '\\') {
        if (i + 1 >= expr.length) fail('dangling "\\"');
        seg += expr[i + 1];
        segStarted = true;
        i += 2;
      } else if (c === '.') {
        if (!segStarted) fail('empty key segment');
        path.push(seg);
        seg = '';
        segStarted = false;
        i++;
      } else if (c === '[') {
        if (segStarted) path.push(seg);
        else if (path.length === 0 || typeof path[path.length - 1] !== 'number') fail('index without a key');
        seg = '';
        segStarted = false;
        const close = expr.indexOf(']', i);
        if (close < 0) fail('"[" without "]"');
        const idx = expr.slice(i + 1, close);
        if (!/^[0-9]+$/.test(idx)) fail(`list index ${JSON.stringify(idx)} is not a non-negative integer`);
        const n = Number(idx);
        if (n > MAX_INDEX) fail(`list index ${n} exceeds ${MAX_INDEX}`);
        path.push(n);
        i = close + 1;
        if (expr[i] === '.') i++;
        else if (expr[i] !== '=' && expr[i] !== '[') fail('expected ".", "[" or "=" after "]"');
      } else if (c === '=') {
        if (segStarted) path.push(seg);
        else if (path.length === 0 || typeof path[path.length - 1] !== 'number') fail('empty key');
        i++;
        break;
      } else if (c === ',') {
        fail(`key ${JSON.stringify(seg)} has no value`);
      } else {
        seg += c;
        segStarted = true;
        i++;
      }
    }
    for (const k of path) if (typeof k === 'string' && FORBIDDEN_KEYS.has(k)) fail(`key ${JSON.stringify(k)} is not allowed`);
    // value
    let value: Value;
    if (expr[i] === '{') {
      const list: Value[] = [];
      i++;
      let item = '';
      let closed = false;
      while (i < expr.length) {
        const c = expr[i];
        if (c === '\\' && i + 1 < expr.length) {
          item += expr[i + 1];
          i += 2;
        } else if (c === ',' || c === '}') {
          if (item !== '' || c === ',' || list.length) list.push(typedSetValue(item));
          item = '';
          i++;
          if (c === '}') {
            closed = true;
            break;
          }
        } else {
          item += c;
          i++;
        }
      }
      if (!closed) fail('"{" without "}"');
      if (i < expr.length && expr[i] !== ',') fail('expected "," after "}"');
      i++;
      value = list;
    } else {
      let raw = '';
      while (i < expr.length && expr[i] !== ',') {
        if (expr[i] === '\\' && i + 1 < expr.length) {
          raw += expr[i + 1];
          i += 2;
        } else {
          raw += expr[i++];
        }
      }
      i++; // skip ','
      value = typedSetValue(raw);
    }
    out.push({ path, value });
  }
  return out;
}

/** Applies one assignment to `values` in place. A null value removes the key (Helm's behaviour). */
export function applySetAssignment(values: ValueMap, a: SetAssignment): void {
  let cur: ValueMap | Value[] = values;
  for (let n = 0; n < a.path.length - 1; n++) {
    const k = a.path[n];
    const nextIsIndex = typeof a.path[n + 1] === 'number';
    let next: Value | undefined = Array.isArray(cur) ? cur[k as number] : Object.hasOwn(cur, k as string) ? cur[k as string] : undefined;
    if (nextIsIndex ? !Array.isArray(next) : !isMap(next)) {
      next = nextIsIndex ? [] : {};
      setChild(cur, k, next);
    }
    cur = next as ValueMap | Value[];
  }
  const last = a.path[a.path.length - 1];
  if (a.value === null && !Array.isArray(cur)) {
    delete cur[last as string];
    return;
  }
  setChild(cur, last, a.value);
}

function setChild(container: ValueMap | Value[], key: string | number, value: Value): void {
  if (Array.isArray(container)) {
    if (typeof key !== 'number') throw new EnclavifyError('BAD_CHART', `--set: key ${JSON.stringify(key)} used on a list`);
    while (container.length < key) container.push(null);
    container[key] = value;
  } else {
    if (typeof key === 'number') throw new EnclavifyError('BAD_CHART', `--set: index [${key}] used on a map`);
    // define, not assign: a key such as "__proto__" must never reach the prototype
    Object.defineProperty(container, key, { value, enumerable: true, writable: true, configurable: true });
  }
}

/** Applies `--set` expressions, in order, to a deep copy of `values`, and returns it. */
export function applySetOverrides(values: ValueMap, exprs: readonly string[]): ValueMap {
  const copy = structuredClone(values);
  for (const e of exprs) for (const a of parseSetExpression(e)) applySetAssignment(copy, a);
  return copy;
}
