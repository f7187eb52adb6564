/**
 * Files written by Gramine's own gramine-sgx-pf-crypt (fixtures/gramine-pf) decrypt to their
 * documented plaintexts with both backends, streamed from disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { nobleBackend, nodeBackend } from '../../lib/crypto/index.js';
import { decryptProtectedFile, protectedFileSize, verifyProtectedFile } from '../../lib/protect/pf/index.js';
import { fixtures } from '../helpers/tools.js';
import { patternBytes } from './pf-helpers.js';

const dir = path.join(fixtures, 'gramine-pf');
interface Vector {
  file: string;
  path: string;
  plaintext: { generator?: 'pattern'; text?: string; size: number; sha256: string };
  size_on_disk: number;
}
const manifest = JSON.parse(readFileSync(path.join(dir, 'vectors.json'), 'utf8')) as { key_hex: string; vectors: Vector[] };
const key = new Uint8Array(Buffer.from(manifest.key_hex, 'hex'));

test('the fixture set covers the documented sizes', () => {
  const sizes = manifest.vectors.map((v) => v.plaintext.size);
  for (const s of [0, 3072, 3073, 396288, 396289, 13_000_000]) assert.ok(sizes.includes(s), `size ${s}`);
});

for (const v of manifest.vectors) {
  for (const backend of [nodeBackend, nobleBackend]) {
    test(`${v.file} (${v.plaintext.size} bytes) decrypts with ${backend.name}`, async () => {
      const file = path.join(dir, v.file);
      assert.equal(statSync(file).size, v.size_on_disk);
      assert.equal(protectedFileSize(v.plaintext.size), v.size_on_disk);
      const info = await verifyProtectedFile({ source: createReadStream(file), wrapKey: key, path: v.path, backend });
      assert.equal(info.sha256, v.plaintext.sha256);
      assert.equal(info.plainSize, v.plaintext.size);
      assert.equal(info.diskSize, v.size_on_disk);
      assert.equal(info.path, v.path);
      assert.equal(info.version, '2.0');
    });
  }
  test(`${v.file}: content equals the documented generator`, async () => {
    const parts: Uint8Array[] = [];
    const bytes = readFileSync(path.join(dir, v.file));
    for await (const p of decryptProtectedFile({ source: bytes, wrapKey: key, path: v.path })) parts.push(new Uint8Array(p));
    const got = Buffer.concat(parts);
    const want = v.plaintext.text !== undefined ? Buffer.from(v.plaintext.text) : Buffer.from(patternBytes(0, v.plaintext.size));
    assert.ok(got.equals(want));
  });
}
