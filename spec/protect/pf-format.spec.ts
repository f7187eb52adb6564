/**
 * Layout of Gramine encrypted files: on-disk sizes (the examples of the reference notes and the
 * fixtures) and node placement.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyNode, dataNodePhysical, mhtNodePhysical, mhtParent, pfLayout, protectedFileSize } from '../../lib/protect/pf/format.js';

test('protectedFileSize matches the documented examples', () => {
  const cases: [number, number][] = [
    [0, 4096], [1, 4096], [30, 4096], [3072, 4096], [3073, 12288], [10000, 16384],
    [396288, 401408], [396289, 409600], [2_000_000, 2_027_520], [13_000_000, 13_144_064],
  ];
  for (const [plain, disk] of cases) assert.equal(protectedFileSize(plain), disk, `size ${plain}`);
  assert.throws(() => protectedFileSize(-1), RangeError);
  assert.throws(() => protectedFileSize(1.5), RangeError);
});

test('node placement: 0 metadata, 1 root MHT, 2..97 data, 98 MHT #1, ...', () => {
  assert.equal(dataNodePhysical(0), 2);
  assert.equal(dataNodePhysical(95), 97);
  assert.equal(mhtNodePhysical(1), 98);
  assert.equal(dataNodePhysical(96), 99);
  assert.deepEqual(mhtParent(1), { parent: 0, slot: 0 });
  assert.deepEqual(mhtParent(32), { parent: 0, slot: 31 });
  assert.deepEqual(mhtParent(33), { parent: 1, slot: 0 });
  // classifyNode inverts the placement functions, and parents always precede children on disk.
  for (let l = 0; l < 200; l++) {
    assert.deepEqual(classifyNode(mhtNodePhysical(l)), { kind: 'mht', mht: l });
    if (l > 0) assert.ok(mhtNodePhysical(mhtParent(l).parent) < mhtNodePhysical(l));
  }
  for (let d = 0; d < 20000; d += 7) {
    assert.deepEqual(classifyNode(dataNodePhysical(d)), { kind: 'data', data: d, mht: Math.floor(d / 96) });
  }
  const big = pfLayout(3072 + 4096 * 96 * 33 + 1);
  assert.equal(big.mhtNodes, 34); // MHT #33 is the first on the second level
});
