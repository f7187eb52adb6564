/**
 * Attacks on encrypted files: every modification an untrusted host can make is rejected with a
 * specific error code that names the path, and no key material ends up in messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { nobleBackend, nodeBackend } from '../../lib/crypto/index.js';
import type { CryptoBackend } from '../../lib/crypto/index.js';
import { PfError, decryptProtectedFile, encryptProtectedFile, verifyProtectedFile } from '../../lib/protect/pf/index.js';
import type { PfErrorCode } from '../../lib/protect/pf/index.js';
import { NODE_SIZE, dataNodePhysical, mhtNodePhysical } from '../../lib/protect/pf/format.js';
import { fixtures } from '../helpers/tools.js';
import { collect, fixtureKey, patternSource, toHex } from './pf-helpers.js';

const PATH = '/app/data/victim.bin';
const SIZE = 3072 + 4096 * 96 + 5000; // root MHT, 96 data nodes, MHT #1 with two data nodes

async function make(p = PATH, size = SIZE): Promise<Buffer> {
  const pf = await encryptProtectedFile({ wrapKey: fixtureKey, path: p, size, plaintext: patternSource(size) });
  try {
    return await collect(pf.stream());
  } finally {
    await pf.dispose();
  }
}
const good = await make();

/** Asserts that reading `bytes` fails with `code` (and location, when given), with both backends. */
async function rejects(
  bytes: Uint8Array,
  code: PfErrorCode,
  opts: { path?: string; key?: Uint8Array; kind?: string; index?: number; message?: RegExp; backends?: CryptoBackend[] } = {},
): Promise<void> {
  for (const backend of opts.backends ?? [nodeBackend, nobleBackend]) {
    await assert.rejects(
      verifyProtectedFile({ source: bytes, wrapKey: opts.key ?? fixtureKey, path: opts.path ?? PATH, backend }),
      (e: unknown) => {
        assert.ok(e instanceof PfError, `expected PfError, got ${e}`);
        assert.equal(e.code, code, e.message);
        assert.ok(e.message.includes(opts.path ?? PATH), `message names the path: ${e.message}`);
        assert.ok(!e.message.includes(toHex(fixtureKey)), 'no key in message');
        if (opts.kind) assert.equal(e.location?.kind, opts.kind, e.message);
        if (opts.index !== undefined) assert.equal(e.location?.index, opts.index, e.message);
        if (opts.message) assert.match(e.message, opts.message);
        return true;
      },
    );
  }
}

function flip(offset: number, src: Uint8Array = good): Buffer {
  const b = Buffer.from(src);
  b[offset] ^= 0x01;
  return b;
}

test('the untouched file verifies', async () => {
  const info = await verifyProtectedFile({ source: good, wrapKey: fixtureKey, path: PATH });
  assert.equal(info.plainSize, SIZE);
});

test('flipped byte in a data node -> PF_BAD_MAC naming data node N', async () => {
  await rejects(flip(dataNodePhysical(0) * NODE_SIZE + 100), 'PF_BAD_MAC', { kind: 'data', index: 0, message: /data node 0 .*MAC mismatch/ });
  await rejects(flip(dataNodePhysical(96) * NODE_SIZE + 4095), 'PF_BAD_MAC', { kind: 'data', index: 96 });
  // The zero padding after the content in the last node is authenticated too.
  await rejects(flip(dataNodePhysical(97) * NODE_SIZE + 4000), 'PF_BAD_MAC', { kind: 'data', index: 97 });
});

test('flipped byte in an MHT node -> PF_BAD_MAC naming MHT node N', async () => {
  await rejects(flip(mhtNodePhysical(0) * NODE_SIZE + 7), 'PF_BAD_MAC', { kind: 'mht', index: 0, message: /MHT node 0 .*MAC mismatch/ });
  await rejects(flip(mhtNodePhysical(1) * NODE_SIZE + 3500), 'PF_BAD_MAC', { kind: 'mht', index: 1 });
});

test('flipped byte in a second-level MHT node of a Gramine-written file -> PF_BAD_MAC', async () => {
  const dir = path.join(fixtures, 'gramine-pf');
  const bytes = readFileSync(path.join(dir, 'pattern-13000000.bin.pf'));
  const p = '/app/data/pattern-13000000.bin';
  await rejects(flip(mhtNodePhysical(33) * NODE_SIZE + 1, bytes), 'PF_BAD_MAC', { path: p, kind: 'mht', index: 33, backends: [nodeBackend] });
});

