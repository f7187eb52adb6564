/**
 * Certificate directories as containers-certs.d(5) describes them: `*.crt` files are extra CAs,
 * `*.cert` + `*.key` pairs (same base name) are client certificates.
 */
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { registryError } from './errors.js';

/** TLS material for one registry host. */
export interface TlsMaterial {
  /** Extra CA certificates (PEM), added to the system's. */
  ca: string[];
  /** Client certificate chains (PEM) and their keys, in the same order. */
  cert: string[];
  key: string[];
  /** The directories the material came from, for messages. */
  dirs: string[];
}

/**
 * The directories consulted for `registry` (`HOST[:PORT]`) when no cert dir is given, in order:
 * `$HOME/.config/containers/certs.d/HOST`, `/etc/containers/certs.d/HOST`, `/etc/docker/certs.d/HOST`.
 */
export function defaultCertDirs(registry: string, roots: string[] = [path.join(os.homedir(), '.config/containers/certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d']): string[] {
  return roots.map((r) => path.join(r, registry));
}

/**
 * Reads the TLS material of a registry: from `certDir` alone when given (skopeo's
 * `--cert-dir`), else from every default directory that exists. A client certificate without its
 * key (or a key without its certificate) is an error, as in containers/image.
 */
export async function loadTlsMaterial(registry: string, certDir?: string, roots?: string[]): Promise<TlsMaterial> {
  const dirs = certDir ? [certDir] : defaultCertDirs(registry, roots);
  const out: TlsMaterial = { ca: [], cert: [], key: [], dirs: [] };
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (e) {
      if (certDir) throw registryError('REGISTRY_TLS', `cert dir ${dir}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
      continue;
    }
    out.dirs.push(dir);
    for (const n of names) {
      const f = path.join(dir, n);
      if (n.endsWith('.crt')) out.ca.push(await readPem(f));
      else if (n.endsWith('.cert')) {
        const keyName = n.slice(0, -'.cert'.length) + '.key';
        if (!names.includes(keyName)) throw registryError('REGISTRY_TLS', `cert dir ${dir}: client certificate ${n} has no key ${keyName}`);
        out.cert.push(await readPem(f));
        out.key.push(await readPem(path.join(dir, keyName)));
      } else if (n.endsWith('.key')) {
        const certName = n.slice(0, -'.key'.length) + '.cert';
        if (!names.includes(certName)) throw registryError('REGISTRY_TLS', `cert dir ${dir}: key ${n} has no client certificate ${certName}`);
      }
    }
  }
  return out;
}

async function readPem(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    // Never quote the file: it may be a key.
    throw registryError('REGISTRY_TLS', `${file}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** Set (on `globalThis`) by bin/enclavify.cjs when it kept `NODE_EXTRA_CA_CERTS` from Node's start-up. */
const DEFERRED = Symbol.for('enclavify.extraCaCertsDeferred');
let extraP: Promise<string | undefined> | undefined;

/** Whether the CLI's launcher kept `NODE_EXTRA_CA_CERTS` from Node's start-up: Node's default store then lacks those CAs. */
export function extraCaCertsDeferred(): boolean {
  return (globalThis as Record<symbol, unknown>)[DEFERRED] === true;
}

/** The CAs of `NODE_EXTRA_CA_CERTS` (PEM), read once; undefined when it is unset or the file unusable. */
export function extraCaCerts(): Promise<string | undefined> {
  // Node reads the file at start-up, before any script, with its own root store: 60-80 ms of every
  // process here, paid by commands that never open a TLS connection. The CLI's launcher
  // (bin/enclavify.cjs) starts Node without it and puts it back in process.env; the agents add
  // these CAs themselves. They are needed too when a cert dir gives CAs: an explicit `ca` replaces
  // Node's default store, extra CAs included. An unreadable file, or one without a certificate, is
  // ignored with Node's warning (only when Node did not give it already).
  return (extraP ??= (async () => {
    const file = process.env.NODE_EXTRA_CA_CERTS;
    if (!file) return undefined;
    let why: string;
    try {
      const pem = await readFile(file, 'utf8');
      if (pem.includes('-----BEGIN CERTIFICATE-----')) return pem;
      why = 'no certificate in it';
    } catch (e) {
      why = (e as NodeJS.ErrnoException).code ?? 'cannot be read';
    }
    if (extraCaCertsDeferred()) process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${why}`);
    return undefined;
  })());
}
