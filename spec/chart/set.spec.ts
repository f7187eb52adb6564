/** Helm --set syntax for --k8s-helm-set: parsing, typing, application, and attacks on it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applySetOverrides, parseSetExpression, typedSetValue } from '../../lib/chart/index.js';

test('values are typed like Helm --set', () => {
  assert.equal(typedSetValue('true'), true);
  assert.equal(typedSetValue('FALSE'), false);
  assert.equal(typedSetValue('null'), null);
  assert.equal(typedSetValue('0'), 0);
  assert.equal(typedSetValue('42'), 42);
  assert.equal(typedSetValue('-3'), -3);
  assert.equal(typedSetValue('0755'), '0755', 'leading zero stays a string');
  assert.equal(typedSetValue('1.5'), '1.5', 'Helm --set does not make floats');
  assert.equal(typedSetValue('1G'), '1G');
  assert.equal(typedSetValue(''), '');
  assert.equal(typedSetValue('99999999999999999999'), '99999999999999999999');
});

test('paths, escapes, several assignments, lists and indices', () => {
  assert.deepEqual(parseSetExpression('a.b.c=1'), [{ path: ['a', 'b', 'c'], value: 1 }]);
  assert.deepEqual(parseSetExpression('nodeSelector.kubernetes\\.io/arch=amd64'), [{ path: ['nodeSelector', 'kubernetes.io/arch'], value: 'amd64' }]);
  assert.deepEqual(parseSetExpression('a=1,b=x\\,y'), [{ path: ['a'], value: 1 }, { path: ['b'], value: 'x,y' }]);
  assert.deepEqual(parseSetExpression('args={--port,8080}'), [{ path: ['args'], value: ['--port', 8080] }]);
  assert.deepEqual(parseSetExpression('list={}'), [{ path: ['list'], value: [] }]);
  assert.deepEqual(parseSetExpression('tolerations[1].key=sgx'), [{ path: ['tolerations', 1, 'key'], value: 'sgx' }]);
  assert.deepEqual(parseSetExpression('url=http://x/?a=b'), [{ path: ['url'], value: 'http://x/?a=b' }], 'only the first "=" separates');
});

test('applying overrides: nested creation, lists, null removes, input untouched', () => {
  const base = { a: { keep: 1, drop: 2 }, list: ['x'] };
  const out = applySetOverrides(base, ['a.new.deep=v', 'a.drop=null', 'list[2]=z', 'fresh[0].name=n', 'a.keep=7']);
  assert.deepEqual(out, { a: { keep: 7, new: { deep: 'v' } }, list: ['x', null, 'z'], fresh: [{ name: 'n' }] });
  assert.deepEqual(base, { a: { keep: 1, drop: 2 }, list: ['x'] });
  assert.deepEqual(applySetOverrides({ a: 'scalar' }, ['a.b=1']), { a: { b: 1 } }, 'a scalar is replaced by a map, as Helm does');
});

test('malformed expressions are rejected with the expression in the message', () => {
  for (const bad of ['novalue', '=x', 'a..b=1', 'a[x]=1', 'a[1=2', 'a,b=1', 'list={a,b', 'a[99999999]=1', 'a\\']) {
    assert.throws(() => parseSetExpression(bad), (e: Error) => e.message.includes(JSON.stringify(bad)), bad);
  }
});

test('attack: --set cannot pollute Object.prototype', () => {
  for (const evil of ['__proto__.polluted=yes', 'a.__proto__.polluted=yes', 'constructor.prototype.polluted=yes', 'a[0].__proto__.x=1']) {
    assert.throws(() => applySetOverrides({ a: {} }, [evil]), /not allowed/, evil);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