test('modified metadata (encrypted part, nonce, MAC) or wrong key -> PF_BAD_MAC on the metadata', async () => {
  const metadata = { kind: 'metadata', message: /metadata MAC mismatch/ };
  await rejects(flip(59 + 10), 'PF_BAD_MAC', metadata); // inside the stored path
  await rejects(flip(59 + 772), 'PF_BAD_MAC', metadata); // stored size
  await rejects(flip(59 + 900), 'PF_BAD_MAC', metadata); // first content bytes
  await rejects(flip(10), 'PF_BAD_MAC', metadata); // metadata key nonce
  await rejects(flip(41), 'PF_BAD_MAC', metadata); // last nonce byte
  await rejects(flip(42), 'PF_BAD_MAC', metadata); // metadata MAC
  const wrongKey = new Uint8Array(fixtureKey);
  wrongKey[15] ^= 1;
  await rejects(good, 'PF_BAD_MAC', { ...metadata, key: wrongKey });
});

test('bad magic, unknown version or flags -> PF_FORMAT', async () => {
  await rejects(flip(0), 'PF_FORMAT', { message: /bad magic/ });
  const v3 = Buffer.from(good);
  v3[8] = 3;
  await rejects(v3, 'PF_FORMAT', { message: /version 3\.0/ });
  await rejects(flip(58), 'PF_FORMAT', { message: /interrupted/ });
  const flags = Buffer.from(good);
  flags[58] = 0x80;
  await rejects(flags, 'PF_FORMAT', { message: /flags/ });
});

test('the file presented under another path -> PF_PATH_MISMATCH', async () => {
  await rejects(good, 'PF_PATH_MISMATCH', { path: '/app/data/other.bin', message: /victim\.bin/ });
  await rejects(good, 'PF_PATH_MISMATCH', { path: PATH + '/' });
  await rejects(good, 'PF_PATH_MISMATCH', { path: PATH.slice(0, -1) });
  // A genuine file of another path swapped into place is caught the same way.
  const other = await make('/app/data/other.bin');
  await rejects(other, 'PF_PATH_MISMATCH');
});

test('truncated file -> PF_TRUNCATED', async () => {
  await rejects(good.subarray(0, good.length - NODE_SIZE), 'PF_TRUNCATED', { message: /ends after 409600 bytes.*requires 413696 bytes/ });
  await rejects(good.subarray(0, good.length - 1), 'PF_TRUNCATED');
  await rejects(good.subarray(0, NODE_SIZE), 'PF_TRUNCATED');
  await rejects(good.subarray(0, 100), 'PF_TRUNCATED');
  await rejects(new Uint8Array(0), 'PF_TRUNCATED');
});

test('appended node or bytes -> PF_OVERLONG', async () => {
  const lastNode = good.subarray(good.length - NODE_SIZE);
  await rejects(Buffer.concat([good, lastNode]), 'PF_OVERLONG');
  await rejects(Buffer.concat([good, Buffer.alloc(NODE_SIZE)]), 'PF_OVERLONG');
  await rejects(Buffer.concat([good, Buffer.alloc(1)]), 'PF_OVERLONG');
  const small = await make(PATH, 10);
  await rejects(Buffer.concat([small, Buffer.alloc(NODE_SIZE)]), 'PF_OVERLONG');
});

test('swapped, replayed or foreign nodes -> PF_BAD_MAC', async () => {
  const node = (b: Uint8Array, p: number) => b.subarray(p * NODE_SIZE, (p + 1) * NODE_SIZE);
  // Two data nodes swapped.
  const swapped = Buffer.from(good);
  swapped.set(node(good, 3), 2 * NODE_SIZE);
  swapped.set(node(good, 2), 3 * NODE_SIZE);
  await rejects(swapped, 'PF_BAD_MAC', { kind: 'data', index: 0 });
  // A node from another encryption of the same content, same key and path (fresh node keys).
  const again = await make();
  const spliced = Buffer.from(good);
  spliced.set(node(again, dataNodePhysical(5)), dataNodePhysical(5) * NODE_SIZE);
  await rejects(spliced, 'PF_BAD_MAC', { kind: 'data', index: 5 });
  // An older file's metadata node in front of newer nodes.
  const mixed = Buffer.from(good);
  mixed.set(node(again, 0), 0);
  await rejects(mixed, 'PF_BAD_MAC', { kind: 'mht', index: 0 });
});

test('no plaintext of a tampered node is ever yielded', async () => {
  const bad = flip(dataNodePhysical(1) * NODE_SIZE + 5);
  let yielded = 0;
  await assert.rejects(async () => {
    for await (const part of decryptProtectedFile({ source: bad, wrapKey: fixtureKey, path: PATH })) yielded += part.length;
  }, PfError);
  assert.equal(yielded, 3072 + 4096); // metadata content + data node 0, nothing from node 1
});
