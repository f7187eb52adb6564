/**
 * Region keys: one 16-byte wrap key per encrypted region (or one per image), drawn from a CSPRNG,
 * supplied by the caller or, in deterministic mode, derived from a master key. And the keys file
 * (`schemas/keys.schema.json`) that carries them to whoever provisions the enclave: JSON, each key
 * as 32 hex digits, the form Gramine's `fs.insecure__keys.<name>` takes.
 *
 * Keys are secrets: no function here puts key bytes into an error message.
 */
import { checkJsonDepth, MAX_JSON_DEPTH } from '../oci/json.js';
import { lstat, open, readlink } from 'node:fs/promises';
import nodePath from 'node:path';
import type { CryptoBackend } from '../crypto/backend.js';
import { defaultBackend } from '../crypto/default.js';
import { asEnclavifyError, EnclavifyError } from '../oci/errors.js';
import type { Region, RegionKey } from '../transforms/state.js';

/** Domain label of the wrap-key derivation in deterministic mode. */
const WRAP_KEY_SALT = new TextEncoder().encode('enclavify/encryptFS/v1/wrap-key');

/** A key as a caller may give it: 16 raw bytes or 32 hex digits. */
export type KeyInput = Uint8Array | string;

/** Parses a key given as bytes or hex; `what` names it in errors (never the value). */
export function parseKey(k: KeyInput, what: string): Uint8Array {
  if (typeof k === 'string') {
    if (!/^[0-9a-fA-F]{32}$/.test(k)) throw new EnclavifyError('KEY_INVALID', `${what}: a key must be 32 hex digits (16 bytes)`);
    return new Uint8Array(Buffer.from(k, 'hex'));
  }
  if (!(k instanceof Uint8Array) || k.length !== 16) throw new EnclavifyError('KEY_INVALID', `${what}: a key must be 16 bytes`);
  return new Uint8Array(k);
}

/** Options of {@link regionKeys}. */
export interface RegionKeysOptions {
  regions: readonly Region[];
  /** Keys supplied by the caller, by key name; the others are generated. */
  supplied?: Record<string, KeyInput> | undefined;
  /** Deterministic mode: keys not supplied are HKDF-derived from this master key and the key name. */
  masterKey?: Uint8Array | undefined;
  backend?: CryptoBackend | undefined;
}

/** A key ready for use: its name, the region directories it protects, and its bytes. */
export interface WrapKey {
  name: string;
  regions: string[];
  key: Uint8Array;
}

/**
 * One wrap key per distinct key name of `regions`: supplied, derived (deterministic mode:
 * `HKDF-SHA256(masterKey, "enclavify/encryptFS/v1/wrap-key", "key:" || name, 16)`) or random.
 * Throws `KEY_INVALID` for a malformed supplied key and `KEY_UNKNOWN` for a supplied name no
 * region uses (a typo would otherwise silently produce a random key).
 */
export function regionKeys(opts: RegionKeysOptions): Map<string, WrapKey> {
  const backend = opts.backend ?? defaultBackend;
  const out = new Map<string, WrapKey>();
  for (const r of opts.regions) {
    const k = out.get(r.name);
    if (k) {
      if (!k.regions.includes(r.path)) k.regions.push(r.path);
      continue;
    }
    let key: Uint8Array;
    const given = opts.supplied?.[r.name];
    if (given !== undefined) key = parseKey(given, `key ${r.name}`);
    else if (opts.masterKey) {
      if (opts.masterKey.length < 16) throw new EnclavifyError('KEY_INVALID', 'deterministic mode needs a master key of at least 16 bytes');
      key = backend.hkdfSha256(opts.masterKey, WRAP_KEY_SALT, new TextEncoder().encode(`key:${r.name}`), 16);
    } else key = backend.randomBytes(16);
    out.set(r.name, { name: r.name, regions: [r.path], key });
  }
  for (const name of Object.keys(opts.supplied ?? {})) {
    if (!out.has(name)) {
      throw new EnclavifyError('KEY_UNKNOWN', `a key named ${JSON.stringify(name)} was supplied but no encrypted region uses that name (regions: ${[...out.keys()].join(', ') || 'none'})`);
    }
  }
  return out;
}

/** The keys file: `schemas/keys.schema.json`. */
export interface KeysFile {
  kind: 'enclavify.keys';
  version: 1;
  /** Path of the protection manifest in the image these keys belong to, and its SHA-256. */
  manifest?: { path: string; sha256: string };
  /** The conversion these keys belong to (written by `enclavify convert`; docs/keys.md, "Commit protocol"). */
  conversion?: KeysConversion;
  keys: Array<{
    /** Key name: Gramine `key_name` / `fs.insecure__keys.<name>`, `/dev/attestation/keys/<name>`. */
    name: string;
    /** The (first) region directory the key protects. */
    region: string;
    /** Every region directory the key protects. */
    regions: string[];
    /** 32 lowercase hex digits. */
    key: string;
  }>;
}

