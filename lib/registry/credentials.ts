/**
 * Registry credentials from the places users already keep them: `--creds`, the podman/skopeo
 * `auth.json` files, Docker's `config.json` (`auths`, `credHelpers`, `credsStore`) and Docker
 * credential helpers (`docker-credential-NAME get`). Secrets are never put into messages.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { registryError } from './errors.js';
import { DOCKER_HUB } from './reference.js';

/** A user name and password (Basic auth, or the token endpoint's Basic auth). */
export interface PasswordCredentials { username: string; password: string }
/** An OAuth2 refresh token (`identitytoken` in config.json, `<token>` from a helper). */
export interface TokenCredentials { identityToken: string }
export type Credentials = PasswordCredentials | TokenCredentials;

/** Credentials and where they came from (a file or helper name, for messages; never the secret). */
export interface FoundCredentials { credentials: Credentials; source: string }

/** Where to look. Defaults come from the environment, as skopeo reads it. */
export interface CredentialLookupOptions {
  /** An auth file to use first (`--authfile`); it must exist. */
  authFile?: string | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Home directory (default os.homedir()). */
  home?: string | undefined;
}

/** Parses `USER[:PASSWORD]` (skopeo's `--creds`). The value is never quoted in errors. */
export function parseCredentials(value: string, flag = '--creds'): PasswordCredentials {
  const i = value.indexOf(':');
  if (i <= 0) throw registryError('REGISTRY_CREDENTIALS', `${flag}: expected USER:PASSWORD (a user name, a colon, the password)`);
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}

/** The secrets of some credentials, for redaction. */
export function secretsOf(c: Credentials | undefined): string[] {
  if (!c) return [];
  if ('identityToken' in c) return [c.identityToken];
  return [c.password, Buffer.from(`${c.username}:${c.password}`).toString('base64')];
}

/**
 * The auth files consulted, in order (containers-auth.json(5), then Docker): `--authfile` or
 * `$REGISTRY_AUTH_FILE` or `$XDG_RUNTIME_DIR/containers/auth.json`; `$XDG_CONFIG_HOME` (default
 * `~/.config`)`/containers/auth.json`; `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`;
 * the legacy `~/.dockercfg`.
 */
