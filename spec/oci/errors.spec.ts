/**
 * Errors as an API: the ERROR_CODES table is sorted and documented (docs/errors.md is generated
 * from it and checked in), and lib/ throws no plain Error: every error path is coded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asEnclavifyError, EnclavifyError, ERROR_CODES, isErrorCode } from '../../lib/oci/errors.js';
import { ERRORS_DOC, renderErrorsDoc } from '../../scripts/docs-errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? tsFiles(p) : d.name.endsWith('.ts') ? [p] : [];
  });
}

test('ERROR_CODES: one entry per code, sorted A-Z, exit 1/2/3, one sentence each', () => {
  const codes = Object.keys(ERROR_CODES);
  assert.deepEqual(codes, [...codes].sort(), 'keep ERROR_CODES sorted (code-point order)');
  for (const [code, e] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^[A-Z][A-Z0-9_]*$/, code);
    assert.ok([1, 2, 3].includes(e.exit), `${code}: exit ${e.exit}`);
    assert.match(e.summary, /^[A-Z"'`a-z].*\.$/, `${code}: the summary is one sentence ending in a period`);
  }
  // The table's source has one line per code, so that parallel branches merge without conflicts.
  const src = readFileSync(path.join(root, 'lib/oci/errors.ts'), 'utf8');
  for (const code of codes) assert.equal(src.split('\n').filter((l) => l.startsWith(`  ${code}: { exit: `)).length, 1, code);
});

test('docs/errors.md is generated from ERROR_CODES (run `npm run docs:errors`)', () => {
  assert.equal(readFileSync(ERRORS_DOC, 'utf8'), renderErrorsDoc(), 'docs/errors.md is stale: run npm run docs:errors');
  for (const code of Object.keys(ERROR_CODES)) assert.ok(renderErrorsDoc().includes(`| \`${code}\` |`), code);
});

/**
 * Plain errors that may stay: argument checks of the crypto primitives and of the encrypted-file
 * format, which throw RangeError as node:crypto does (their callers in the library check first,
 * so none reaches a caller of an exported function).
 */
const ALLOWED_PLAIN = new Map([
  ['lib/crypto/backend.ts', 1],
  ['lib/crypto/sp800-108.ts', 1],
  ['lib/protect/pf/format.ts', 1],
  ['lib/protect/pf/deterministic.ts', 1],
]);

test('lib/ throws no plain Error, TypeError or RangeError outside the allowed list', () => {
  const found = new Map<string, string[]>();
  for (const file of tsFiles(path.join(root, 'lib'))) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((l, i) => {
      if (/\bnew (?:Error|TypeError|RangeError|SyntaxError)\(|\bextends (?:Error|TypeError|RangeError)\b/.test(l) && !/^\s*(?:\/\/|\*)/.test(l)) {
        if (rel === 'lib/oci/errors.ts' && /class EnclavifyError extends Error/.test(l)) return;
        found.set(rel, [...(found.get(rel) ?? []), `${rel}:${i + 1}: ${l.trim()}`]);
      }
    });
  }
  const unexpected = [...found].filter(([f, ls]) => ls.length > (ALLOWED_PLAIN.get(f) ?? 0)).flatMap(([, ls]) => ls);
  assert.deepEqual(unexpected, [], 'throw an EnclavifyError with a code of ERROR_CODES instead');
});

test('every code string the library passes to an error is in ERROR_CODES', () => {
  // The type checker enforces this for literals; this catches codes built at run time.
  for (const file of tsFiles(path.join(root, 'lib'))) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:EnclavifyError|PfError|fail|bad|err)\(\s*'([A-Z][A-Z0-9_]+)'/g)) {
      assert.ok(isErrorCode(m[1]), `${path.relative(root, file)}: ${m[1]} is not in ERROR_CODES`);
    }
  }
});

test('asEnclavifyError: system errors keep their path and cause, aborts are ABORTED, the rest is coded', () => {
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/x/y'"), { code: 'ENOENT', syscall: 'open', path: '/x/y' });
  const e1 = asEnclavifyError(enoent, 'reading keys');
  assert.equal(e1.code, 'NOT_FOUND');
  assert.match(e1.message, /^reading keys: ENOENT: .*\/x\/y/);
  assert.equal(e1.cause, enoent);
  const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', syscall: 'open' });
  assert.equal(asEnclavifyError(eacces, 'x').code, 'PERMISSION_DENIED');
  const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC', syscall: 'write' });
  assert.equal(asEnclavifyError(enospc, 'x').code, 'NO_SPACE');
  const abort = Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
  assert.equal(asEnclavifyError(abort, 'writing').code, 'ABORTED');
  assert.equal(asEnclavifyError(new TypeError('x is undefined'), 'y').code, 'INTERNAL');
  assert.equal(asEnclavifyError(new Error('boom'), 'y', 'TRANSFORM_FAILED').code, 'TRANSFORM_FAILED');
  const own = new EnclavifyError('BAD_DIGEST', 'd');
  assert.equal(asEnclavifyError(own, 'z'), own);
});