/** What binds a keys file to the image it was made for. */
export interface KeysConversion {
  /** Manifest digest of the converted image. */
  image: string;
  /** Where it was written (`--to`). */
  reference: string;
  /** Manifest digest of the source image. */
  source?: string;
  /** SHA-256 (hex) of the command line's options, to recognise an identical rerun. */
  invocation?: string;
}

/** The {@link RegionKey}s of the pipeline state, from wrap keys. */
export function toRegionKeys(keys: Iterable<WrapKey>): RegionKey[] {
  return [...keys].map((k) => ({ name: k.name, region: k.regions[0], regions: [...k.regions], keyHex: Buffer.from(k.key).toString('hex') }));
}

/** Builds the keys file document. */
export function keysFile(keys: readonly RegionKey[], manifest?: { path: string; sha256: string }): KeysFile {
  return {
    kind: 'enclavify.keys',
    version: 1,
    ...(manifest ? { manifest } : {}),
    keys: keys.map((k) => ({ name: k.name, region: k.region, regions: k.regions ?? [k.region], key: k.keyHex })),
  };
}

/** A keys file as read: key bytes by name, the regions each key protects, and the manifest it belongs to. */
export interface KeySet {
  /** Key bytes by key name. */
  keys: Map<string, Uint8Array>;
  /** The region directories the keys file says each key protects (only keys that say). */
  regions: Map<string, string[]>;
  /** Path and SHA-256 of the protection manifest of the image these keys were made for, when the file records it. */
  manifest?: { path: string; sha256: string };
  /** The conversion that wrote the file, when it records one. */
  conversion?: KeysConversion;
  /** Problems worth a warning that do not stop the read (e.g. the file is readable by others). */
  warnings?: string[];
}

/**
 * Where a JSON syntax error is, as `line L, column C`, without any of the text: V8's message
 * quotes the input around the error, and in a keys file that is key digits.
 */
function jsonErrorWhere(text: string, e: unknown): string {
  const m = /position (\d+)/.exec(e instanceof Error ? e.message : '');
  if (!m) return '';
  const pos = Math.min(Number(m[1]), text.length);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return ` at line ${line}, column ${pos - before.lastIndexOf('\n')}`;
}

/**
 * Parses a keys file (its text or parsed JSON): the keys, the regions they protect and the
 * manifest digest recorded with them. Throws `KEYS_FILE_INVALID` naming what is wrong (and
 * `source`, e.g. the file name), never a key value nor any part of the file's text (a syntax
 * error gives the line and column only).
 */
export function parseKeysFile(input: string | unknown, source = 'keys file'): KeySet {
  let doc: unknown = input;
  if (typeof input === 'string') {
    checkJsonDepth(input, MAX_JSON_DEPTH, source);
    try {
      doc = JSON.parse(input);
    } catch (e) {
      throw new EnclavifyError('KEYS_FILE_INVALID', `${source}: not valid JSON${jsonErrorWhere(input, e)}`);
    }
  }
  const bad = (what: string) => new EnclavifyError('KEYS_FILE_INVALID', `${source}: ${what}`);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('expected a JSON object');
  const d = doc as Partial<KeysFile>;
  if (d.kind !== 'enclavify.keys') throw bad('"kind" must be "enclavify.keys"');
  if (d.version !== 1) throw bad(`unsupported version${Number.isSafeInteger(d.version) ? ` ${d.version}` : ''}`);
  if (!Array.isArray(d.keys)) throw bad('"keys" must be an array');
  const out: KeySet = { keys: new Map(), regions: new Map() };
  const absList = (x: unknown) => Array.isArray(x) && x.every((p) => typeof p === 'string' && p.startsWith('/'));
  d.keys.forEach((k, i) => {
    if (!k || typeof k !== 'object' || typeof k.name !== 'string' || k.name === '') throw bad(`keys[${i}] has no name`);
    // The name is printed from here on: refuse one that is not a key name (key material pasted in
    // the wrong place, say). Not capped at 64 characters: names derived from long directories are longer.
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(k.name)) throw bad(`keys[${i}]: invalid key name (letters, digits, _ . - only)`);
    if (typeof k.key !== 'string' || !/^[0-9a-fA-F]{32}$/.test(k.key)) throw bad(`keys[${i}] (${k.name}): "key" must be 32 hex digits`);
    if (out.keys.has(k.name)) throw bad(`key ${k.name} is listed twice`);
    out.keys.set(k.name, new Uint8Array(Buffer.from(k.key, 'hex')));
    if (k.regions !== undefined && !absList(k.regions)) throw bad(`keys[${i}] (${k.name}): "regions" must be a list of absolute paths`);
    if (k.region !== undefined && (typeof k.region !== 'string' || !k.region.startsWith('/'))) throw bad(`keys[${i}] (${k.name}): "region" must be an absolute path`);
    const regions = k.regions ?? (k.region !== undefined ? [k.region] : undefined);
    if (regions) out.regions.set(k.name, [...new Set(regions)]);
  });
  if (d.manifest !== undefined) {
    const m = d.manifest as Partial<{ path: unknown; sha256: unknown }> | null;
    if (!m || typeof m !== 'object' || typeof m.path !== 'string' || !m.path.startsWith('/') || typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(m.sha256)) {
      throw bad('"manifest" needs an absolute "path" and a "sha256" of 64 hex digits');
    }
    out.manifest = { path: m.path, sha256: m.sha256.toLowerCase() };
  }
  const c = d.conversion as Partial<KeysConversion> | undefined | null;
  if (c !== undefined) {
    const digestRe = /^sha256:[0-9a-f]{64}$/;
    if (!c || typeof c !== 'object' || typeof c.image !== 'string' || !digestRe.test(c.image) || typeof c.reference !== 'string'
      || (c.source !== undefined && typeof c.source !== 'string') || (c.invocation !== undefined && (typeof c.invocation !== 'string' || !/^[0-9a-f]{64}$/.test(c.invocation)))) {
      throw bad('"conversion" needs an "image" digest and a "reference"');
    }
    out.conversion = { image: c.image, reference: c.reference, ...(c.source !== undefined ? { source: c.source } : {}), ...(c.invocation !== undefined ? { invocation: c.invocation } : {}) };
  }
  return out;
}

