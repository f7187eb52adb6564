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
