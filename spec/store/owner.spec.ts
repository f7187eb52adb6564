/**
 * Ownership of temporaries is proved by a listening Unix socket, not by a pid: a second process
 * never sweeps a live owner's temporaries, and sweeps a killed owner's (kill -9) at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratch } from '../helpers/images.js';
import { sweepTemps } from '../../lib/oci/temp.js';
import { sweepTemporaries } from '../../lib/store/oci-layout.js';
import { probeOwner, tmpOwnerSocket } from '../../lib/oci/owner.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A process that makes a temporary directory in `tmp` and a temporary blob in `layout`, prints both, then waits. */
async function owner(tmp: string, layout: string): Promise<{ child: ChildProcess; dir: string; blob: string }> {
  const code = `
    import { makeTempDir } from './lib/oci/temp.ts';
    import { claimOwnership, tmpFileName, tmpOwnerSocket } from './lib/oci/owner.ts';
    import { writeFileSync } from 'node:fs';
    const dir = await makeTempDir('enclavify-', ${JSON.stringify(tmp)});
    writeFileSync(dir + '/staged', 'x');
    const blob = tmpFileName(${JSON.stringify(path.join(layout, 'blobs', 'sha256', 'ab'.repeat(32)))});
    await claimOwnership(tmpOwnerSocket(blob));
    writeFileSync(blob, 'partial');
    console.log(JSON.stringify({ dir, blob }));
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes('\n')) break;
  }
  return { child, ...(JSON.parse(out) as { dir: string; blob: string }) };
}

for (const deep of [false, true]) test(`a live owner's temporaries survive a sweep by another process; a killed owner's are swept${deep ? ' (paths longer than a socket address: through /proc/self/fd)' : ''}`, async () => {
  const s = scratch();
  try {
    // Deep: socket paths beyond sun_path's 108 bytes, which Node would truncate silently.
    const base = deep ? path.join(s.dir, 'd'.repeat(120)) : s.dir;
    const tmp = path.join(base, 'tmp');
    const layout = path.join(base, 'layout');
    mkdirSync(tmp, { recursive: true });
    mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
    const o = await owner(tmp, layout);
    if (deep) assert.ok(readdirSync(o.dir).includes('.owner') && readdirSync(path.join(layout, 'blobs', 'sha256')).some((n) => n.startsWith('.owner-')), 'the sockets exist under their full names');
    try {
      assert.equal(await probeOwner(path.join(o.dir, '.owner')), 'live');
      assert.equal(await probeOwner(tmpOwnerSocket(o.blob)), 'live');
      assert.deepEqual(await sweepTemps(tmp), [], 'live owner: nothing swept');
      assert.deepEqual(await sweepTemporaries(layout), []);
      // Stopped is not dead: the kernel still accepts connections on its socket.
      o.child.kill('SIGSTOP');
      assert.deepEqual(await sweepTemps(tmp), []);
      assert.ok(existsSync(o.dir) && existsSync(o.blob));
      o.child.kill('SIGCONT');
    } finally {
      o.child.kill('SIGKILL');
      await once(o.child, 'close').catch(() => undefined);
    }
    assert.ok(existsSync(o.dir) && existsSync(o.blob), 'kill -9 left debris');
    assert.equal(await probeOwner(path.join(o.dir, '.owner')), 'dead');
    assert.deepEqual(await sweepTemps(tmp), [path.basename(o.dir)]);
    assert.ok(!existsSync(o.dir));
    await sweepTemporaries(layout);
    assert.deepEqual(readdirSync(path.join(layout, 'blobs', 'sha256')), [], 'the temporary blob and its socket are gone');
  } finally {
    s.done();
  }
});

test('sweeps leave recent temporaries without a socket, others\' directories, and never follow links', async () => {
  const s = scratch();
  try {
    const tmp = path.join(s.dir, 'tmp');
    mkdirSync(tmp);
    const outside = path.join(s.dir, 'precious');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'f'), 'keep');
    mkdirSync(path.join(tmp, 'enclavify-0123456789ab-AbCdEf')); // no socket, recent: kept (an hour)
    mkdirSync(path.join(tmp, 'enclavify-elf-XyZ123')); // not ours
    const dead = path.join(tmp, 'enclavify-pf-ba9876543210-Qwerty');
    mkdirSync(dead);
    writeFileSync(path.join(dead, '.owner'), ''); // a socket file nobody listens on (not even a socket)
    symlinkSync(outside, path.join(tmp, 'enclavify-aaaaaaaaaaaa-Link12'));
    writeFileSync(path.join(tmp, '.owner-none'), '');
    assert.deepEqual((await sweepTemps(tmp)).sort(), [path.basename(dead)]);
    assert.ok(existsSync(path.join(outside, 'f')));
    assert.ok(existsSync(path.join(tmp, 'enclavify-0123456789ab-AbCdEf')) && existsSync(path.join(tmp, 'enclavify-elf-XyZ123')));
  } finally {
    s.done();
  }
});

test('the layout lock: a live owner socket keeps the lock even when its pid means nothing here (another container); a killed owner\'s lock is taken over', async () => {
  const { withLock } = await import('../../lib/store/lock.js');
  const s = scratch();
  try {
    const sock = path.join(s.dir, '.owner-aaaaaaaaaaaa-01');
    const code = `
      import { claimOwnership } from './lib/oci/owner.ts';
      await claimOwnership(${JSON.stringify(sock)});
      console.log('ready');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      for await (const chunk of child.stdout!) if (String(chunk).includes('ready')) break;
      const lock = path.join(s.dir, 'index.json.lock');
      // pid 2^22+1 is above Linux's pid_max: no process here has it, as for a writer in another pid namespace.
      writeFileSync(lock, `pid ${2 ** 22 + 1} owner .owner-aaaaaaaaaaaa-01`);
      await assert.rejects(withLock(lock, 'test layout', async () => 1, 300), /locked by another writer/);
      assert.ok(existsSync(lock));
    } finally {
      child.kill('SIGKILL');
      await once(child, 'close').catch(() => undefined);
    }
    assert.equal(await withLock(path.join(s.dir, 'index.json.lock'), 'test layout', async () => 42, 300), 42);
  } finally {
    s.done();
  }
});
