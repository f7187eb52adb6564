/**
 * The protection manifest: our equivalent of SCONE's file-system protection file (FSPF). It lists
 * the encrypted regions, the effective rules and every regular file of the image with its class:
 * the SHA-256 of authenticated files, the sizes (and the SHA-256 of the encrypted bytes) of
 * encrypted ones. It is stored in the image at {@link MANIFEST_PATH}, described by
 * `schemas/protection-manifest.schema.json`, and its SHA-256 goes into policies, so the verifier
 * and attestation can pin the whole file-system state.
 *
 * It never holds keys or plaintext hashes of encrypted files (a hash would let anyone confirm a
 * guess of a secret).
 */
import { createHash } from 'node:crypto';
import { compareBytewise } from '../fs/entry.js';
import { EnclavifyError } from '../oci/errors.js';
import type { FileClass, Region } from '../transforms/state.js';
import type { Rule, RuleKind } from './rules.js';

/** Where the protection manifest lives in the image. */
export const MANIFEST_PATH = '/.enclavify/protection.json';

/** The format of encrypted files, as named in the manifest. */
export const ENCRYPTED_FORMAT = 'gramine-encrypted-files-2.0';

/** A rule as the manifest records it (see {@link Rule}). */
export interface ManifestRule {
  path: string;
  class: FileClass;
  kind: RuleKind;
  fileOnly?: boolean;
  hostPath?: boolean;
  region?: string;
  source: string;
}

/** An encrypted file: Gramine encrypted file bound to `path`, with the key of `region`. */
export interface EncryptedFileRecord {
  path: string;
  class: 'encrypted';
  /** Key (region) name. */
  region: string;
  /** Content size in bytes (what decryption yields). */
  size: number;
  /** Size of the encrypted file in the image. */
  diskSize: number;
  /** SHA-256 of the encrypted bytes in the image (pins this very ciphertext: an older version is refused). */
  diskSha256: string;
}

/** An authenticated file: kept as is, pinned by its SHA-256. */
export interface AuthenticatedFileRecord {
  path: string;
  class: 'authenticated';
  size: number;
  sha256: string;
  /** A startup file of the entrypoint. */
  startup?: boolean;
}

/** A file deliberately left unprotected. */
export interface PlainFileRecord {
  path: string;
  class: 'plain';
  /** Mounted from the host at run time. */
  hostPath?: boolean;
}

export type FileRecord = EncryptedFileRecord | AuthenticatedFileRecord | PlainFileRecord;

/** The protection manifest document. */
export interface ProtectionManifest {
  kind: 'enclavify.protection-manifest';
  version: 1;
  /** Format of the encrypted files. */
  encryptedFormat: typeof ENCRYPTED_FORMAT;
  regions: Region[];
  hostPaths: string[];
  /** The effective rules, so the verifier classifies paths the same way (e.g. hidden layer entries). */
  rules: ManifestRule[];
  /** Every regular file of the image (but the manifest itself), sorted bytewise by path. */
  files: FileRecord[];
  /** Every symlink of the image and its target, sorted by path (a changed link redirects opens). */
  symlinks: Array<{ path: string; target: string }>;
}

/** Builds a manifest document: files and symlinks sorted, rules in the given order. */
export function buildManifest(m: Omit<ProtectionManifest, 'kind' | 'version' | 'encryptedFormat'>): ProtectionManifest {
  return {
    kind: 'enclavify.protection-manifest',
    version: 1,
    encryptedFormat: ENCRYPTED_FORMAT,
    regions: m.regions.map((r) => ({ name: r.name, path: r.path })),
    hostPaths: [...m.hostPaths],
    rules: m.rules.map(manifestRule),
    files: [...m.files].sort((a, b) => compareBytewise(a.path, b.path)),
    symlinks: [...m.symlinks].sort((a, b) => compareBytewise(a.path, b.path)),
  };
}

/** A {@link Rule} in manifest form (fixed key order). */
export function manifestRule(r: Rule | ManifestRule): ManifestRule {
  const out: ManifestRule = { path: r.path, class: r.class, kind: r.kind, source: r.source };
  if (r.fileOnly) out.fileOnly = true;
  if (r.hostPath) out.hostPath = true;
  if (r.region !== undefined) out.region = r.region;
  return out;
}

/** The manifest's bytes: compact JSON, one file record per line, deterministic for the same input. */
export function serializeManifest(m: ProtectionManifest): Buffer {
  const { files, symlinks, ...head } = m;
  const top = JSON.stringify(head);
  const lines = (xs: unknown[]) => (xs.length ? `[\n${xs.map((x) => JSON.stringify(x)).join(',\n')}\n]` : '[]');
  return Buffer.from(`${top.slice(0, -1)},\n"files":${lines(files)},\n"symlinks":${lines(symlinks)}}\n`);
}

/** Hex SHA-256 of manifest bytes. */
export function manifestSha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Parses manifest bytes and checks the structure this code relies on (kind, version, unique
 * sorted paths, records of the right shape). Throws `MANIFEST_INVALID` naming the problem.
 */
export function parseManifest(bytes: Uint8Array, source = MANIFEST_PATH): ProtectionManifest {
  const bad = (what: string) => new EnclavifyError('MANIFEST_INVALID', `protection manifest ${source}: ${what}`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  const m = doc as Partial<ProtectionManifest>;
  if (!m || typeof m !== 'object') throw bad('not a JSON object');
  if (m.kind !== 'enclavify.protection-manifest') throw bad('"kind" is not "enclavify.protection-manifest"');
  if (m.version !== 1) throw bad(`unsupported version ${JSON.stringify(m.version)}`);
  if (m.encryptedFormat !== ENCRYPTED_FORMAT) throw bad(`unsupported encrypted-file format ${JSON.stringify(m.encryptedFormat)}`);
  for (const k of ['regions', 'hostPaths', 'rules', 'files', 'symlinks'] as const) if (!Array.isArray(m[k])) throw bad(`"${k}" must be an array`);
  const names = new Set<string>();
  for (const r of m.regions!) {
    if (typeof r?.name !== 'string' || typeof r.path !== 'string' || !r.path.startsWith('/')) throw bad('a region needs a name and an absolute path');
    names.add(r.name);
  }
  let prev: string | undefined;
  for (const f of m.files!) {
    if (typeof f?.path !== 'string' || !f.path.startsWith('/')) throw bad('a file record needs an absolute path');
    if (prev !== undefined && compareBytewise(prev, f.path) >= 0) throw bad(`files are not sorted or not unique at ${f.path}`);
    prev = f.path;
    const nat = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    const hex = (x: unknown) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
    if (f.class === 'encrypted') {
      if (!names.has(f.region) || !nat(f.size) || !nat(f.diskSize) || !hex(f.diskSha256)) throw bad(`bad encrypted-file record for ${f.path}`);
    } else if (f.class === 'authenticated') {
      if (!nat(f.size) || !hex(f.sha256)) throw bad(`bad authenticated-file record for ${f.path}`);
    } else if (f.class !== 'plain') {
      const other = f as { class: unknown; path: string };
      throw bad(`unknown class ${JSON.stringify(other.class)} for ${other.path}`);
    }
  }
  for (const r of m.rules!) {
    if (typeof r?.path !== 'string' || !['encrypted', 'authenticated', 'plain'].includes(r.class)) throw bad('bad rule record');
  }
  for (const s of m.symlinks!) if (typeof s?.path !== 'string' || typeof s.target !== 'string') throw bad('bad symlink record');
  return m as ProtectionManifest;
}