/** Options of {@link readKeysFile}. */
export interface ReadKeysFileOptions {
  /** Follow symlinks on the way to the file even through directories others can write (default false). */
  allowSymlink?: boolean | undefined;
}

/**
 * Checks the way to a keys file: when any component of `file` (or the file) is a symlink, every
 * directory the resolution passes through must be writable only by its owner (root or this
 * user), or be sticky with the entry passed owned by root or this user (a Kubernetes Secret
 * volume: a root-owned tmpfs, `KEY -> ..data/KEY`, `..data -> ..TIMESTAMP`, passes). Otherwise
 * someone else could redirect the link to keys of their choosing. Throws `KEYS_FILE_SYMLINK`.
 */
async function checkKeysPath(file: string): Promise<void> {
  const uid = process.getuid?.() ?? -1;
  const trusted = (owner: number) => owner === 0 || owner === uid;
  const unsafe: string[] = [];
  let sawLink = false;
  let hops = 0;
  const todo = nodePath.resolve(file).split('/').filter(Boolean);
  let cur = '/';
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '..') {
      cur = nodePath.dirname(cur);
      continue;
    }
    const next = nodePath.join(cur, part);
    const [dirSt, st] = await Promise.all([lstat(cur), lstat(next).catch(() => undefined)]);
    if (!st) break; // readFile reports the missing file
    const othersWrite = (dirSt.mode & 0o022) !== 0;
    const sticky = (dirSt.mode & 0o1000) !== 0;
    if (!trusted(dirSt.uid) || (othersWrite && !(sticky && trusted(st.uid)))) unsafe.push(cur);
    if (st.isSymbolicLink()) {
      sawLink = true;
      if (++hops > 40) throw new EnclavifyError('KEYS_FILE_SYMLINK', `keys file ${file}: too many symlinks on the way`);
      const target = await readlink(next);
      todo.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) cur = '/';
      continue;
    }
    cur = next;
  }
  if (sawLink && unsafe.length) {
    throw new EnclavifyError('KEYS_FILE_SYMLINK', `keys file ${file}: it is reached through a symlink and ${[...new Set(unsafe)].join(', ')} can be written by other users, who could redirect it; move the file, fix the directory's mode, or pass --allow-keys-symlink`);
  }
}

/**
 * Reads and parses the keys file at `path` (see {@link parseKeysFile}). A file that cannot be
 * read is `NOT_FOUND`, `PERMISSION_DENIED` or `IO_ERROR`, naming the path. A file reached through
 * a symlink in a directory other users can write is refused (`KEYS_FILE_SYMLINK`) unless
 * `allowSymlink`; a file readable by group or others gives a warning in `warnings`.
 */
export async function readKeysFile(path: string, options: ReadKeysFileOptions = {}): Promise<KeySet> {
  let text: string;
  const warnings: string[] = [];
  try {
    if (!options.allowSymlink) await checkKeysPath(path);
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (st.isFile() && (st.mode & 0o044) !== 0) {
        warnings.push(`keys file ${path} is readable by ${(st.mode & 0o004) !== 0 ? 'all users' : 'its group'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`);
      }
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw asEnclavifyError(e, `keys file ${path}`);
  }
  const set = parseKeysFile(text, path);
  if (warnings.length) set.warnings = warnings;
  return set;
}
