/**
 * Files our writer produces are read by an independent implementation of the Gramine format
 * (spec/interop/gramine_pf.py: Python + the `cryptography` package, written from the format notes),
 * and files that implementation rejects are rejected for the right reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encryptProtectedFile } from '../../lib/protect/pf/index.js';
import { nobleBackend, nodeBackend } from '../../lib/crypto/index.js';
import { scratch } from '../helpers/images.js';
import { pfPythonScript, python, pythonCryptoSkip } from '../helpers/pf-python.js';

const script = pfPythonScript;
const py = python;
const skip = pythonCryptoSkip();

async function writePf(dir: string, plain: Buffer, filePath: string, key: Buffer, opts: { backend?: typeof nodeBackend; deterministic?: boolean } = {}): Promise<string> {
  const pf = await encryptProtectedFile({
    wrapKey: key, path: filePath, size: plain.length, plaintext: [plain], tmpDir: dir,
    backend: opts.backend, deterministic: opts.deterministic ? { masterKey: Buffer.alloc(32, 7) } : undefined,
  });
  const chunks: Buffer[] = [];
  for await (const c of pf.stream()) chunks.push(c as Buffer);
  await pf.dispose();
  const out = path.join(dir, `f-${randomBytes(4).toString('hex')}.pf`);
  writeFileSync(out, Buffer.concat(chunks));
  return out;
}

const sizes = [0, 1, 3072, 3073, 10000, 4096 * 96 + 3072, 4096 * 96 + 3073, 3072 + 4096 * 96 * 34 + 5];
for (const backend of [nodeBackend, nobleBackend]) {
  test(`the Python reader decrypts what we write (${backend.name} backend, sizes ${sizes.join(', ')})`, { skip }, async () => {
    const s = scratch();
    try {
      for (const size of sizes) {
        const key = randomBytes(16);
        const plain = randomBytes(size);
        const f = await writePf(s.dir, plain, `/app/data/file-${size}.bin`, key, { backend, deterministic: size % 2 === 1 });
        const out = execFileSync(py, [script, key.toString('hex'), `/app/data/file-${size}.bin`, f], { maxBuffer: 64 << 20 });
        assert.equal(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(plain).digest('hex'), `size ${size}`);
      }
    } finally {
      s.done();
    }
  });
}

test('the Python reader rejects our file under another path, with another key, or tampered', { skip }, async () => {
  const s = scratch();
  try {
    const key = randomBytes(16);
    const f = await writePf(s.dir, randomBytes(5000), '/app/data/a', key);
    const run = (k: string, p: string, file: string) => spawnSync(py, [script, k, p, file], { encoding: 'utf8' });
    assert.match(run(key.toString('hex'), '/app/data/b', f).stderr, /path mismatch/);
    assert.match(run(randomBytes(16).toString('hex'), '/app/data/a', f).stderr, /metadata: MAC mismatch/);
    const b = readFileSync(f);
    b[4096 * 2 + 100] ^= 1;
    writeFileSync(f, b);
    assert.match(run(key.toString('hex'), '/app/data/a', f).stderr, /data node 0: MAC mismatch/);
  } finally {
    s.done();
  }
});
