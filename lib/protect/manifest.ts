/**
 * The protection manifest: our equivalent of SCONE's file-system protection file (FSPF). It lists
 * the encrypted regions, the effective rules and every entry of the image: each regular file with
 * its class (the SHA-256 of authenticated files, the sizes and the SHA-256 of the encrypted bytes
 * of encrypted ones), each symlink with its target, each directory, device node and FIFO, and for
 * all of them the mode, owner, group and xattrs a container runtime applies. Records a later step
 * adds to a manifest made earlier go into amendments that keep the earlier manifest recoverable
 * byte for byte (see {@link Amendment}). It is stored in the image at {@link MANIFEST_PATH},
 * described by `schemas/protection-manifest.schema.json`, and its SHA-256 goes into the keys file
 * and policies, so the verifier and attestation can pin the whole file-system state.
 *
 * It never holds keys or plaintext hashes of encrypted files (a hash would let anyone confirm a
 * guess of a secret).
 */
import { checkJsonDepth, MAX_JSON_DEPTH } from '../oci/json.js';
import { createHash } from 'node:crypto';
import { compareBytewise, shortenPath, type FsEntry } from '../fs/entry.js';
import { EnclavifyError } from '../oci/errors.js';
import type { Region } from '../transforms/state.js';
import type { Rule } from './rules.js';

/** Where the protection manifest lives in the image. */
export const MANIFEST_PATH = '/.enclavify/protection.json';

/** The format of encrypted files, as named in the manifest. */
export const ENCRYPTED_FORMAT = 'gramine-encrypted-files-2.0';

/** Version of the manifest format: 2 pins metadata and non-regular entries, and allows amendments. */
export const MANIFEST_VERSION = 2;

/** A rule as the manifest records it: the same fields as {@link Rule}. */
export type ManifestRule = Pick<Rule, 'path' | 'class' | 'kind' | 'fileOnly' | 'hostPath' | 'region' | 'source'>;

/**
 * What a container runtime applies to an entry besides its content: permission bits (setuid,
 * setgid and sticky included), numeric owner and group, and extended attributes (PAX
 * `SCHILY.xattr.NAME` records, as containerd and Docker apply them; e.g. `security.capability`).
 */
export interface EntryMeta {
  /** Permission bits, 0 to 0o7777 (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Extended attributes by name (without the `SCHILY.xattr.` prefix), values as lowercase hex; absent when none. */
  xattrs?: Record<string, string>;
}

