/** jsonPieces: the text of JSON.stringify(value, null, space), in pieces, for every shape JSON.stringify handles. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonPieces, withJsonLists } from '../../lib/oci/json-pieces.js';

const cases: Array<[string, unknown]> = [
  ['primitives', [1, -0, 1.5e300, NaN, Infinity, 'a"\\\n\u2028\u{1f600}', true, false, null]],
  ['empty', { a: [], b: {}, c: [[]], d: [{}] }],
  ['omitted and null', { u: undefined, f: () => 1, s: Symbol('x'), arr: [undefined, () => 1, Symbol('y'), 2], hole: [1, , 3] }], // eslint-disable-line no-sparse-arrays
  ['toJSON', { d: new Date(0), custom: { toJSON: (k: string) => `key ${k}` }, gone: { toJSON: () => undefined }, list: [{ toJSON: (k: string) => ({ at: k }) }] }],
  ['boxed', { n: Object(1), s: Object('x'), b: Object(false) }],
  ['getter', { get files() { return [{ path: '/a', size: 1 }, { path: '/b', size: 2, nested: { x: [1] } }]; } }],
  ['deep', { a: { b: { c: { d: [{ e: [1, { f: 'g' }] }] } } } }],
  ['top level primitive', 'just a string'],
  ['top level flat array', [1, 2, 3]],
  ['report-like', { fileClassify: { totals: { encrypted: { files: 1, bytes: 2 } }, files: Array.from({ length: 5000 }, (_, i) => ({ path: `/d/${i}`, class: 'authenticated', reason: 'default: authenticated', size: i })) } }],
];

test('jsonPieces joins to JSON.stringify, indented and compact', () => {
  for (const [what, v] of cases) {
    for (const space of ['', '  ', '\t']) {
      assert.equal([...jsonPieces(v, space)].join(''), JSON.stringify(v, null, space), `${what} (space ${JSON.stringify(space)})`);
    }
  }
});

test('jsonPieces: pieces are bounded, nothing for what JSON.stringify gives undefined', () => {
  const big = { rows: Array.from({ length: 100_000 }, (_, i) => ({ path: `/file/${i}`, size: i })) };
  const pieces = [...jsonPieces(big, '  ')];
  assert.ok(pieces.length > 50);
  // Each piece is about 64 KiB: one row past the threshold at most.
  for (const p of pieces) assert.ok(p.length < (1 << 16) + 1024, String(p.length));
  assert.equal(pieces.join(''), JSON.stringify(big, null, 2));
  for (const v of [undefined, () => 1, Symbol('x'), { toJSON: () => undefined }]) assert.deepEqual([...jsonPieces(v)], []);
  assert.throws(() => [...jsonPieces({ n: 1n })], TypeError);
});

test('jsonPieces writes a property marked withJsonLists from its list, without reading the property', () => {
  let reads = 0;
  let listed = 0;
  const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ path: `/r/${i}`, size: i }));
  for (const n of [0, 1, 3000]) {
    const doc = withJsonLists(
      {
        before: 1,
        get files() {
          reads++;
          return rows(n);
        },
        after: [{ x: 1 }],
      },
      {
        files: function* () {
          for (const r of rows(n)) {
            listed++;
            yield r;
          }
        },
      },
    );
    reads = 0;
    listed = 0;
    const text = [...jsonPieces({ report: doc }, '  ')].join('');
    assert.equal(reads, 0);
    assert.equal(listed, n);
    // The same text as JSON.stringify (which reads the getter and never sees the symbol).
    assert.equal(text, JSON.stringify({ report: doc }, null, 2));
    assert.equal([...jsonPieces(doc)].join(''), JSON.stringify(doc));
    assert.deepEqual(Object.keys(doc), ['before', 'files', 'after']);
  }
});
