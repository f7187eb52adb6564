/**
 * Kill and rerun: a real `enclavify convert` process is interrupted (SIGTERM, SIGINT) or killed
 * (SIGKILL) at several moments; then the identical command succeeds without manual cleanup, no
 * debris is left in TMPDIR, the layout or the output directory, and the keys file belongs to the
 * image the tag names (verify passes, its recorded digest is the tag's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bbOci, scratch } from '../helpers/images.js';
import { filesUnder } from '../helpers/disk-tree.js';
import { openImage } from '../../lib/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the CLI as a process; sends `sig` once stderr matches `when` (never, when undefined). */
function cli(args: string[], tmp: string, when?: RegExp, sig?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; sent: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'spec/helpers/cli-process.ts', ...args], { cwd: root, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (when && sig && !sent && when.test(stderr)) {
        sent = true;
        child.kill(sig);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: stdout.trim(), stderr, sent }));
  });
}

const debris = (dir: string) => (existsSync(dir) ? filesUnder(dir).filter((f) => /\.tmp-|\.owner|\.pending$|index\.json\.lock/.test(f)) : []);
const ours = (tmp: string) => readdirSync(tmp).filter((n) => n.startsWith('enclavify-'));

const cases: Array<[NodeJS.Signals, RegExp]> = [
  ['SIGTERM', /encryptFS: start/],
  ['SIGINT', /writing layer 2/],
  ['SIGKILL', /encryptFS: start/],
  ['SIGKILL', /writing layer 1/],
  ['SIGKILL', /writing protection manifest/],
];

for (const [sig, when] of cases) {
  test(`${sig} at /${when.source}/, then the identical convert succeeds and leaves nothing behind`, async () => {
    const s = scratch();
    try {
      const tmp = path.join(s.dir, 'tmp');
      mkdirSync(tmp);
      const out = path.join(s.dir, 'out');
      const layout = path.join(s.dir, 'layout');
      const args = ['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${layout}:enc`, '--dir', '/app/data', '--output-dir', out];
      const killed = await cli(args, tmp, when, sig);
      if (killed.sent && sig !== 'SIGKILL') {
        // Interrupted: the CLI cleaned up itself and exits 128 + signal number.
        if (killed.code !== 0) {
          assert.equal(killed.code, sig === 'SIGINT' ? 130 : 143, killed.stderr);
          assert.deepEqual(ours(tmp), [], 'no temporary directory survives');
        }
      }
      if (killed.sent && sig === 'SIGKILL') {
        assert.equal(killed.signal, 'SIGKILL');
        assert.ok(ours(tmp).length > 0, 'kill -9 left the staging directory (which the rerun must sweep)');
      }
      const again = await cli(args, tmp);
      assert.equal(again.code, 0, again.stderr);
      const digest = again.stdout.split('\n')[0];
      assert.match(digest, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(ours(tmp), [], 'the rerun swept what the killed run left, and removed its own');
      assert.deepEqual([...debris(layout), ...debris(out)], []);
      const keys = JSON.parse(readFileSync(path.join(out, 'keys.json'), 'utf8'));
      assert.equal(keys.conversion.image, digest);
      assert.equal(await (await openImage(`oci:${layout}:enc`)).digest(), digest);
      const v = await cli(['verify', `oci:${layout}:enc`, '--keys', path.join(out, 'keys.json')], tmp);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    } finally {
      s.done();
    }
  });
}
