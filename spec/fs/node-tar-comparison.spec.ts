/**
 * Why layers are parsed by our own tar reader and not by node-tar (docs/dependencies.md): a file
 * capability (the binary xattr `security.capability`, which Debian's `ping` carries) must survive
 * a conversion, and node-tar drops it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { Parser } from 'tar';
import { readTar } from '../../lib/fs/tar-read.js';
import { scratch } from '../helpers/images.js';

const CAP = Buffer.from([1, 0, 0, 2, 0x0a, 0, 0x20, 0]); // binary, with a newline and NULs

test('a binary xattr record: node-tar loses it, our reader keeps it byte for byte', async () => {
  const s = scratch();
  try {
    const file = path.join(s.dir, 'cap.tar');
    // Written by Python's tarfile (an independent writer) as a PAX record.
    execFileSync('python3', ['-c', `import tarfile, io
t = tarfile.open(${JSON.stringify(file)}, 'w', format=tarfile.PAX_FORMAT, encoding='utf-8', errors='surrogateescape')
i = tarfile.TarInfo('bin/ping'); i.size = 1
i.pax_headers = {'SCHILY.xattr.security.capability': bytes.fromhex('${CAP.toString('hex')}').decode('utf-8', 'surrogateescape')}
t.addfile(i, io.BytesIO(b'x')); t.close()`]);
    const seen: Record<string, unknown>[] = [];
    await new Promise<void>((resolve, reject) => {
      const p = new Parser();
      p.on('entry', (e) => {
        seen.push({ ...(e.extended ?? {}) });
        e.resume();
      });
      p.on('end', () => resolve());
      p.on('error', reject);
      p.end(readFileSync(file));
    });
    assert.equal(seen.length, 1);
    assert.ok(!Object.keys(seen[0]).some((k) => k.includes('xattr') || k.includes('capability')), 'node-tar kept the xattr after all: revisit docs/dependencies.md');
    for await (const { entry, content } of readTar(createReadStream(file), { source: 'cap.tar' })) {
      content?.resume();
      assert.deepEqual(entry.pax?.['SCHILY.xattr.security.capability'], CAP);
    }
  } finally {
    s.done();
  }
});
