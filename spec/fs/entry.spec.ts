import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath } from '../../lib/fs/entry.js';

/** The definition normalizePath follows, without its fast path for paths already normalised. */
function reference(p: string): string | undefined | 'error' {
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return 'error';
    parts.push(part);
  }
  return parts.length ? parts.join('/') : undefined;
}

test('normalizePath: every short path over / . a é agrees with the definition (fast path included)', () => {
  const alphabet = ['/', '.', 'a', 'é'];
  let checked = 0;
  const visit = (p: string, depth: number) => {
    const got = normalizePath(p);
    assert.deepEqual(got instanceof Error ? 'error' : got, reference(p), JSON.stringify(p));
    if (got instanceof Error) assert.equal((got as Error & { code?: string }).code, 'FS_BAD_PATH');
    checked++;
    if (depth) for (const c of alphabet) visit(p + c, depth - 1);
  };
  visit('', 7);
  assert.equal(checked, (4 ** 8 - 1) / 3);
  assert.equal(normalizePath('usr/lib/x'), 'usr/lib/x');
  assert.equal(normalizePath('./usr//lib/./x/'), 'usr/lib/x');
  assert.equal(normalizePath('./'), undefined);
  assert.ok(normalizePath('a/../b') instanceof Error);
  assert.equal(normalizePath('a/...'), 'a/...');
  assert.equal(normalizePath('.a/..b'), '.a/..b');
});
