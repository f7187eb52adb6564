/**
 * The SCONE command starts the same program as the native image: each converted Entrypoint (and
 * the session command CAS hands the enclave) is run natively in a chroot of the unpacked image,
 * next to the native Entrypoint, and their output and final process (/proc/PID/exe, cmdline) are
 * compared. Needs root (chroot, unshare -n for a private loopback) and umoci.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { emitPolicy, imageFromDirectory, injectRuntime, openImage, pipeline, scone, type Transform } from '../../lib/index.js';
import { elfImports } from '../../lib/runtimes/scone/command.js';
import { RUNTIME, type RuntimeInfo } from '../../lib/transforms/state.js';
import { bbOci, scratch, umociUnpack } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';

const MR = 'cd'.repeat(32);

function hostTool(name: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
const umoci = tool('umoci');
const chroot = hostTool('chroot');
const unshare = hostTool('unshare');
const skip = umoci.skip || (process.getuid?.() !== 0 ? 'needs root (chroot)' : !chroot || !unshare ? 'needs chroot and unshare' : false);
if (skip && process.env.REQUIRE_INTEROP === '1') throw new Error(`REQUIRE_INTEROP=1 but the chroot tests cannot run: ${skip}`);

function setConfig(c: { Entrypoint?: string[]; Cmd?: string[] | undefined; Env?: string[]; WorkingDir?: string }): Transform {
  return {
    name: 'setConfig',
    apply: (d) => {
      const cfg = (d.config.config ??= {});
      Object.assign(cfg, c);
      if ('Cmd' in c && c.Cmd === undefined) delete cfg.Cmd;
    },
  };
}

interface Cfg { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string }

/** argv for running `argv` natively in the chroot `root`, from `wd`, with exactly `env`, in a private network namespace. */
function chrootArgv(root: string, wd: string, argv: string[]): string[] {
  return ['-n', chroot!, root, '/bin/busybox', 'sh', '-c', 'cd "$0" && exec "$@"', wd, ...argv];
}

