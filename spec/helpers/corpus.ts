/**
 * The corpus of real Debian server images (scripts/build-corpus.sh; `.ci/run` builds it into
 * $ENCLAVIFY_CORPUS, about four minutes, cached), and what the spec/realworld tests need to run
 * them for real: a chroot start of a program exactly as an exec would start it (argv[0] chosen
 * freely, PATH searched inside the chroot), free loopback ports, HTTP and redis probes, and the
 * identity of a running process (/proc/PID/exe and argv) to compare two starts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';

export const corpusDir = process.env.ENCLAVIFY_CORPUS ?? '/tmp/enclavify-tools/corpus';
export const corpusTags = ['lighttpd', 'redis', 'node', 'flask', 'bash'] as const;
export type CorpusTag = (typeof corpusTags)[number];

/** Skip reason when the corpus is absent (the tests need root for chroot, too). */
export const corpusSkip: string | false = !existsSync(path.join(corpusDir, 'index.json'))
  ? `no corpus of server images at ${corpusDir} (build it with scripts/build-corpus.sh DIR and set ENCLAVIFY_CORPUS=DIR)`
  : process.getuid?.() !== 0
    ? 'the corpus tests run servers in chroots and need root'
    : false;

/** How each image of the corpus is reached: the encrypted data directory and the probe. */
export interface CorpusImage {
  tag: CorpusTag;
  /** The data directory converted with --dir. */
  dataDir: string;
  probe: 'http' | 'redis';
  /** Arguments that set the port when the server takes it from its command line rather than PORT. */
  portArgs?: (port: number) => string[];
  /** Why the gramine-direct run is `todo` (a known failure, see docs/compatibility.md). */
  gramineDirectTodo?: string;
}

export const corpusImages: Record<CorpusTag, CorpusImage> = {
  lighttpd: { tag: 'lighttpd', dataDir: '/var/www/html', probe: 'http' },
  redis: { tag: 'redis', dataDir: '/var/lib/redis', probe: 'redis', portArgs: (p) => ['--port', String(p)] },
  node: { tag: 'node', dataDir: '/app/data', probe: 'http' },
  flask: { tag: 'flask', dataDir: '/app/data', probe: 'http' },
  bash: {
    tag: 'bash', dataDir: '/app/data', probe: 'http',
    gramineDirectTodo: 'socat 1.7.4 aborts at start under gramine-direct 1.9 ("*** bit out of range 0 - FD_SETSIZE on fd_set ***", glibc\'s fortified FD_SET); bash itself runs',
  },
};

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `file` with exactly `argv` (argv[0] included) and `env`, chrooted into `rootfs`, in
 * `cwd`: Python's os.execvpe under os.chroot, so a bare name is searched through the PATH of `env`
 * inside the image and the kernel runs `#!` scripts through their interpreter, as a container
 * runtime's exec would (no /proc, /sys or /dev mounts: nothing to leave behind; the images carry
 * their /dev nodes from debootstrap). The process leads its own process group, so `stop` ends its children too.
 */
