/**
 * The independent reader of Gramine encrypted files (spec/interop/gramine_pf.py: Python and the
 * `cryptography` package, written from the format notes, not from our TypeScript).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { repoRoot } from './tools.js';

export const pfPythonScript = path.join(repoRoot, 'spec', 'interop', 'gramine_pf.py');
export const python = '/usr/bin/python3';

/** Skip reason when python3-cryptography is missing; with REQUIRE_INTEROP=1 a missing one is an error. */
export function pythonCryptoSkip(): string | false {
  if (spawnSync(python, ['-c', 'import cryptography.hazmat.primitives.cmac'], { stdio: 'ignore' }).status === 0) return false;
  if (process.env.REQUIRE_INTEROP === '1') throw new Error('REQUIRE_INTEROP=1 but python3-cryptography is not installed (apt-get install python3-cryptography)');
  return 'python3-cryptography is not installed';
}

/** Decrypts a file with the Python reader; returns the plaintext. Throws with its message on any failure. */
export function pyDecryptBytes(file: string, keyHex: string, expectedPath: string): Buffer {
  return execFileSync(python, [pfPythonScript, keyHex, expectedPath, file], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Decrypts with the Python reader; returns [sha256 hex, size] of the plaintext. */
export function pyDecrypt(file: string, keyHex: string, expectedPath: string): [string, number] {
  const out = pyDecryptBytes(file, keyHex, expectedPath);
  return [createHash('sha256').update(out).digest('hex'), out.length];
}