function runNative(root: string, cfg: Cfg, argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])]): { status: number | null; stdout: string; stderr: string } {
  const env = Object.fromEntries((cfg.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const r = spawnSync(unshare!, chrootArgv(root, cfg.WorkingDir || '/', argv), { env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The session command CAS gives the enclave, as argv (CAS splits a string at whitespace). */
function sessionArgv(command: string | string[]): string[] {
  return typeof command === 'string' ? command.split(/\s+/).filter(Boolean) : command;
}

async function convert(image: Awaited<ReturnType<typeof openImage>>, cfg: Cfg | undefined, binary?: string) {
  const out = await pipeline(image, [
    ...(cfg ? [setConfig({ Cmd: undefined, ...cfg })] : []),
    injectRuntime(scone({ namespace: 'ns', name: 's', ...(binary ? { binary } : {}) })),
    emitPolicy({ runtime: 'scone', mrenclaves: [MR] }),
  ]);
  try {
    const c = (await out.image.config()).config!;
    const session = YAML.parse(String(out.artifacts.get('policy/session.yaml')!.data));
    const details = (out.state.get(RUNTIME) as RuntimeInfo).details as { binary: string; argv0: string };
    return { config: c as Cfg, service: session.services[0] as { command: string | string[]; pwd: string; environment: Record<string, string> }, details, warnings: ((out.report.injectRuntime as { warnings?: string[] }).warnings ?? []) };
  } finally {
    await out.dispose();
  }
}

test('scone command on bb-fixture (#!/bin/sh, --binary /bin/busybox) starts the same server as the native Entrypoint, in a chroot', { skip }, async () => {
  const s = scratch();
  try {
    const root = umociUnpack(`${bbOci}:latest`, path.join(s.dir, 'bundle'));
    const native = (await (await openImage(`oci:${bbOci}:latest`)).config()).config! as Cfg;
    const conv = await convert(await openImage(`oci:${bbOci}:latest`), undefined, '/bin/busybox');
    assert.deepEqual(conv.config.Entrypoint, ['/bin/sh', '/app/server.sh']);
    assert.equal(conv.details.binary, '/bin/busybox');
    assert.equal(conv.details.argv0, '/bin/sh');
    assert.deepEqual(sessionArgv(conv.service.command), ['/bin/sh', '/app/server.sh']);
    assert.equal(conv.service.pwd, '/app');
    // a shell forks: with SCONE_FORK=0 the conversion warns
    assert.ok(conv.warnings.some((w: string) => /SCONE_FORK=0.*looks like it forks.*shell/.test(w)), conv.warnings.join('\n'));

    /** Starts argv, waits for its first output line and for its final exec (httpd); returns what ran. */
    const serve = async (argv: string[]) => {
      const child = spawn(unshare!, chrootArgv(root, '/app', argv), { env: { PATH: '/bin', APP_MODE: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let gone = false;
      void exited.then(() => (gone = true));
      try {
        // The pid stays the same through unshare, chroot, sh and the script's `exec httpd`.
        for (;;) {
          if (gone) return { exe: undefined, cmdline: undefined, stdout, stderr, code: await exited };
          let cmdline = '';
          try {
            cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
          } catch {
            // exited meanwhile
          }
          if (cmdline.startsWith('httpd\0') && stdout.includes('\n')) {
            return { exe: readlinkSync(`/proc/${child.pid}/exe`), cmdline: cmdline.split('\0').filter(Boolean), stdout, stderr, code: undefined };
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
    };
    const want = await serve([...(native.Entrypoint ?? []), ...(native.Cmd ?? [])]);
    assert.equal(want.stdout, 'secret bytes: 20\n');
    assert.equal(want.exe, path.join(root, 'bin/busybox'));
    assert.deepEqual(want.cmdline, ['httpd', '-f', '-p', '8080', '-h', '/app/static']);
    for (const argv of [conv.config.Entrypoint!, sessionArgv(conv.service.command)]) {
      const got = await serve(argv);
      assert.deepEqual({ stdout: got.stdout, exe: got.exe, cmdline: got.cmdline }, { stdout: want.stdout, exe: want.exe, cmdline: want.cmdline }, `${JSON.stringify(argv)}: ${got.stderr}`);
    }
    // The form the issue reported (binary first, script as its argument) does not start it: the test tells them apart.
    const broken = await serve(['/bin/busybox', '/app/server.sh']);
    assert.equal(broken.exe, undefined);
    assert.match(broken.stderr, /applet not found/);
  } finally {
    s.done();
  }
});

test('scone commands of generated images (relative script, #!/usr/bin/env, multi-call ELF) run like the native ones in a chroot', { skip }, async () => {
  const s = scratch();
  try {
    const root = umociUnpack(`${bbOci}:latest`, path.join(s.dir, 'bundle'));
    symlinkSync('/bin/busybox', path.join(root, 'usr/bin/env'));
    const script = (name: string, shebang: string) => {
      writeFileSync(path.join(root, 'app', name), `${shebang}\necho "0=$0 n=$# args=$* pwd=$(pwd) mode=$APP_MODE"\n`);
      chmodSync(path.join(root, 'app', name), 0o755);
    };
    script('start.sh', '#!/bin/sh');
    script('env.sh', '#!/usr/bin/env sh');
    script('env-i.sh', '#!/usr/bin/env -S -i sh');
    script('env-bad.sh', '#!/usr/bin/env -i sh');
    const image = await imageFromDirectory({ dir: root, config: { Entrypoint: ['/app/server.sh'], WorkingDir: '/app', Env: ['APP_MODE=test'] } });
    const cases: Array<{ cfg: Cfg; binary?: string; entrypoint: string[]; program: string }> = [
      // relative stays relative: the interpreter opens ./start.sh from the working directory, as natively ($0 = ./start.sh)
      { cfg: { Entrypoint: ['./start.sh'], Cmd: ['a b', 'c'], WorkingDir: '/app', Env: ['APP_MODE=test'] }, entrypoint: ['/bin/sh', './start.sh', 'a b', 'c'], program: '/bin/busybox' },
      // env resolved through PATH: `sh` is /bin/sh (-> busybox); argv[0] keeps the applet name
      { cfg: { Entrypoint: ['/app/env.sh', 'x'], WorkingDir: '/app', Env: ['APP_MODE=test', 'PATH=/usr/bin:/bin'] }, binary: '/bin/sh', entrypoint: ['/bin/sh', '/app/env.sh', 'x'], program: '/bin/busybox' },
      // a script found through PATH: the interpreter gets it where PATH found it, as the kernel does
      { cfg: { Entrypoint: ['start.sh'], Cmd: ['y'], WorkingDir: '/', Env: ['APP_MODE=test', 'PATH=/app:/bin'] }, entrypoint: ['/bin/sh', '/app/start.sh', 'y'], program: '/bin/busybox' },
      // a bare name found through PATH, a symlink to a multi-call binary: argv[0] stays `echo`
      { cfg: { Entrypoint: ['echo'], Cmd: ['hello', 'world'], WorkingDir: '/', Env: ['PATH=/bin'] }, binary: '/bin/busybox', entrypoint: ['echo', 'hello', 'world'], program: '/bin/busybox' },
    ];
    for (const c of cases) {
      const conv = await convert(image, c.cfg, c.binary);
      assert.deepEqual(conv.config.Entrypoint, c.entrypoint);
      assert.equal(conv.details.binary, c.binary ?? c.program);
      const want = runNative(root, c.cfg);
      assert.equal(want.status, 0, want.stderr);
      assert.notEqual(want.stdout, '');
      for (const argv of [conv.config.Entrypoint!, sessionArgv(conv.service.command)]) {
        const got = runNative(root, { ...c.cfg, Cmd: [] }, argv);
        assert.deepEqual(got, want, JSON.stringify(argv));
      }
    }
    // Without the fix the relative script became absolute: $0 differed.
    assert.match(runNative(root, cases[0]!.cfg).stdout, /^0=\.\/start\.sh n=2 args=a b c pwd=\/app mode=test$/m);

    // --binary must be the interpreter, compared as files: /app/setuid-tool has busybox's bytes but is another file.
    await assert.rejects(convert(image, cases[0]!.cfg, '/app/setuid-tool'), (e: Error & { code?: string }) => e.code === 'SCONE_BINARY_MISMATCH' && /\.\/start\.sh is a script.*\/bin\/sh \(#!\/bin\/sh\), which is \/bin\/busybox.*--binary \/bin\/busybox/.test(e.message));
    await assert.rejects(convert(image, { Entrypoint: ['echo', 'hi'], Env: ['PATH=/bin'] }, '/app/setuid-tool'), (e: Error & { code?: string }) => e.code === 'SCONE_BINARY_MISMATCH');
    // env with options cannot be applied without env: refused, saying so
    await assert.rejects(convert(image, { Entrypoint: ['/app/env-i.sh'], WorkingDir: '/app' }), (e: Error & { code?: string }) => e.code === 'SCONE_BAD_ENTRYPOINT' && /sets options or variables/.test(e.message));
    await assert.rejects(convert(image, { Entrypoint: ['/app/env-bad.sh'], WorkingDir: '/app' }), (e: Error & { code?: string }) => e.code === 'SCONE_BAD_ENTRYPOINT' && /cannot tell which command/.test(e.message));
    // a program that does not exist natively cannot be started in the enclave either
    await assert.rejects(convert(image, { Entrypoint: ['/app/nope'] }, '/bin/busybox'), (e: Error & { code?: string }) => e.code === 'SCONE_BAD_ENTRYPOINT');
  } finally {
    s.done();
  }
});

test('elfImports: the fork heuristic reads the undefined dynamic symbols of real ELF files', { skip: existsSync('/bin/dash') || existsSync('/bin/bash') ? false : 'no /bin/dash or /bin/bash on this host' }, () => {
  const shell = existsSync('/bin/dash') ? '/bin/dash' : '/bin/bash';
  const imports = elfImports(readFileSync(shell));
  assert.ok(imports.has('fork') || imports.has('vfork'), `${shell} imports ${[...imports].slice(0, 20).join(' ')}`);
  assert.ok(imports.has('execve') || imports.has('execv') || imports.has('execvp'));
  assert.ok(!imports.has('main'));
  assert.deepEqual(elfImports(new TextEncoder().encode('#!/bin/sh\n')), new Set());
});
