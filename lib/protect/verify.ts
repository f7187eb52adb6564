/**
 * Offline verification of a converted image against its keys and its protection manifest:
 * - the manifest is the one the keys file (or a policy) pins, by SHA-256; records added after it
 *   by a later step (amendments, e.g. `enclavify sign`) are recognised, listed, and can only add
 *   paths, never change what the pinned manifest says;
 * - the keys and the manifest's regions agree (no region without a key, no key without a region);
 * - every encrypted file decrypts with its region's key, bound to its path (every node's MAC is
 *   checked), has its recorded size and is the very ciphertext the manifest records;
 * - every authenticated file has its recorded SHA-256;
 * - every recorded file, symlink, directory, device and FIFO has its recorded mode, owner, group
 *   and xattrs;
 * - no file under an encrypted region is plaintext, in any layer (hidden entries and whiteout
 *   entries carrying bytes included), and no hidden layer entry holds an encrypted file's plaintext;
 * - nothing unlisted was added, and nothing listed is missing.
 * Each problem is a {@link Finding} naming the file (and the layer, for layer entries) and the
 * reason. Keys are never printed.
 */
import { createHash } from 'node:crypto';
import type { CryptoBackend } from '../crypto/backend.js';
import type { Image } from '../oci/image.js';
import { compareBytewise } from '../fs/entry.js';
import { RootFs, type MergedEntry } from '../fs/merged.js';
import { readTar } from '../fs/tar-read.js';
import { parseKey, parseKeysFile, type KeyInput, type KeysFile, type KeySet } from './keys.js';
import {
  allRecords,
  MANIFEST_PATH,
  manifestBefore,
  manifestSha256 as sha256Hex,
  metaDifferences,
  parseManifest,
  type AnyRecord,
  type EncryptedFileRecord,
  type EntryRecord,
  type FileRecord,
  type ProtectionManifest,
  type SymlinkRecord,
} from './manifest.js';
import { FILE_ID } from './pf/format.js';
import { PfError, verifyProtectedFile } from './pf/index.js';
import { matchRules, type Rule } from './rules.js';
import { coded } from '../oci/errors.js';
import type { ProgressListener } from '../oci/progress.js';
import { layersRootFs } from '../oci/rootfs.js';
import { abortable } from '../oci/abort.js';

/** Kinds of findings. */
export type FindingCode =
  | 'MANIFEST_MISSING'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_DIGEST'
  | 'AMENDED'
  | 'KEY_MISSING'
  | 'KEY_UNUSED'
  | 'KEY_REGION_MISMATCH'
  | 'MISSING'
  | 'TYPE_CHANGED'
  | 'HASH_MISMATCH'
  | 'METADATA_CHANGED'
  | 'SIZE_MISMATCH'
  | 'CIPHERTEXT_CHANGED'
  | 'PLAINTEXT_IN_REGION'
  | 'PLAINTEXT_COPY'
  | 'HARDLINK_IN_REGION'
  | 'UNLISTED'
  | 'SYMLINK_CHANGED'
  | 'PF_FORMAT'
  | 'PF_BAD_MAC'
  | 'PF_PATH_MISMATCH'
  | 'PF_TRUNCATED'
  | 'PF_OVERLONG';

/** One problem: which file, what kind, and a sentence that says what is wrong. */
export interface Finding {
  /** Absolute path in the image. */
  path: string;
  code: FindingCode;
  message: string;
  /** Index of the layer holding the entry, for findings about a layer entry (0 = base). */
  layer?: number;
}