export function startInChroot(rootfs: string, spec: { file: string; argv: string[]; env: Record<string, string>; cwd: string }): Started {
  const code = 'import os,sys,json,warnings\nos.chroot(sys.argv[1]); os.chdir(sys.argv[2])\nos.execvpe(sys.argv[3], json.loads(sys.argv[4]), os.environ)';
  const child = spawn('/usr/bin/python3', ['-c', code, rootfs, spec.cwd, spec.file, JSON.stringify(spec.argv)], {
    env: spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = new Started(child, rootfs);
  running.add(started);
  return started;
}

const running = new Set<Started>();

/** A process started in a chroot; `stop` kills its process group and waits for it. */
export class Started {
  private out = '';
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
  constructor(readonly child: ChildProcess, readonly rootfs: string) {
    child.stdout!.on('data', (d: Buffer) => { this.out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { this.out += d.toString(); });
    this.exited = new Promise((resolve) => child.once('exit', (c, sig) => { this.exitCode = c ?? (sig ? -1 : null); resolve(this.exitCode); }));
  }
  get pid(): number { return this.child.pid!; }
  /** What it printed (stdout and stderr interleaved), for failure messages. */
  output(): string { return this.out.slice(-4000); }
  /** /proc/PID/exe as the image names it (the chroot prefix removed) and /proc/PID/cmdline. */
  identity(): { exe: string; argv: string[] } {
    const exe = readlinkSync(`/proc/${this.pid}/exe`);
    const root = this.rootfs.replace(/\/+$/, '');
    const argv = readFileSync(`/proc/${this.pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
    return { exe: exe.startsWith(`${root}/`) ? exe.slice(root.length) : exe, argv };
  }
  async stop(): Promise<void> {
    running.delete(this);
    if (this.exitCode === undefined) {
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await this.exited;
    }
  }
}

/** Stops every process started here and not stopped yet (for `after` hooks). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}
process.once('exit', () => {
  for (const s of running) {
    try {
      process.kill(-s.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** Waits until 127.0.0.1:port accepts a connection; throws (with the output) when the process exits first or after `limitMs`. */
export async function waitForPort(p: Started, port: number, limitMs = 60_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    if (p.exitCode !== undefined) throw new Error(`the server exited (${p.exitCode}) before listening on ${port}:\n${p.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port} after ${limitMs} ms:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET http://127.0.0.1:port/path: status and body. */
export function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${urlPath} on ${port}: no answer`)));
  });
}

/** Sends redis commands (RESP arrays) on one connection; returns the raw replies as one string. */
export function redisCommands(port: number, commands: string[][]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    const wire = commands.map((c) => `*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join('');
    s.setTimeout(30_000, () => s.destroy(new Error(`redis on ${port}: no answer`)));
    s.on('connect', () => s.write(`${wire}*1\r\n$4\r\nQUIT\r\n`));
    s.on('data', (d) => { data += d.toString(); });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

/**
 * The probe of an image: what a client sees. HTTP servers: GET /secret (the data directory's
 * secret.txt, read by the server). redis: PING, then GET of the keys the image's dump.rdb holds.
 */
export async function probe(img: CorpusImage, port: number): Promise<string> {
  if (img.probe === 'redis') return redisCommands(port, [['PING'], ['GET', 'corpus:secret'], ['GET', 'corpus:greeting']]);
  const r = await httpGet(port, '/secret');
  return `${r.status} ${r.body}`;
}

/** The answer the probe must give, from the plaintext secret of the native image. */
export function expectedAnswer(img: CorpusImage, secret: string): string {
  const s = secret.replace(/\n$/, '');
  if (img.probe === 'redis') return `+PONG\r\n$${Buffer.byteLength(s)}\r\n${s}\r\n$16\r\nhello from redis\r\n+OK\r\n`;
  return `200 ${s}\n`;
}

/** KEY=VALUE list to an object (later entries win). */
export function envObject(list: string[] | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  for (const e of list ?? []) {
    const i = e.indexOf('=');
    if (i > 0) o[e.slice(0, i)] = e.slice(i + 1);
  }
  return o;
}

/**
 * Where `name` leads inside the chroot `rootfs`, as execvp would find it (a name with a slash as
 * it is, relative to `cwd`; a bare name through `pathVar`): the path execve gets, and that path with
 * every symlink resolved inside the chroot. Undefined when nothing executable is found.
 */
export function resolveInChroot(rootfs: string, name: string, pathVar: string, cwd = '/'): { path: string; real: string } | undefined {
  const code = `
import os, sys, json
os.chroot(sys.argv[1]); os.chdir(sys.argv[4])
name, dirs = sys.argv[2], sys.argv[3].split(':')
cands = [name] if '/' in name else [os.path.join(d or '.', name) for d in dirs]
for c in cands:
    if os.path.isfile(c) and os.access(c, os.X_OK):
        print(json.dumps({'path': c, 'real': os.path.realpath(c)})); break
`;
  const out = execFileSync('/usr/bin/python3', ['-c', code, rootfs, name, pathVar, cwd], { encoding: 'utf8' }).trim();
  return out ? (JSON.parse(out) as { path: string; real: string }) : undefined;
}

/**
 * The argv the kernel gives a program started as `argv` in `rootfs` (execvp): for a `#!` script,
 * the interpreter, its optional argument and the script's path first, as binfmt_script builds it.
 */
export function kernelArgv(rootfs: string, argv: string[], pathVar: string, cwd = '/'): string[] {
  const hit = resolveInChroot(rootfs, argv[0]!, pathVar, cwd);
  if (!hit) throw new Error(`${argv[0]}: not found in ${rootfs}`);
  const head = readFileSync(path.join(rootfs, hit.real)).subarray(0, 256).toString('latin1');
  if (!head.startsWith('#!')) return argv;
  const line = head.slice(2).split('\n')[0]!.trim();
  const sp = line.search(/[ \t]/);
  const interp = sp < 0 ? [line] : [line.slice(0, sp), line.slice(sp).trim()];
  return [...interp, hit.path, ...argv.slice(1)];
}

/** Mounts `/proc` (fresh) and `/sys` (bound) into `rootfs`, as a container runtime gives them; gramine-direct reads both. */
export function mountProcSys(rootfs: string): void {
  execFileSync('mount', ['-t', 'proc', 'proc', path.join(rootfs, 'proc')]);
  execFileSync('mount', ['--bind', '/sys', path.join(rootfs, 'sys')]);
}

/** Unmounts (lazily) every mount point under `dir`, innermost first: run before removing `dir`. */
export function unmountUnder(dir: string): void {
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  const points = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((p) => p.startsWith(prefix));
  for (const p of points.sort().reverse()) execFileSync('umount', ['-l', p]);
}