export function authFilePaths(opts: CredentialLookupOptions = {}): Array<{ file: string; legacy?: boolean; explicit?: boolean }> {
  const env = opts.env ?? process.env;
  const home = opts.home ?? os.homedir();
  const out: Array<{ file: string; legacy?: boolean; explicit?: boolean }> = [];
  if (opts.authFile) out.push({ file: opts.authFile, explicit: true });
  else if (env.REGISTRY_AUTH_FILE) out.push({ file: env.REGISTRY_AUTH_FILE });
  else if (env.XDG_RUNTIME_DIR) out.push({ file: path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json') });
  out.push({ file: path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json') });
  out.push({ file: env.DOCKER_CONFIG ? path.join(env.DOCKER_CONFIG, 'config.json') : path.join(home, '.docker', 'config.json') });
  out.push({ file: path.join(home, '.dockercfg'), legacy: true });
  return out;
}

interface AuthEntry { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown }
interface AuthFile { auths?: Record<string, AuthEntry>; credHelpers?: Record<string, string>; credsStore?: string }

/** The keys an auth file may use for a registry and repository, most specific first. */
function candidateKeys(registry: string, repository?: string): string[] {
  const hosts = registry === DOCKER_HUB ? ['docker.io', 'index.docker.io', 'https://index.docker.io/v1/', DOCKER_HUB] : [registry];
  const out: string[] = [];
  if (repository) {
    const parts = repository.split('/');
    for (let n = parts.length; n >= 1; n--) for (const h of hosts.slice(0, 1)) out.push(`${h}/${parts.slice(0, n).join('/')}`);
  }
  out.push(...hosts);
  return out;
}

/** `https://host/v1/` and `host` name the same registry. */
function normalizeKey(k: string): string {
  let s = k.replace(/^https?:\/\//, '');
  s = s.replace(/\/(v1|v2)\/?$/, '').replace(/\/$/, '');
  if (s === 'index.docker.io' || s === 'registry-1.docker.io') s = 'docker.io';
  return s;
}

/** The server URL a credential helper is asked about. */
function helperServer(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/**
 * Looks up the credentials for a registry (and repository: podman's namespaced keys such as
 * `host/team` are honoured). The first file with a matching entry wins; in a file,
 * `credHelpers` for the registry comes first, then the `credsStore` helper, then `auths`.
 * Helpers that are not installed are skipped. Undefined when nothing matches (anonymous).
 */
export async function lookupCredentials(registry: string, repository: string | undefined, opts: CredentialLookupOptions = {}): Promise<FoundCredentials | undefined> {
  const keys = candidateKeys(registry, repository);
  const hostKey = normalizeKey(registry === DOCKER_HUB ? 'docker.io' : registry);
  for (const p of authFilePaths(opts)) {
    let text: string;
    try {
      text = await readFile(p.file, 'utf8');
    } catch (e) {
      if (p.explicit) throw registryError('REGISTRY_CREDENTIALS', `--authfile ${p.file}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
      continue;
    }
    let x: unknown;
    try {
      x = JSON.parse(text);
    } catch {
      x = undefined;
    }
    // Never quote the file: it holds secrets.
    if (!x || typeof x !== 'object' || Array.isArray(x)) throw registryError('REGISTRY_CREDENTIALS', `auth file ${p.file}: not valid JSON (an object)`);
    const parsed = (p.legacy ? { auths: x } : x) as AuthFile;
    const helpers = parsed.credHelpers && typeof parsed.credHelpers === 'object' ? parsed.credHelpers : {};
    const helperKey = keys.find((k) => typeof helpers[k] === 'string') ?? Object.keys(helpers).find((k) => normalizeKey(k) === hostKey);
    if (helperKey) {
      const found = await runHelper(helpers[helperKey], helperServer(registry), p.file, opts.env);
      if (found) return found;
    }
    if (typeof parsed.credsStore === 'string' && parsed.credsStore) {
      const found = await runHelper(parsed.credsStore, helperServer(registry), p.file, opts.env);
      if (found) return found;
    }
    const auths = parsed.auths && typeof parsed.auths === 'object' ? parsed.auths : {};
    const key = keys.find((k) => auths[k] !== undefined) ?? Object.keys(auths).find((k) => normalizeKey(k) === hostKey);
    if (key) {
      const c = decodeEntry(auths[key], p.file, key);
      if (c) return { credentials: c, source: p.file };
    }
  }
  return undefined;
}

function decodeEntry(e: AuthEntry, file: string, key: string): Credentials | undefined {
  if (!e || typeof e !== 'object') throw registryError('REGISTRY_CREDENTIALS', `auth file ${file}: the entry for ${key} is not an object`);
  if (typeof e.identitytoken === 'string' && e.identitytoken) return { identityToken: e.identitytoken };
  if (typeof e.auth === 'string' && e.auth) {
    const plain = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i <= 0 || !/^[A-Za-z0-9+/=\s]+$/.test(e.auth)) throw registryError('REGISTRY_CREDENTIALS', `auth file ${file}: the "auth" of ${key} is not base64 of USER:PASSWORD`);
    return { username: plain.slice(0, i), password: plain.slice(i + 1).replace(/\n$/, '') };
  }
  if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
  return undefined;
}

/**
 * Runs `docker-credential-NAME get` with the server on stdin. Undefined when the helper is not
 * installed or has no credentials for the server.
 */
async function runHelper(name: string, server: string, file: string, env?: NodeJS.ProcessEnv): Promise<FoundCredentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw registryError('REGISTRY_CREDENTIALS', `auth file ${file}: credential helper name ${JSON.stringify(name)} is not valid`);
  const prog = `docker-credential-${name}`;
  // child_process (and the net and dgram modules under it) only when a helper is configured.
  const { spawn } = await import('node:child_process');
  const res = await new Promise<{ code: number | null; stdout: string; stderr: string } | 'missing'>((resolve, reject) => {
    const child = spawn(prog, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    const out: Buffer[] = [], err: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') resolve('missing');
      else reject(registryError('REGISTRY_CREDENTIALS', `credential helper ${prog} (from ${file}) could not run (${e.code})`));
    });
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= 1 << 20) out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(server + '\n');
  });
  if (res === 'missing') return undefined;
  const said = `${res.stdout}\n${res.stderr}`;
  if (res.code !== 0) {
    if (/not found|no credentials/i.test(said)) return undefined;
    // The helper's stdout might hold a secret; its first stderr line is what it says went wrong.
    const line = res.stderr.split('\n').find((l) => l.trim())?.slice(0, 200) ?? '';
    throw registryError('REGISTRY_CREDENTIALS', `credential helper ${prog} (from ${file}) failed for ${server} (exit ${res.code})${line ? `: ${line}` : ''}`);
  }
  let x: { Username?: unknown; Secret?: unknown };
  try {
    x = JSON.parse(res.stdout) as typeof x;
  } catch {
    throw registryError('REGISTRY_CREDENTIALS', `credential helper ${prog} (from ${file}) printed no JSON for ${server}`);
  }
  if (typeof x.Secret !== 'string' || !x.Secret) return undefined;
  const source = `${prog} (from ${file})`;
  if (x.Username === '<token>') return { credentials: { identityToken: x.Secret }, source };
  if (typeof x.Username !== 'string' || !x.Username) throw registryError('REGISTRY_CREDENTIALS', `credential helper ${prog} (from ${file}) gave no Username for ${server}`);
  return { credentials: { username: x.Username, password: x.Secret }, source };
}
