/**
 * A real registry for a test file: `../shared/tools/start-registry` (CNCF distribution 2.8) on a
 * free loopback port, with its request log for counting, stopped and removed by `stop()`.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { shared } from './tools.js';

const run = promisify(execFile);

/** A port nobody listens on right now (the registry binds it a moment later). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  dir: string;
  /** The registry's log (with --log-level info: one line per request). */
  log(): string;
  /** Requests in the access log matching a method and a path pattern, e.g. ('PUT', /\/blobs\/uploads\//), and a status. */
  count(method: string, pathRe: RegExp, status?: number): number;
  stop(): Promise<void>;
}

export interface StartOptions {
  htpasswd?: string | undefined;
  tls?: { cert: string | undefined; key: string };
  configExtra?: string | undefined;
  logLevel?: 'info' | 'warn' | 'debug' | undefined;
}

/** Starts a fresh registry; retried on another port if the chosen one was taken meanwhile. */
export async function startRegistry(opts: StartOptions = {}): Promise<TestRegistry> {
  let lastErr: unknown;
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const args = ['--port', String(port), '--log-level', opts.logLevel ?? 'info'];
    if (opts.htpasswd) args.push('--htpasswd', opts.htpasswd);
    if (opts.tls) args.push('--tls', `${opts.tls.cert}:${opts.tls.key}`);
    if (opts.configExtra) args.push('--config-extra', opts.configExtra);
    try {
      const { stdout } = await run(path.join(shared, 'tools', 'start-registry'), args, { encoding: 'utf8' });
      const v = Object.fromEntries(stdout.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
      const pid = Number(v.REGISTRY_PID), dir = v.REGISTRY_DIR;
      const log = () => readFileSync(path.join(dir, 'log'), 'utf8');
      return {
        host: v.REGISTRY, port, dir, log,
        count(method, pathRe, status) {
          let n = 0;
          // The access log: one `"METHOD URI HTTP/1.1" STATUS` line per request.
          for (const m of log().matchAll(/"([A-Z]+) (\S+) HTTP\/1\.1" (\d+)/g)) {
            if (m[1] === method && pathRe.test(m[2]) && (status === undefined || Number(m[3]) === status)) n++;
          }
          return n;
        },
        async stop() {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // already gone
          }
          for (let k = 0; k < 50; k++) {
            try {
              process.kill(pid, 0);
              await new Promise((r) => setTimeout(r, 50));
            } catch {
              break;
            }
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr;
}

/**
 * A one-layer image no other test shares (random content, so its blobs are new to any registry
 * and cannot be mounted): `size` bytes of incompressible data in /data/blob.
 */
export async function randomImage(tmpDir: string, size: number): Promise<import('../../lib/oci/image.js').Image> {
  const { imageFromDirectory } = await import('../../lib/fs/from-directory.js');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { randomBytes } = await import('node:crypto');
  const dir = path.join(tmpDir, `random-${randomBytes(4).toString('hex')}`);
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  writeFileSync(path.join(dir, 'data', 'blob'), randomBytes(size));
  return imageFromDirectory({ dir, tmpDir, config: { Entrypoint: ['/data/blob'] } });
}
