/**
 * Writer -> reader round trips for the sizes at node and MHT boundaries (including a second MHT
 * level), with both backends and both staging modes; deterministic mode; input validation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { nobleBackend, nodeBackend } from '../../lib/crypto/index.js';
import type { CryptoBackend } from '../../lib/crypto/index.js';
import { PfError, encryptProtectedFile, protectedFileSize, verifyProtectedFile } from '../../lib/protect/pf/index.js';
import type { EncryptProtectedFileOptions } from '../../lib/protect/pf/index.js';
import { NODE_SIZE, dataNodePhysical, mhtNodePhysical } from '../../lib/protect/pf/format.js';
import { collect, fixtureKey, patternBytes, patternSource } from './pf-helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const patternSha = (size: number) => {
  const h = createHash('sha256');
  for (let off = 0; off < size; off += 1 << 20) h.update(patternBytes(off, Math.min(1 << 20, size - off)));
  return h.digest('hex');
};
const masterKey = new Uint8Array(32).fill(7);

async function encrypt(opts: Partial<EncryptProtectedFileOptions> & { size: number }): Promise<Buffer> {
  const pf = await encryptProtectedFile({
    wrapKey: fixtureKey,
    path: '/app/data/file.bin',
    plaintext: patternSource(opts.size),
    ...opts,
  });
  try {
    const bytes = await collect(pf.stream());
    assert.equal(bytes.length, pf.size);
    assert.equal(pf.size, protectedFileSize(opts.size));
    return bytes;
  } finally {
    await pf.dispose();
  }
}

const SECOND_LEVEL = 3072 + 4096 * 96 * 33 + 1; // first byte under MHT #33, a child of MHT #1
const sizes = [0, 1, 3072, 3073, 4096 * 96 + 3072, 4096 * 96 + 3073, SECOND_LEVEL + 20_000];

for (const backend of [nodeBackend, nobleBackend] as CryptoBackend[]) {
  for (const size of sizes) {
    test(`${backend.name}: round trip of ${size} bytes`, async () => {
      const bytes = await encrypt({ size, backend });
      const info = await verifyProtectedFile({ source: bytes, wrapKey: fixtureKey, path: '/app/data/file.bin', backend });
      assert.equal(info.plainSize, size);
      assert.equal(info.sha256, patternSha(size));
      assert.equal(info.version, '2.0');
    });
  }
}

test('the writer lays out node 0 like Gramine: magic, version 2.0, flags 0, zero padding', async () => {
  const bytes = await encrypt({ size: 10 });
  assert.equal(bytes.subarray(0, 8).toString('latin1'), 'GRAFS_PF');
  assert.deepEqual([...bytes.subarray(8, 10)], [2, 0]);
  assert.equal(bytes[58], 0);
  assert.ok(bytes.subarray(59 + 3884, 4096).every((b) => b === 0));
});

test('on-disk sizes equal the Gramine fixtures\' size_on_disk', async () => {
  const want: [number, number][] = [[0, 4096], [1, 4096], [3072, 4096], [3073, 12288], [10000, 16384], [396288, 401408], [396289, 409600], [20, 4096]];
  for (const [size, disk] of want) assert.equal((await encrypt({ size })).length, disk, `size ${size}`);
});

test('large files are staged in a temporary file under tmpDir, removed on dispose', async () => {
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'pf-spec-'));
  try {
    const size = 4096 * 96 * 2 + 5000; // three MHT nodes, forced onto disk
    const pf = await encryptProtectedFile({ wrapKey: fixtureKey, path: '/x', size, plaintext: patternSource(size), tmpDir, memoryThreshold: 0 });
    assert.equal((await readdir(tmpDir)).length, 1);
    const first = await collect(pf.stream());
    const second = await collect(pf.stream()); // readable more than once
    assert.ok(first.equals(second));
    const info = await verifyProtectedFile({ source: first, wrapKey: fixtureKey, path: '/x' });
    assert.equal(info.sha256, patternSha(size));
    await pf.dispose();
    await pf.dispose(); // idempotent
    assert.deepEqual(await readdir(tmpDir), []);

    // A failed write cleans up too.
    await assert.rejects(
      encryptProtectedFile({ wrapKey: fixtureKey, path: '/x', size: size + 1, plaintext: patternSource(size), tmpDir, memoryThreshold: 0 }),
      (e: unknown) => e instanceof PfError && e.code === 'PF_INPUT',
    );
    assert.deepEqual(await readdir(tmpDir), []);
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
});

test('random mode: the same input encrypts differently every time (fresh keys and nonce)', async () => {
  const a = await encrypt({ size: 5000 });
  const b = await encrypt({ size: 5000 });
  assert.notEqual(sha(a), sha(b));
  assert.notDeepEqual(a.subarray(10, 42), b.subarray(10, 42)); // metadata nonce
});

test('deterministic mode: same input and keys -> identical bytes; node and noble agree', async () => {
  for (const size of [0, 100, 4096 * 96 + 3073]) {
    const det = { masterKey };
    const a = await encrypt({ size, deterministic: det });
    const b = await encrypt({ size, deterministic: det, memoryThreshold: 0 }); // disk staging
    const c = await encrypt({ size, deterministic: det, backend: nobleBackend });
    assert.equal(sha(a), sha(b), `size ${size}: memory vs disk staging`);
    assert.equal(sha(a), sha(c), `size ${size}: node vs noble`);
    const info = await verifyProtectedFile({ source: a, wrapKey: fixtureKey, path: '/app/data/file.bin' });
    assert.equal(info.sha256, patternSha(size));
  }
});

test('deterministic mode with a second MHT level: node and noble agree', async () => {
  const a = await encrypt({ size: SECOND_LEVEL, deterministic: { masterKey } });
  const b = await encrypt({ size: SECOND_LEVEL, deterministic: { masterKey }, backend: nobleBackend });
  assert.ok(a.equals(b));
});

test('deterministic mode: output depends on master key, path and content; unchanged nodes stay equal', async () => {
  const size = 3072 + 4096 * 4;
  const base = await encrypt({ size, deterministic: { masterKey } });
  assert.notEqual(sha(base), sha(await encrypt({ size, deterministic: { masterKey: new Uint8Array(32).fill(8) } })));
  const otherPath = await encrypt({ size, deterministic: { masterKey }, path: '/app/data/other.bin' });
  for (let p = 0; p < base.length / NODE_SIZE; p++) {
    const n = (b: Buffer) => b.subarray(p * NODE_SIZE, (p + 1) * NODE_SIZE);
    assert.ok(!n(base).equals(n(otherPath)), `node ${p} differs under another path`);
  }

  // Change one byte in data node 2: that node, its MHT (root) and the metadata change; nothing else.
  const plain = patternBytes(0, size);
  plain[3072 + 2 * 4096 + 17] ^= 0xff;
  const changed = await encrypt({ size, deterministic: { masterKey }, plaintext: [plain] });
  const differs = [];
  for (let p = 0; p < base.length / NODE_SIZE; p++) {
    if (!base.subarray(p * NODE_SIZE, (p + 1) * NODE_SIZE).equals(changed.subarray(p * NODE_SIZE, (p + 1) * NODE_SIZE))) differs.push(p);
  }
  assert.deepEqual(differs, [0, mhtNodePhysical(0), dataNodePhysical(2)]);
});

test('deterministic mode rejects a short master key', async () => {
  await assert.rejects(encrypt({ size: 1, deterministic: { masterKey: new Uint8Array(8) } }), RangeError);
});

test('writer input errors: wrong content length, unusable path, bad key', async () => {
  const isInput = (e: unknown) => e instanceof PfError && e.code === 'PF_INPUT' && e.message.includes('/app/data/file.bin');
  await assert.rejects(encrypt({ size: 5000, plaintext: patternSource(4999) }), isInput);
  await assert.rejects(encrypt({ size: 5000, plaintext: patternSource(5001) }), isInput);
  await assert.rejects(encrypt({ size: 1, path: '/' + 'a'.repeat(771) }), (e: unknown) => e instanceof PfError && e.code === 'PF_INPUT');
  await assert.rejects(encrypt({ size: 1, path: '/a\0b' }), (e: unknown) => e instanceof PfError && e.code === 'PF_INPUT');
  await assert.rejects(encrypt({ size: 1, wrapKey: new Uint8Array(32) }), /wrap key must be 16 bytes/);
  // 771 bytes is the longest path that fits.
  assert.equal((await encrypt({ size: 1, path: '/' + 'a'.repeat(770) })).length, 4096);
});

test('a version 1 file (no flags byte, encrypted part at 58) is read', async () => {
  const v2 = await encrypt({ size: 5000 });
  const v1 = Buffer.from(v2);
  v1[8] = 1;
  v1.copy(v1, 58, 59, 59 + 3884); // GCM has no AAD: moving the ciphertext keeps it valid
  v1[58 + 3884] = 0;
  const info = await verifyProtectedFile({ source: v1, wrapKey: fixtureKey, path: '/app/data/file.bin' });
  assert.equal(info.version, '1.0');
  assert.equal(info.sha256, patternSha(5000));
});
