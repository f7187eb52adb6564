/**
 * SIGINT and SIGTERM: the CLI cancels the running command, removes its temporaries (the
 * pipeline's staging directory, temporary blobs) and exits 130 / 143.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratch } from '../helpers/images.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';
import { filesUnder } from '../helpers/disk-tree.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the CLI, sends `sig` once stderr matches `when`; resolves to the exit code and stderr. */
function interrupt(args: string[], when: RegExp, sig: NodeJS.Signals, tmp: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'spec/helpers/cli-process.ts', ...args], { cwd: root, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr += d;
      if (!sent && when.test(stderr)) {
        sent = true;
        child.kill(sig);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('SIGINT during a conversion: exit 130, the staging directory removed, nothing written', { skip: pythonImageSkip }, async () => {
  const s = scratch();
  try {
    const tmp = path.join(s.dir, 'tmp');
    mkdirSync(tmp);
    const r = await interrupt(['convert', '--from', pythonImageRef, '--to', `oci:${s.dir}/out:x`, '--dir', '/usr/share/doc', '--output-dir', path.join(s.dir, 'keys')], /fileClassify: start/, 'SIGINT', tmp);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGINT: cancelling/);
    assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('enclavify-')), [], 'no temporary directory survives');
    assert.ok(!existsSync(path.join(s.dir, 'out')), 'no image was written');
  } finally {
    s.done();
  }
});

test('SIGTERM during a copy: exit 143, no temporary blob in the destination', { skip: pythonImageSkip }, async () => {
  const s = scratch();
  try {
    const tmp = path.join(s.dir, 'tmp');
    mkdirSync(tmp);
    const r = await interrupt(['copy', '--no-validate', pythonImageRef, `oci:${s.dir}/dst:x`], /writing layer/, 'SIGTERM', tmp);
    assert.equal(r.code, 143, r.stderr);
    assert.deepEqual(filesUnder(path.join(s.dir, 'dst')).filter((f) => /\.tmp/.test(f)), []);
    assert.ok(!existsSync(path.join(s.dir, 'dst', 'index.json')), 'no index.json: the copy did not finish');
  } finally {
    s.done();
  }
});