/** An encrypted file: Gramine encrypted file bound to `path`, with the key of `region`. */
export interface EncryptedFileRecord extends EntryMeta {
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
export interface AuthenticatedFileRecord extends EntryMeta {
  path: string;
  class: 'authenticated';
  size: number;
  sha256: string;
  /** A startup file of the entrypoint. */
  startup?: boolean;
}

/** A file deliberately left unprotected (its metadata is still pinned). */
export interface PlainFileRecord extends EntryMeta {
  path: string;
  class: 'plain';
  /** Mounted from the host at run time. */
  hostPath?: boolean;
}

export type FileRecord = EncryptedFileRecord | AuthenticatedFileRecord | PlainFileRecord;

/** A symlink and its target (verbatim). */
export interface SymlinkRecord extends EntryMeta {
  path: string;
  target: string;
}

/** Kinds of entries other than regular files and symlinks. */
export type OtherEntryType = 'dir' | 'chardev' | 'blockdev' | 'fifo';

/** A directory, device node or FIFO (the root directory is `/`). */
export interface EntryRecord extends EntryMeta {
  path: string;
  type: OtherEntryType;
  /** Device numbers, for `chardev` and `blockdev`. */
  devmajor?: number;
  devminor?: number;
}

/**
 * Records added to a manifest made earlier, by a step that runs on a converted image (e.g.
 * `enclavify sign` adding the signature files). The manifest before the amendment is the same
 * document without this amendment (and the ones after it), serialized by {@link serializeManifest};
 * `base` is its SHA-256, so a verifier pinned to that digest can recompute it and know exactly
 * which records came later. An amendment only adds paths: it never repeats one recorded before.
 * It holds only regular files (authenticated or plain, without setuid/setgid bits or xattrs) and
 * directories (without setuid/setgid bits or xattrs): nothing under an encrypted region, no
 * symlinks or devices.
 */
export interface Amendment {
  /** SHA-256 of the manifest before this amendment. */
  base: string;
  files: Array<AuthenticatedFileRecord | PlainFileRecord>;
  entries: EntryRecord[];
}

/** The protection manifest document. */
export interface ProtectionManifest {
  kind: 'enclavify.protection-manifest';
  version: typeof MANIFEST_VERSION;
  /** Format of the encrypted files. */
  encryptedFormat: typeof ENCRYPTED_FORMAT;
  regions: Region[];
  hostPaths: string[];
  /** The effective rules, so the verifier classifies paths the same way (e.g. hidden layer entries). */
  rules: ManifestRule[];
  /** Every regular file of the image (but the manifest itself), sorted bytewise by path. */
  files: FileRecord[];
  /** Every symlink of the image and its target, sorted by path (a changed link redirects opens). */
  symlinks: SymlinkRecord[];
  /** Every directory (the root `/` included), device node and FIFO, sorted by path. */
  entries: EntryRecord[];
  /** Records added after the manifest was made (see {@link Amendment}); absent when none. */
  amendments?: Amendment[];
}

/** Builds a manifest document: records sorted, rules in the given order. */
export function buildManifest(m: Omit<ProtectionManifest, 'kind' | 'version' | 'encryptedFormat'>): ProtectionManifest {
  const sorted = <T extends { path: string }>(xs: readonly T[]) => [...xs].sort((a, b) => compareBytewise(a.path, b.path));
  const out: ProtectionManifest = {
    kind: 'enclavify.protection-manifest',
    version: MANIFEST_VERSION,
    encryptedFormat: ENCRYPTED_FORMAT,
    regions: m.regions.map((r) => ({ name: r.name, path: r.path })),
    hostPaths: [...m.hostPaths],
    rules: m.rules.map(manifestRule),
    files: sorted(m.files),
    symlinks: sorted(m.symlinks),
    entries: sorted(m.entries),
  };
  if (m.amendments?.length) out.amendments = m.amendments.map((a) => ({ base: a.base, files: sorted(a.files), entries: sorted(a.entries) }));
  return out;
}

const XATTR_PREFIX = 'SCHILY.xattr.';

/** The {@link EntryMeta} of a layer or merged-view entry (xattrs from its PAX records, sorted by name). */
export function entryMeta(e: FsEntry): EntryMeta {
  const meta: EntryMeta = { mode: e.mode, uid: e.uid, gid: e.gid };
  const names = Object.keys(e.pax ?? {}).filter((k) => k.startsWith(XATTR_PREFIX)).sort(compareBytewise);
  if (names.length) meta.xattrs = Object.fromEntries(names.map((k) => [k.slice(XATTR_PREFIX.length), Buffer.from(e.pax![k]).toString('hex')]));
  return meta;
}

/**
 * How an entry's metadata differs from a record's: one phrase per difference (`mode 0755 ->
 * 6777`, `uid 0 -> 1000`, `xattr security.capability added`), empty when it matches.
 */
export function metaDifferences(rec: EntryMeta & { devmajor?: number; devminor?: number }, e: FsEntry): string[] {
  const out: string[] = [];
  const oct = (m: number) => m.toString(8).padStart(4, '0');
  if (rec.mode !== e.mode) out.push(`mode ${oct(rec.mode)} -> ${oct(e.mode)}`);
  if (rec.uid !== e.uid) out.push(`uid ${rec.uid} -> ${e.uid}`);
  if (rec.gid !== e.gid) out.push(`gid ${rec.gid} -> ${e.gid}`);
  const have = entryMeta(e).xattrs ?? {};
  const want = rec.xattrs ?? {};
  for (const k of Object.keys(want)) if (!(k in have)) out.push(`xattr ${k} removed`);
  for (const k of Object.keys(have)) {
    if (!(k in want)) out.push(`xattr ${k} added`);
    else if (have[k] !== want[k]) out.push(`xattr ${k} changed`);
  }
  if ((rec.devmajor !== undefined || e.devmajor !== undefined) && (rec.devmajor !== e.devmajor || rec.devminor !== e.devminor)) {
    out.push(`device ${rec.devmajor},${rec.devminor} -> ${e.devmajor},${e.devminor}`);
  }
  return out;
}

/** A {@link Rule} in manifest form (fixed key order). */
export function manifestRule(r: Rule | ManifestRule): ManifestRule {
  const out: ManifestRule = { path: r.path, class: r.class, kind: r.kind, source: r.source };
  if (r.fileOnly) out.fileOnly = true;
  if (r.hostPath) out.hostPath = true;
  if (r.region !== undefined) out.region = r.region;
  return out;
}

/** The manifest's bytes: compact JSON, one record per line, deterministic for the same document. */
export function serializeManifest(m: ProtectionManifest | ManifestSource): Buffer {
  const chunks = [...manifestPieces(m)];
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * A manifest whose record lists may be made as they are read instead of held: each list is
 * iterated once per serialization and must yield its records sorted bytewise by path (checked:
 * `MANIFEST_INVALID` otherwise). A {@link ProtectionManifest} is one (its lists are arrays).
 */
export interface ManifestSource extends Omit<ProtectionManifest, 'files' | 'symlinks' | 'entries'> {
  files: Iterable<FileRecord>;
  symlinks: Iterable<SymlinkRecord>;
  entries: Iterable<EntryRecord>;
}

/** Records serialized per batch: a million of them never become one array of strings and one string. */
const RECORDS_PER_BATCH = 4096;

/**
 * {@link serializeManifest}'s bytes, made piece by piece (about 1 MiB each) as the iteration gets
 * to them; their concatenation is the same bytes. A large image's manifest (a million files:
 * ~170 MB) can be hashed, then written, without ever being held whole, and with a
 * {@link ManifestSource} its records need not be held either.
 */
export function* manifestPieces(m: ProtectionManifest | ManifestSource): Generator<Buffer> {
  const { files, symlinks, entries, amendments, ...head } = m;
  let text = '';
  function* put(s: string): Generator<Buffer> {
    text += s;
    if (text.length >= 1 << 20) {
      yield Buffer.from(text);
      text = '';
    }
  }
  function* lines(xs: Iterable<{ path: string }>, what: string): Generator<Buffer> {
    let batch: string[] = [];
    let last: string | undefined;
    let first = true;
    for (const x of xs) {
      // The document's invariant (parseManifest refuses a list out of order), kept for lists
      // made on the fly as well as for arrays.
      if (last !== undefined && compareBytewise(last, x.path) >= 0) {
        throw new EnclavifyError('MANIFEST_INVALID', `protection manifest: ${what} not sorted bytewise by path (${shortenPath(last)} before ${shortenPath(x.path)})`);
      }
      last = x.path;
      batch.push(JSON.stringify(x));
      if (batch.length === RECORDS_PER_BATCH) {
        yield* put((first ? '[\n' : ',\n') + batch.join(',\n'));
        first = false;
        batch = [];
      }
    }
    if (batch.length) {
      yield* put((first ? '[\n' : ',\n') + batch.join(',\n'));
      first = false;
    }
    yield* put(first ? '[]' : '\n]');
  }
  const top = JSON.stringify(head);
  yield* put(`${top.slice(0, -1)},\n"files":`);
  yield* lines(files, 'files');
  yield* put(',\n"symlinks":');
  yield* lines(symlinks, 'symlinks');
  yield* put(',\n"entries":');
  yield* lines(entries, 'entries');
  if (amendments?.length) {
    yield* put(',\n"amendments":[\n');
    for (const [i, a] of amendments.entries()) {
      yield* put(`${i ? ',\n' : ''}{"base":${JSON.stringify(a.base)},\n"files":`);
      yield* lines(a.files, `amendments[${i}].files`);
      yield* put(',\n"entries":');
      yield* lines(a.entries, `amendments[${i}].entries`);
      yield* put('}');
    }
    yield* put('\n]');
  }
  yield* put('}\n');
  if (text) yield Buffer.from(text);
}

/** Hex SHA-256 of manifest bytes. */
export function manifestSha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The manifest as it was before amendment `i` (and the ones after it): the document with only
 * the first `i` amendments, and its bytes. For a manifest written by {@link serializeManifest},
 * `manifestBefore(m, m.amendments.length).bytes` are the manifest's own bytes.
 */
export function manifestBefore(m: ProtectionManifest, i: number): { manifest: ProtectionManifest; bytes: Buffer } {
  const manifest: ProtectionManifest = { ...m };
  const kept = (m.amendments ?? []).slice(0, i);
  if (kept.length) manifest.amendments = kept;
  else delete manifest.amendments;
  return { manifest, bytes: serializeManifest(manifest) };
}

/** Every record of a manifest, amendments included, with the amendment (index) that added it. */
export interface AnyRecord {
  path: string;
  kind: 'file' | 'symlink' | 'entry';
  record: FileRecord | SymlinkRecord | EntryRecord;
  /** Index of the amendment that added it; undefined for records of the manifest itself. */
  amendment?: number;
}

/** The records of a manifest and of its amendments, in document order. */
export function allRecords(m: ProtectionManifest): AnyRecord[] {
  const out: AnyRecord[] = [];
  const put = (kind: AnyRecord['kind'], xs: Array<FileRecord | SymlinkRecord | EntryRecord>, amendment?: number) => {
    for (const r of xs) out.push({ path: r.path, kind, record: r, ...(amendment !== undefined ? { amendment } : {}) });
  };
  put('file', m.files);
  put('symlink', m.symlinks);
  put('entry', m.entries);
  (m.amendments ?? []).forEach((a, i) => {
    put('file', a.files, i);
    put('entry', a.entries, i);
  });
  return out;
}

/**
 * Parses manifest bytes and checks the structure this code relies on (kind, version, records of
 * the right shape, each list sorted, no path recorded twice anywhere, amendments within their
 * limits). Throws `MANIFEST_INVALID` naming the problem.
 */
export function parseManifest(bytes: Uint8Array, source = MANIFEST_PATH): ProtectionManifest {
  const bad = (what: string) => new EnclavifyError('MANIFEST_INVALID', `protection manifest ${source}: ${what}`);
  let doc: unknown;
  const text = Buffer.from(bytes).toString('utf8');
  checkJsonDepth(text, MAX_JSON_DEPTH, `protection manifest ${source}`);
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    throw bad(`not JSON${at !== undefined ? ` (error at byte ${at})` : ''}`);
  }
  const m = doc as Partial<ProtectionManifest>;
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw bad('not a JSON object');
  if (m.kind !== 'enclavify.protection-manifest') throw bad('"kind" is not "enclavify.protection-manifest"');
  if ((m.version as number) === 1) throw bad('version 1 (written before enclavify pinned metadata and non-regular entries): convert the image again');
  if (m.version !== MANIFEST_VERSION) throw bad(`unsupported version ${JSON.stringify(m.version)}`);
  if (m.encryptedFormat !== ENCRYPTED_FORMAT) throw bad(`unsupported encrypted-file format ${JSON.stringify(m.encryptedFormat)}`);
  for (const k of ['regions', 'hostPaths', 'rules', 'files', 'symlinks', 'entries'] as const) if (!Array.isArray(m[k])) throw bad(`"${k}" must be an array`);
  if (m.amendments !== undefined && !Array.isArray(m.amendments)) throw bad('"amendments" must be an array');
  const names = new Set<string>();
  for (const r of m.regions!) {
    if (typeof r?.name !== 'string' || typeof r.path !== 'string' || !r.path.startsWith('/')) throw bad('a region needs a name and an absolute path');
    names.add(r.name);
  }
  for (const r of m.rules!) {
    if (typeof r?.path !== 'string' || !['encrypted', 'authenticated', 'plain'].includes(r.class)) throw bad('bad rule record');
  }
  const nat = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  const hex = (x: unknown) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x);
  const meta = (r: Partial<EntryMeta>, what: string) => {
    if (!nat(r.mode) || r.mode! > 0o7777 || !nat(r.uid) || !nat(r.gid)) throw bad(`${what}: mode, uid and gid must be integers (mode at most 0o7777)`);
    if (r.xattrs !== undefined) {
      if (!r.xattrs || typeof r.xattrs !== 'object' || Array.isArray(r.xattrs)) throw bad(`${what}: "xattrs" must be an object`);
      for (const v of Object.values(r.xattrs)) if (typeof v !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(v)) throw bad(`${what}: xattr values must be lowercase hex`);
    }
  };
  const sortedList = (xs: Array<{ path?: unknown }>, list: string) => {
    let prev: string | undefined;
    for (const x of xs) {
      if (typeof x?.path !== 'string' || !x.path.startsWith('/')) throw bad(`a record of "${list}" needs an absolute path`);
      if (prev !== undefined && compareBytewise(prev, x.path) >= 0) throw bad(`"${list}" is not sorted or not unique at ${x.path}`);
      prev = x.path;
    }
  };
  const file = (f: FileRecord, amended: boolean) => {
    const what = `${amended ? 'amended ' : ''}file record ${f.path}`;
    if (f.class === 'encrypted') {
      if (amended) throw bad(`${what}: an amendment cannot add encrypted files (they come from encryptFS only)`);
      if (!names.has(f.region) || !nat(f.size) || !nat(f.diskSize) || !hex(f.diskSha256)) throw bad(`bad encrypted-file record for ${f.path}`);
    } else if (f.class === 'authenticated') {
      if (!nat(f.size) || !hex(f.sha256)) throw bad(`bad authenticated-file record for ${f.path}`);
    } else if (f.class !== 'plain') {
      const other = f as { class: unknown; path: string };
      throw bad(`unknown class ${JSON.stringify(other.class)} for ${other.path}`);
    }
    meta(f, what);
  };
  const entry = (e: EntryRecord, amended: boolean) => {
    const what = `${amended ? 'amended ' : ''}entry record ${e.path}`;
    if (!['dir', 'chardev', 'blockdev', 'fifo'].includes(e.type)) throw bad(`${what}: unknown type ${JSON.stringify(e.type)}`);
    if (amended && e.type !== 'dir') throw bad(`${what}: an amendment can add directories, not ${e.type}s`);
    if ((e.type === 'chardev' || e.type === 'blockdev') !== (e.devmajor !== undefined) || (e.devmajor !== undefined && (!nat(e.devmajor) || !nat(e.devminor)))) {
      throw bad(`${what}: device numbers go with device nodes only`);
    }
    meta(e, what);
  };
  const limited = (r: EntryMeta, what: string) => {
    if (r.mode & 0o6000 || r.xattrs) throw bad(`${what}: an amendment cannot add setuid/setgid bits or xattrs`);
  };
  sortedList(m.files!, 'files');
  sortedList(m.symlinks!, 'symlinks');
  sortedList(m.entries!, 'entries');
  for (const f of m.files!) file(f, false);
  for (const s of m.symlinks!) {
    if (typeof s.target !== 'string') throw bad(`bad symlink record for ${s.path}`);
    meta(s, `symlink record ${s.path}`);
  }
  for (const e of m.entries!) entry(e, false);
  (m.amendments ?? []).forEach((a, i) => {
    if (!a || typeof a !== 'object' || !hex(a.base) || !Array.isArray(a.files) || !Array.isArray(a.entries)) throw bad(`amendment ${i} needs "base" (a SHA-256), "files" and "entries"`);
    sortedList(a.files, `amendments[${i}].files`);
    sortedList(a.entries, `amendments[${i}].entries`);
    for (const f of a.files) {
      file(f, true);
      limited(f, `amended file record ${f.path}`);
    }
    for (const e of a.entries) {
      entry(e, true);
      limited(e, `amended entry record ${e.path}`);
    }
  });
  const seen = new Set<string>();
  for (const r of allRecords(m as ProtectionManifest)) {
    if (seen.has(r.path)) throw bad(`${r.path} is recorded twice${r.amendment !== undefined ? ` (again by amendment ${r.amendment}: an amendment only adds paths)` : ''}`);
    seen.add(r.path);
  }
  return m as ProtectionManifest;
}
