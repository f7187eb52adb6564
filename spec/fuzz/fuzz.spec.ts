/**
 * A bounded fuzzing run with fixed seeds (the longer, random-seeded one is `npm run fuzz`): the
 * tar reader, the merged view, the JSON documents of a layout, gzip/zstd streams, and blobs that do
 * not match their digests, mutated structure-aware from the fixture image. The invariant (see
 * fuzz/targets.ts): success, or an EnclavifyError with a code; no hang, no RangeError/TypeError,
 * no bytes or digest of an unverified blob in a message. Iterations are fixed, so a run is the
 * same on every machine; the time bound only guards a slow one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from '../../fuzz/harness.js';

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

test(`fuzzing: ${SEEDS.length} fixed seeds × 5 targets × 40 iterations keep the invariant`, async () => {
  const r = await fuzz({ seeds: SEEDS, iterations: 40, seconds: 80, stallSeconds: 60 });
  assert.deepEqual(r.findings, [], r.findings.map((f) => `${f.target} seed ${f.seed} iteration ${f.iteration}: ${f.kind}: ${f.message}`).join('\n'));
  assert.ok(r.runs > 0, 'the fuzzer ran');
});
