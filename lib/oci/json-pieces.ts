/**
 * `JSON.stringify(value, null, space)` made in pieces (about 64 KiB each) as they are read: a
 * report of a million files (~160 MB of JSON) is written without ever being one string.
 */

const PIECE = 1 << 16;

/**
 * A non-enumerable property of an object whose array-valued properties are also available as
 * lists made on the fly: `{ files: () => rowsOneByOne() }`. {@link jsonPieces} writes such a
 * property from its list (the same elements as the property's array) without making the array;
 * JSON.stringify, Object.keys and deep equality do not see it.
 */
export const JSON_LISTS: unique symbol = Symbol('enclavify.jsonLists');

/** Marks `obj`'s properties named in `lists` as listed on the fly for {@link jsonPieces}; returns `obj`. */
export function withJsonLists<T extends object>(obj: T, lists: { [K in keyof T]?: () => Iterable<unknown> }): T {
  Object.defineProperty(obj, JSON_LISTS, { value: lists, enumerable: false });
  return obj;
}

/** A value JSON.stringify leaves out of an object (and writes as `null` in an array). */
const skipped = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/** A value after its `toJSON(key)`, as JSON.stringify serializes it (BigInts have one only if you give them one). */
function resolved(v: unknown, key: string): unknown {
  return (typeof v === 'object' || typeof v === 'bigint') && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON(k: string): unknown }).toJSON(key) : v;
}

/** An object or array holding no object or array: stringified in one call (the bulk: rows of a list). */
function flat(v: object): boolean {
  if (JSON_LISTS in v) return false; // its lists are not read as arrays
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === 'object') return false;
  }
  return true;
}

/**
 * The text of `JSON.stringify(value, null, space)` (same `toJSON` calls, omissions and
 * indentation; `space` a string), in pieces whose concatenation is that text. Undefined, like
 * JSON.stringify, when `value` is not serializable (undefined, a function, a symbol): no pieces.
 */
export function* jsonPieces(value: unknown, space = ''): Generator<string> {
  let buf = '';
  const nl = space ? '\n' : '';
  const colon = space ? ': ' : ':';
  function* put(s: string): Generator<string> {
    buf += s;
    if (buf.length >= PIECE) {
      yield buf;
      buf = '';
    }
  }
  // `v` is a value after its toJSON (as JSON.stringify calls it: once, with the key).
  function* walk(v: unknown, indent: string): Generator<string> {
    if (v === null || typeof v !== 'object' || v instanceof Number || v instanceof String || v instanceof Boolean || flat(v)) {
      // JSON text has no raw newline inside strings, so re-indenting the lines is exact.
      const s = JSON.stringify(v, null, space);
      return yield* put(space && indent ? s.replaceAll('\n', '\n' + indent) : s);
    }
    const inner = indent + space;
    if (Array.isArray(v)) return yield* items(v, indent);
    let first = true;
    const lists = (v as { [JSON_LISTS]?: Record<string, (() => Iterable<unknown>) | undefined> })[JSON_LISTS];
    for (const k of Object.keys(v)) {
      const list = lists?.[k];
      if (list) {
        yield* put((first ? '{' : ',') + nl + inner + JSON.stringify(k) + colon);
        first = false;
        yield* items(list(), inner);
        continue;
      }
      const x = resolved((v as Record<string, unknown>)[k], k);
      if (skipped(x)) continue;
      yield* put((first ? '{' : ',') + nl + inner + JSON.stringify(k) + colon);
      first = false;
      yield* walk(x, inner);
    }
    yield* put(first ? '{}' : nl + indent + '}');
  }
  // The elements of an array (or of a list standing for one), as JSON.stringify writes an array.
  function* items(xs: Iterable<unknown>, indent: string): Generator<string> {
    const inner = indent + space;
    let i = 0;
    for (const el of xs) {
      yield* put((i ? ',' : '[') + nl + inner);
      const x = resolved(el, String(i++));
      yield* walk(skipped(x) ? null : x, inner);
    }
    yield* put(i ? nl + indent + ']' : '[]');
  }
  const top = resolved(value, '');
  if (skipped(top)) return;
  yield* walk(top, '');
  if (buf) yield buf;
}