/** Options of {@link verify}. */
export interface VerifyOptions {
  /**
   * The keys: a keys file (its text, its document, or {@link parseKeysFile}'s / {@link readKeysFile}'s
   * result), or key bytes / hex by key name. A keys file's manifest digest pins the manifest (see
   * `expectedManifestSha256`). Absent (the default): a keyless check: every authenticated and
   * plain record is checked, encrypted files are not decrypted but their ciphertext is compared
   * with the digest the manifest records, and they are listed in {@link VerifyResult.notChecked}.
   * Given but lacking a region's key (e.g. `{}`): that region is a `KEY_MISSING` finding.
   */
  keys?: string | KeysFile | KeySet | ReadonlyMap<string, Uint8Array> | Record<string, KeyInput> | undefined;
  /** Where the manifest is (default: the keys file's `manifest.path`, else {@link MANIFEST_PATH}). */
  manifestPath?: string;
  /**
   * The manifest SHA-256 a policy expects (hex, `sha256:` prefix allowed); a different manifest
   * is a finding. Default: the digest the keys file records. Given, it wins over the keys file's.
   */
  expectedManifestSha256?: string;
  /**
   * Records added to the manifest after the pinned one (amendments, e.g. the signature files
   * `enclavify sign` records): `accept` (default) checks them like the others and lists them in
   * {@link VerifyResult.pin}; `refuse` reports each as an `AMENDED` finding.
   */
  amendments?: 'accept' | 'refuse';
  backend?: CryptoBackend;
  /** Progress events (phase `verify`; the scan's byte progress as phase `scan`). */
  onProgress?: ProgressListener | undefined;
  /** Cancels the reads; verify then rejects with `ABORTED`. */
  /** The most entries the merged view may hold (all layers together, default 2,000,000): more fail with `TOO_MANY_ENTRIES`. */
  maxEntries?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** What {@link verify} found. */
export interface VerifyResult {
  /** True when there is no finding. */
  ok: boolean;
  findings: Finding[];
  /** SHA-256 of the manifest found in the image. */
  manifestSha256?: string;
  /**
   * The digest the manifest was checked against and where it came from; `amended` lists the
   * paths recorded after that manifest (by amendments), which it does not pin. Absent when
   * nothing pinned the manifest (keys given without a keys file, and no expected digest).
   */
  pin?: { sha256: string; source: 'expected' | 'keys file'; matched: boolean; amended: string[] };
  /**
   * Encrypted files that were not decrypted because no keys were given (keyless verify): their
   * count and paths. Their ciphertext was still compared with the manifest's record (a change is a
   * `CIPHERTEXT_CHANGED` finding), but their content, path binding and MACs were not checked.
   */
  notChecked?: { encrypted: number; paths: string[]; reason: string };
  /** What was checked. */
  checked: { encrypted: number; authenticated: number; plain: number; symlinks: number; entries: number; hiddenEntries: number; layers: number };
}

const abs = (p: string) => (p === '.' ? '/' : '/' + p);
const rel = (p: string) => (p === '/' ? '.' : p.replace(/^\/+/, ''));

function keySet(keys: VerifyOptions['keys']): KeySet {
  if (typeof keys === 'string') return parseKeysFile(keys);
  if (keys instanceof Map) return { keys: new Map([...keys].map(([n, k]) => [n, parseKey(k, `key ${n}`)])), regions: new Map() };
  const k = keys as KeysFile | KeySet | Record<string, KeyInput>;
  if ((k as KeysFile).kind === 'enclavify.keys') return parseKeysFile(k);
  if ((k as KeySet).keys instanceof Map) {
    const s = k as KeySet;
    return { ...s, keys: new Map([...s.keys].map(([n, v]) => [n, parseKey(v, `key ${n}`)])) };
  }
  return { keys: new Map(Object.entries(k as Record<string, KeyInput>).map(([n, v]) => [n, parseKey(v, `key ${n}`)])), regions: new Map() };
}

/** A check of one layer entry's bytes as an encrypted file. */
interface Task {
  path: string;
  region: string;
  /** Listed: the manifest record; unlisted: in a region but not in the manifest; hidden: not in the merged view. */
  what: { kind: 'listed'; record: EncryptedFileRecord } | { kind: 'unlisted' } | { kind: 'hidden' };
  layer: number;
}

/** Passes chunks through, hashing them and keeping the first 8 bytes. */
class Tap {
  readonly hash = createHash('sha256');
  head = Buffer.alloc(0);
  bytes = 0;
  async *through(src: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
    for await (const c of src) {
      const b = c as Buffer;
      if (this.head.length < 8) this.head = Buffer.concat([this.head, b.subarray(0, 8 - this.head.length)]);
      this.hash.update(b);
      this.bytes += b.length;
      yield b;
    }
  }
}

const layerName = (fs: RootFs, i: number) => fs.layers[i]?.name ?? `layer ${i}`;

/**
 * Finds how the manifest relates to the pinned digest: the number of amendments the pinned
 * manifest had (`m.amendments.length` when the manifest is the pinned one), or undefined when the
 * manifest is not the pinned one plus amendments. Amendments after the pin must each name the
 * manifest before them as their base.
 */
function pinnedPrefix(m: ProtectionManifest, sha: string, pinned: string): { at?: number; problem?: string } {
  const n = m.amendments?.length ?? 0;
  let at: number | undefined = sha === pinned ? n : undefined;
  for (let i = n - 1; at === undefined && i >= 0; i--) if (sha256Hex(manifestBefore(m, i).bytes) === pinned) at = i;
  if (at === undefined) return {};
  for (let j = at; j < n; j++) {
    const base = sha256Hex(manifestBefore(m, j).bytes);
    if (m.amendments![j].base !== base) return { at, problem: `amendment ${j} names base ${m.amendments![j].base}, but the manifest before it has SHA-256 ${base}` };
  }
  return { at };
}

/**
 * Verifies an image's file protection (see the module comment). Reads every layer once to build
 * the merged view (hashing all files), then once more each layer that holds encrypted entries.
 * Throws only for unreadable images or malformed keys; everything else is a finding.
 */
export async function verify(image: Image, options: VerifyOptions = {}): Promise<VerifyResult> {
  return coded(`verify ${image.name}`, () => verifyImage(image, options), options.signal);
}

async function verifyImage(image: Image, opts: VerifyOptions): Promise<VerifyResult> {
  const findings: Finding[] = [];
  const add = (f: Finding): void => void findings.push(f);
  const keyless = opts.keys === undefined;
  const ks = keySet(opts.keys ?? new Map());
  const notDecrypted: string[] = [];
  const keys = ks.keys;
  const layers = await image.layers();
  opts.onProgress?.({ phase: 'verify', image: image.name, message: `verify: scanning ${layers.length} layers of ${image.name}` });
  const fs = await layersRootFs(layers, { onProgress: opts.onProgress, signal: opts.signal, progressEvent: { image: image.name }, image: image.name, maxEntries: opts.maxEntries });
  const checked = { encrypted: 0, authenticated: 0, plain: 0, symlinks: 0, entries: 0, hiddenEntries: 0, layers: layers.length };
  const explicit = opts.expectedManifestSha256?.toLowerCase().replace(/^sha256:/, '');
  const pinned = explicit ?? ks.manifest?.sha256;
  const pinSource = explicit ? 'expected' : 'keys file';
  const whose = explicit ? 'the policy expects' : 'the keys file records';
  let pin: VerifyResult['pin'];
  const done = (manifestSha256?: string): VerifyResult => {
    findings.sort((a, b) => compareBytewise(a.path, b.path) || (a.layer ?? -1) - (b.layer ?? -1));
    const notChecked = keyless && notDecrypted.length
      ? { notChecked: { encrypted: notDecrypted.length, paths: notDecrypted, reason: 'no keys given: encrypted files were not decrypted (their ciphertext was compared with the manifest\'s digest); give the keys file to check them' } }
      : {};
    return { ok: findings.length === 0, findings, ...(manifestSha256 ? { manifestSha256 } : {}), ...(pin ? { pin } : {}), ...notChecked, checked };
  };

  // The manifest itself.
  const mPath = opts.manifestPath ?? ks.manifest?.path ?? MANIFEST_PATH;
  const mEntry = fs.get(rel(mPath));
  if (!mEntry || mEntry.type !== 'file') {
    add({ path: mPath, code: 'MANIFEST_MISSING', message: mEntry ? `the protection manifest is a ${mEntry.type}, not a file` : 'the image has no protection manifest: it was not converted by enclavify, or the manifest was removed' });
    return done();
  }
  const mBytes = (await fs.readFiles([rel(mPath)])).get(rel(mPath))!;
  const mSha = sha256Hex(mBytes);
  const digestFinding = () => add({ path: mPath, code: 'MANIFEST_DIGEST', message: `the protection manifest has SHA-256 ${mSha}, ${whose} ${pinned}${pinSource === 'keys file' ? ' (these keys were made for another image, or the manifest was rewritten)' : ''}` });
  let manifest: ProtectionManifest;
  try {
    manifest = parseManifest(mBytes, mPath);
  } catch (e) {
    add({ path: mPath, code: 'MANIFEST_INVALID', message: (e as Error).message });
    if (pinned && pinned !== mSha) digestFinding();
    return done(mSha);
  }

  // Which records the pinned digest covers: all of them, or all but the later amendments.
  let unpinnedFrom = Infinity; // index of the first amendment the pin does not cover
  if (pinned) {
    const p = pinnedPrefix(manifest, mSha, pinned);
    if (p.at === undefined) digestFinding();
    else {
      unpinnedFrom = p.at;
      if (p.problem) add({ path: mPath, code: 'MANIFEST_INVALID', message: `protection manifest ${mPath}: ${p.problem}` });
    }
    pin = { sha256: pinned, source: pinSource, matched: p.at !== undefined, amended: [] };
  }
  const records = allRecords(manifest);
  const unpinned = (r: AnyRecord) => r.amendment !== undefined && r.amendment >= unpinnedFrom;
  for (const r of records) {
    if (!unpinned(r)) continue;
    pin!.amended.push(r.path);
    if (opts.amendments === 'refuse') {
      add({ path: r.path, code: 'AMENDED', message: `recorded by amendment ${r.amendment} of the protection manifest, after the manifest ${whose}; refused (amendments: refuse)` });
      continue;
    }
    // An amendment records what later layers add; a path already in the image below the manifest is not that.
    const e = fs.get(rel(r.path));
    if (e && e.layer <= mEntry.layer) {
      add({ path: r.path, code: 'AMENDED', message: `recorded by amendment ${r.amendment} after the manifest ${whose}, but it comes from ${layerName(fs, e.layer)}, not from a layer added after the protection manifest` });
    }
  }

  // Keys against regions.
  const rules = manifest.rules as Rule[];
  const regionsOf = new Map<string, string[]>();
  for (const r of manifest.regions) regionsOf.set(r.name, [...(regionsOf.get(r.name) ?? []), r.path]);
  for (const [name, paths] of regionsOf) {
    if (!keys.has(name)) {
      if (keyless) continue; // keyless verify: reported as not checked, file by file
      add({ path: paths[0], code: 'KEY_MISSING', message: `no key named ${name} for encrypted region ${paths.join(', ')}: its files cannot be checked` });
      continue;
    }
    const said = ks.regions.get(name);
    if (said && [...new Set(said)].sort().join('\0') !== [...new Set(paths)].sort().join('\0')) {
      add({ path: paths[0], code: 'KEY_REGION_MISMATCH', message: `the keys file says key ${name} protects ${said.join(', ')}, the protection manifest uses it for ${paths.join(', ')}` });
    }
  }
  for (const name of keys.keys()) {
    if (regionsOf.has(name)) continue;
    const where = ks.regions.get(name);
    add({ path: where?.[0] ?? mPath, code: 'KEY_UNUSED', message: `key ${name}${where ? ` (for ${where.join(', ')})` : ''} is used by no encrypted region of the protection manifest: the region was removed from the manifest, or the keys belong to another image` });
  }

  // Merged view against the manifest.
  const tasks = new Map<number, Map<number, Task>>(); // layer -> entry index -> task
  const schedule = (layer: number, index: number, t: Task) => {
    let m = tasks.get(layer);
    if (!m) tasks.set(layer, (m = new Map()));
    m.set(index, t);
  };
  const recorded = new Map(records.map((r) => [r.path, r]));
  const handled = new Set<string>(); // `${layer}:${index}` of content checked through the merged view
  const metadata = (path: string, rec: { mode: number; uid: number; gid: number }, e: MergedEntry) => {
    const diff = metaDifferences(rec, e);
    if (diff.length) add({ path, code: 'METADATA_CHANGED', message: `${e.type} metadata differs from the protection manifest: ${diff.join(', ')}` });
  };
  for (const r of records) {
    const e = fs.get(rel(r.path));
    if (r.kind === 'file') checkFile(r.record as FileRecord, e);
    else if (r.kind === 'symlink') checkSymlink(r.record as SymlinkRecord, e);
    else checkEntry(r.record as EntryRecord, e);
  }

  function checkFile(rec: FileRecord, e: MergedEntry | undefined): void {
    if (!e) return add({ path: rec.path, code: 'MISSING', message: `listed in the protection manifest as ${rec.class} but absent from the image` });
    if (e.type !== 'file') return add({ path: rec.path, code: 'TYPE_CHANGED', message: `listed as a ${rec.class} file but the image has a ${e.type} there` });
    metadata(rec.path, rec, e);
    const m = matchRules(rules, rec.path);
    if (rec.class !== 'encrypted' && m?.class === 'encrypted') {
      handled.add(`${e.content!.layer}:${e.content!.index}`);
      return add({ path: rec.path, code: 'PLAINTEXT_IN_REGION', message: `listed as a ${rec.class} file inside encrypted region ${m.rule.path}: files of encrypted regions must be encrypted` });
    }
    if (rec.class === 'authenticated') {
      checked.authenticated++;
      if (e.sha256 !== rec.sha256) {
        add({ path: rec.path, code: 'HASH_MISMATCH', message: `authenticated file changed: SHA-256 ${e.sha256} (${e.size} bytes), the manifest records ${rec.sha256} (${rec.size} bytes)` });
      }
    } else if (rec.class === 'encrypted') {
      checked.encrypted++;
      if (!keys.has(rec.region)) {
        if (!keyless) return;
        notDecrypted.push(rec.path);
        // Without the key the bytes on disk can still be compared with the (pinned) manifest.
        if (e.sha256 !== rec.diskSha256 || e.size !== rec.diskSize) {
          add({ path: rec.path, code: 'CIPHERTEXT_CHANGED', message: `encrypted file changed: its bytes on disk have SHA-256 ${e.sha256} (${e.size} bytes), the manifest records ${rec.diskSha256} (${rec.diskSize} bytes); not decrypted (no keys given)` });
        }
        return;
      }
      if (e.nlink > 1) {
        add({ path: rec.path, code: 'HARDLINK_IN_REGION', message: `encrypted file shares its content with ${e.nlink - 1} other path(s) through hard links; an encrypted file is bound to one path` });
      }
      const c = e.content!;
      handled.add(`${c.layer}:${c.index}`);
      schedule(c.layer, c.index, { path: rec.path, region: rec.region, what: { kind: 'listed', record: rec }, layer: c.layer });
    } else checked.plain++;
  }

  function checkSymlink(rec: SymlinkRecord, e: MergedEntry | undefined): void {
    checked.symlinks++;
    if (!e) return add({ path: rec.path, code: 'MISSING', message: `symlink -> ${rec.target} listed in the protection manifest but absent from the image` });
    if (e.type !== 'symlink') return add({ path: rec.path, code: 'TYPE_CHANGED', message: `listed as a symlink -> ${rec.target} but the image has a ${e.type} there` });
    if (e.linkname !== rec.target) add({ path: rec.path, code: 'SYMLINK_CHANGED', message: `symlink now points to ${e.linkname}, the manifest records ${rec.target}` });
    metadata(rec.path, rec, e);
  }

  function checkEntry(rec: EntryRecord, e: MergedEntry | undefined): void {
    checked.entries++;
    if (!e) return add({ path: rec.path, code: 'MISSING', message: `${rec.type} listed in the protection manifest but absent from the image` });
    if (e.type !== rec.type) return add({ path: rec.path, code: 'TYPE_CHANGED', message: `listed as a ${rec.type} but the image has a ${e.type} there` });
    metadata(rec.path, rec, e);
  }

  // Entries the manifest does not list.
  for (const e of [fs.root, ...fs.entries()]) {
    const p = abs(e.path);
    if (p === mPath || recorded.has(p)) continue;
    const added = `(added by ${layerName(fs, e.layer)})`;
    if (e.type === 'file') {
      const m = matchRules(rules, p);
      if (m?.class === 'encrypted' && keys.has(m.region!)) {
        const c = e.content!;
        handled.add(`${c.layer}:${c.index}`);
        schedule(c.layer, c.index, { path: p, region: m.region!, what: { kind: 'unlisted' }, layer: c.layer });
      } else {
        add({ path: p, code: 'UNLISTED', message: `file not listed in the protection manifest ${added}${m?.class === 'encrypted' ? ` inside encrypted region ${m.rule.path}` : ''}` });
      }
    } else if (e.type === 'symlink') {
      add({ path: p, code: 'UNLISTED', message: `symlink -> ${e.linkname} not listed in the protection manifest ${added}` });
    } else {
      const dev = e.type === 'chardev' || e.type === 'blockdev' ? ` ${e.devmajor},${e.devminor}` : '';
      add({ path: p, code: 'UNLISTED', message: `${e.type}${dev} (mode ${e.mode.toString(8).padStart(4, '0')}) not listed in the protection manifest ${added}` });
    }
  }

  // Every layer: entries under encrypted regions that the merged view does not show, and
  // whiteout entries that carry bytes there.
  fs.layers.forEach((ix, i) => {
    ix.entries.forEach((e, k) => {
      const p = abs(e.path);
      if (p === mPath) return; // the manifest itself (plain by construction, even under a `/` region)
      if (e.whiteout) {
        const m = e.size > 0 ? matchRules(rules, p) : undefined;
        if (m?.class === 'encrypted') {
          add({ path: p, code: 'PLAINTEXT_IN_REGION', layer: i, message: `${ix.name}: whiteout entry carrying ${e.size} bytes inside encrypted region ${m.rule.path}: container runtimes never extract them, but they are in the layer blob unencrypted` });
        }
        return;
      }
      if (e.type !== 'file' && e.type !== 'hardlink') return;
      const m = matchRules(rules, p);
      if (m?.class !== 'encrypted') return;
      if (e.type === 'hardlink') {
        const seen = fs.get(e.path);
        // A visible link is reported through its path above; report the entry itself here.
        add({ path: p, code: 'HARDLINK_IN_REGION', layer: i, message: `${ix.name}: hard link to /${e.linkname} inside encrypted region ${m.rule.path}${seen ? '' : ' (hidden by a later layer)'}: the linked content is not encrypted for this path` });
        return;
      }
      if (handled.has(`${i}:${k}`)) return;
      checked.hiddenEntries++;
      if (!keys.has(m.region!)) return;
      schedule(i, k, { path: p, region: m.region!, what: { kind: 'hidden' }, layer: i });
    });
  });

  // Read what must be decrypted: one pass per layer that holds some.
  const plaintexts = new Map<string, string>(); // plaintext SHA-256 of listed encrypted files -> path
  for (const [i, wanted] of [...tasks].sort((a, b) => a[0] - b[0])) {
    const layer = layers[i];
    opts.onProgress?.({ phase: 'verify', layer: i, message: `verify: decrypting ${wanted.size} file(s) of ${layer.name}` });
    let k = 0;
    let left = wanted.size;
    for await (const { content } of readTar(abortable(await layer.uncompressed(), opts.signal), { source: layer.name })) {
      const t = wanted.get(k++);
      if (!t || !content) continue;
      const plain = await checkEncrypted(t, content, keys.get(t.region)!, fs.layers[i].name, opts.backend, add);
      if (plain && t.what.kind === 'listed' && plain.size > 0) plaintexts.set(plain.sha256, t.path);
      if (--left === 0) break;
    }
  }

  // Hidden layer entries (and whiteout entries with bytes) holding an encrypted file's plaintext:
  // e.g. the source of a `mv` into the region, left in a lower layer.
  if (plaintexts.size) {
    const visible = new Set<string>();
    for (const e of fs.walk()) if (e.type === 'file' && e.content) visible.add(`${e.content.layer}:${e.content.index}`);
    fs.layers.forEach((ix, i) => {
      ix.entries.forEach((e, k) => {
        const of = e.sha256 !== undefined && e.size > 0 ? plaintexts.get(e.sha256) : undefined;
        if (!of || visible.has(`${i}:${k}`)) return;
        const p = abs(e.path);
        if (matchRules(rules, p)?.class === 'encrypted') return; // reported as plaintext in the region above
        add({ path: p, code: 'PLAINTEXT_COPY', layer: i, message: `${ix.name}: ${e.whiteout ? 'whiteout' : 'hidden'} entry holding the plaintext of encrypted file ${of} (invisible in the container, but readable in the layer blob)` });
      });
    });
  }
  return done(mSha);
}

/** Decrypts one entry and turns every problem into a finding; returns the plaintext's size and SHA-256 when it decrypted. */
async function checkEncrypted(
  t: Task,
  content: AsyncIterable<unknown>,
  key: Uint8Array,
  layerName: string,
  backend: CryptoBackend | undefined,
  add: (f: Finding) => void,
): Promise<{ size: number; sha256: string } | undefined> {
  const tap = new Tap();
  const where = t.what.kind === 'hidden' ? `${layerName}: hidden entry ` : '';
  const hiddenNote = t.what.kind === 'hidden' ? ' (hidden by a later layer, but its bytes are in the layer blob)' : '';
  const layer = t.what.kind === 'hidden' ? { layer: t.layer } : {};
  let info;
  try {
    info = await verifyProtectedFile({ source: tap.through(content), wrapKey: key, path: t.path, ...(backend ? { backend } : {}) });
  } catch (e) {
    if (!(e instanceof PfError)) throw e;
    const magic = tap.head.length >= FILE_ID.length && FILE_ID.every((b, i) => tap.head[i] === b);
    // No magic: plaintext (an empty file counts too: an encrypted file is never empty).
    if (!magic) {
      add({ path: t.path, code: 'PLAINTEXT_IN_REGION', ...layer, message: `${where}plaintext in encrypted region: not a Gramine encrypted file (no GRAFS_PF header)${hiddenNote}${t.what.kind === 'unlisted' ? '; not listed in the protection manifest' : ''}` });
      return undefined;
    }
    const code = e.code === 'PF_INPUT' ? 'PF_FORMAT' : e.code;
    add({ path: t.path, code, ...layer, message: `${where}${e.message}${hiddenNote}` });
    return undefined;
  }
  const disk = tap.hash.digest('hex');
  const plain = { size: info.plainSize, sha256: info.sha256 };
  if (t.what.kind === 'unlisted') {
    add({ path: t.path, code: 'UNLISTED', message: `a valid encrypted file (${info.plainSize} bytes) that the protection manifest does not list` });
    return plain;
  }
  if (t.what.kind === 'hidden') return plain; // a valid encrypted file, hidden: no plaintext leaks
  const rec = t.what.record;
  if (info.plainSize !== rec.size) {
    add({ path: t.path, code: 'SIZE_MISMATCH', message: `decrypts to ${info.plainSize} bytes, the manifest records ${rec.size}` });
  } else if (disk !== rec.diskSha256 || info.diskSize !== rec.diskSize) {
    add({ path: t.path, code: 'CIPHERTEXT_CHANGED', message: `a valid encrypted file for this path, but not the one the manifest records (SHA-256 ${disk}, recorded ${rec.diskSha256}): an older version or a re-encryption (rollback?)` });
  }
  return plain;
}

