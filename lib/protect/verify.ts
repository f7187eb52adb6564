/**
 * Offline verification of a converted image against its keys and its protection manifest:
 * - every encrypted file decrypts with its region's key, bound to its path (every node's MAC is
 *   checked), has its recorded size and is the very ciphertext the manifest records;
 * - every authenticated file has its recorded SHA-256;
 * - no file under an encrypted region is plaintext, in any layer (hidden entries included);
 * - nothing unlisted was added (files or symlinks), and nothing listed is missing.
 * Each problem is a {@link Finding} naming the file (and the layer, for hidden entries) and the
 * reason. Keys are never printed.
 */
import { createHash } from 'node:crypto';
import type { CryptoBackend } from '../crypto/backend.js';
import type { Image } from '../oci/image.js';
import { compareBytewise } from '../fs/entry.js';
import { RootFs } from '../fs/merged.js';
import { readTar } from '../fs/tar-read.js';
import { parseKey, parseKeysFile, type KeyInput, type KeysFile } from './keys.js';
import { MANIFEST_PATH, manifestSha256 as sha256Hex, parseManifest, type EncryptedFileRecord, type ProtectionManifest } from './manifest.js';
import { FILE_ID } from './pf/format.js';
import { PfError, verifyProtectedFile } from './pf/index.js';
import { matchRules, type Rule } from './rules.js';

/** Kinds of findings. */
export type FindingCode =
  | 'MANIFEST_MISSING'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_DIGEST'
  | 'KEY_MISSING'
  | 'MISSING'
  | 'TYPE_CHANGED'
  | 'HASH_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'CIPHERTEXT_CHANGED'
  | 'PLAINTEXT_IN_REGION'
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
  image: Image;
  /** The keys: a keys file (its text or document), or key bytes / hex by key name. */
  keys: string | KeysFile | ReadonlyMap<string, Uint8Array> | Record<string, KeyInput>;
  /** Where the manifest is (default {@link MANIFEST_PATH}). */
  manifestPath?: string;
  /** The manifest SHA-256 a policy expects (hex); a different manifest is a finding. */
  expectedManifestSha256?: string;
  backend?: CryptoBackend;
  progress?: (message: string) => void;
}

/** What {@link verify} found. */
export interface VerifyResult {
  /** True when there is no finding. */
  ok: boolean;
  findings: Finding[];
  /** SHA-256 of the manifest found in the image. */
  manifestSha256?: string;
  /** What was checked. */
  checked: { encrypted: number; authenticated: number; plain: number; symlinks: number; hiddenEntries: number; layers: number };
}

const abs = (p: string) => (p === '.' ? '/' : '/' + p);
const rel = (p: string) => (p === '/' ? '.' : p.replace(/^\/+/, ''));

function keyMap(keys: VerifyOptions['keys']): Map<string, Uint8Array> {
  if (typeof keys === 'string') return parseKeysFile(keys);
  if (keys instanceof Map) return new Map([...keys].map(([n, k]) => [n, parseKey(k, `key ${n}`)]));
  const k = keys as KeysFile | Record<string, KeyInput>;
  if ((k as KeysFile).kind === 'enclavify.keys') return parseKeysFile(k);
  return new Map(Object.entries(k as Record<string, KeyInput>).map(([n, v]) => [n, parseKey(v, `key ${n}`)]));
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

/**
 * Verifies an image's file protection (see the module comment). Reads every layer once to build
 * the merged view (hashing all files), then once more each layer that holds encrypted entries.
 * Throws only for unreadable images or malformed keys; everything else is a finding.
 */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const keys = keyMap(opts.keys);
  const layers = await opts.image.layers();
  opts.progress?.(`verify: scanning ${layers.length} layers of ${opts.image.name}`);
  const fs = await RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() })));
  const checked = { encrypted: 0, authenticated: 0, plain: 0, symlinks: 0, hiddenEntries: 0, layers: layers.length };
  const done = (manifestSha256?: string): VerifyResult => {
    findings.sort((a, b) => compareBytewise(a.path, b.path) || (a.layer ?? -1) - (b.layer ?? -1));
    return { ok: findings.length === 0, findings, ...(manifestSha256 ? { manifestSha256 } : {}), checked };
  };

  // The manifest itself.
  const mPath = opts.manifestPath ?? MANIFEST_PATH;
  const mEntry = fs.get(rel(mPath));
  if (!mEntry || mEntry.type !== 'file') {
    add({ path: mPath, code: 'MANIFEST_MISSING', message: mEntry ? `the protection manifest is a ${mEntry.type}, not a file` : 'the image has no protection manifest: it was not converted by enclavify, or the manifest was removed' });
    return done();
  }
  const mBytes = (await fs.readFiles([rel(mPath)])).get(rel(mPath))!;
  const mSha = sha256Hex(mBytes);
  if (opts.expectedManifestSha256 && opts.expectedManifestSha256.toLowerCase() !== mSha) {
    add({ path: mPath, code: 'MANIFEST_DIGEST', message: `the protection manifest has SHA-256 ${mSha}, the policy expects ${opts.expectedManifestSha256.toLowerCase()}` });
  }
  let manifest: ProtectionManifest;
  try {
    manifest = parseManifest(mBytes, mPath);
  } catch (e) {
    add({ path: mPath, code: 'MANIFEST_INVALID', message: (e as Error).message });
    return done(mSha);
  }
  const rules = manifest.rules as Rule[];
  const regionPath = new Map(manifest.regions.map((r) => [r.name, r.path]));
  for (const [name, path] of regionPath) {
    if (!keys.has(name)) add({ path, code: 'KEY_MISSING', message: `no key named ${name} for encrypted region ${path}: its files cannot be checked` });
  }

  // Merged view against the manifest.
  const tasks = new Map<number, Map<number, Task>>(); // layer -> entry index -> task
  const schedule = (layer: number, index: number, t: Task) => {
    let m = tasks.get(layer);
    if (!m) tasks.set(layer, (m = new Map()));
    m.set(index, t);
  };
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const visibleContent = new Set<string>(); // `${layer}:${index}` of listed encrypted files
  for (const rec of manifest.files) {
    const e = fs.get(rel(rec.path));
    if (!e) {
      add({ path: rec.path, code: 'MISSING', message: `listed in the protection manifest as ${rec.class} but absent from the image` });
      continue;
    }
    if (e.type !== 'file') {
      add({ path: rec.path, code: 'TYPE_CHANGED', message: `listed as a ${rec.class} file but the image has a ${e.type} there` });
      continue;
    }
    if (rec.class === 'authenticated') {
      checked.authenticated++;
      if (e.sha256 !== rec.sha256) {
        add({ path: rec.path, code: 'HASH_MISMATCH', message: `authenticated file changed: SHA-256 ${e.sha256} (${e.size} bytes), the manifest records ${rec.sha256} (${rec.size} bytes)` });
      }
    } else if (rec.class === 'encrypted') {
      checked.encrypted++;
      if (!keys.has(rec.region)) continue;
      if (e.nlink > 1) {
        add({ path: rec.path, code: 'HARDLINK_IN_REGION', message: `encrypted file shares its content with ${e.nlink - 1} other path(s) through hard links; an encrypted file is bound to one path` });
      }
      const c = e.content!;
      visibleContent.add(`${c.layer}:${c.index}`);
      schedule(c.layer, c.index, { path: rec.path, region: rec.region, what: { kind: 'listed', record: rec }, layer: c.layer });
    } else checked.plain++;
  }
  for (const e of fs.entries()) {
    const p = abs(e.path);
    if (e.type !== 'file' || p === mPath || listed.has(p)) continue;
    const m = matchRules(rules, p);
    const added = `(added by ${fs.layers[e.layer]?.name ?? `layer ${e.layer}`})`;
    if (m?.class === 'encrypted' && keys.has(m.region!)) {
      const c = e.content!;
      visibleContent.add(`${c.layer}:${c.index}`);
      schedule(c.layer, c.index, { path: p, region: m.region!, what: { kind: 'unlisted' }, layer: c.layer });
    } else {
      add({ path: p, code: 'UNLISTED', message: `file not listed in the protection manifest ${added}${m?.class === 'encrypted' ? ` inside encrypted region ${m.rule.path}` : ''}` });
    }
  }

  // Symlinks: a changed or added link redirects what a program opens.
  const links = new Map(manifest.symlinks.map((s) => [s.path, s.target]));
  for (const [p, target] of links) {
    checked.symlinks++;
    const e = fs.get(rel(p));
    if (!e) add({ path: p, code: 'MISSING', message: `symlink -> ${target} listed in the protection manifest but absent from the image` });
    else if (e.type !== 'symlink') add({ path: p, code: 'TYPE_CHANGED', message: `listed as a symlink -> ${target} but the image has a ${e.type} there` });
    else if (e.linkname !== target) add({ path: p, code: 'SYMLINK_CHANGED', message: `symlink now points to ${e.linkname}, the manifest records ${target}` });
  }
  for (const e of fs.entries()) {
    if (e.type === 'symlink' && !links.has(abs(e.path))) {
      add({ path: abs(e.path), code: 'UNLISTED', message: `symlink -> ${e.linkname} not listed in the protection manifest (added by ${fs.layers[e.layer]?.name ?? `layer ${e.layer}`})` });
    }
  }

  // Every layer: entries under encrypted regions that the merged view does not show.
  fs.layers.forEach((ix, i) => {
    ix.entries.forEach((e, k) => {
      if (e.whiteout || (e.type !== 'file' && e.type !== 'hardlink')) return;
      const p = abs(e.path);
      if (p === mPath) return; // the manifest itself (plain by construction, even under a `/` region)
      const m = matchRules(rules, p);
      if (m?.class !== 'encrypted') return;
      if (e.type === 'hardlink') {
        const seen = fs.get(e.path);
        // A visible link is reported through its path above; report the entry itself here.
        add({ path: p, code: 'HARDLINK_IN_REGION', layer: i, message: `${ix.name}: hard link to /${e.linkname} inside encrypted region ${m.rule.path}${seen ? '' : ' (hidden by a later layer)'}: the linked content is not encrypted for this path` });
        return;
      }
      if (visibleContent.has(`${i}:${k}`)) return;
      checked.hiddenEntries++;
      if (!keys.has(m.region!)) return;
      schedule(i, k, { path: p, region: m.region!, what: { kind: 'hidden' }, layer: i });
    });
  });

  // Read what must be decrypted: one pass per layer that holds some.
  for (const [i, wanted] of [...tasks].sort((a, b) => a[0] - b[0])) {
    const layer = layers[i];
    opts.progress?.(`verify: decrypting ${wanted.size} file(s) of ${layer.name}`);
    let k = 0;
    let left = wanted.size;
    for await (const { content } of readTar(await layer.uncompressed(), { source: layer.name })) {
      const t = wanted.get(k++);
      if (!t || !content) continue;
      await checkEncrypted(t, content, keys.get(t.region)!, fs.layers[i].name, opts.backend, add);
      if (--left === 0) break;
    }
  }
  return done(mSha);
}

/** Decrypts one entry and turns every problem into a finding. */
async function checkEncrypted(t: Task, content: AsyncIterable<unknown>, key: Uint8Array, layerName: string, backend: CryptoBackend | undefined, add: (f: Finding) => void): Promise<void> {
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
      return;
    }
    const code = e.code === 'PF_INPUT' ? 'PF_FORMAT' : e.code;
    add({ path: t.path, code, ...layer, message: `${where}${e.message}${hiddenNote}` });
    return;
  }
  const disk = tap.hash.digest('hex');
  if (t.what.kind === 'unlisted') {
    add({ path: t.path, code: 'UNLISTED', message: `a valid encrypted file (${info.plainSize} bytes) that the protection manifest does not list` });
    return;
  }
  if (t.what.kind === 'hidden') return; // a valid encrypted file, hidden: no plaintext leaks
  const rec = t.what.record;
  if (info.plainSize !== rec.size) {
    add({ path: t.path, code: 'SIZE_MISMATCH', message: `decrypts to ${info.plainSize} bytes, the manifest records ${rec.size}` });
  } else if (disk !== rec.diskSha256 || info.diskSize !== rec.diskSize) {
    add({ path: t.path, code: 'CIPHERTEXT_CHANGED', message: `a valid encrypted file for this path, but not the one the manifest records (SHA-256 ${disk}, recorded ${rec.diskSha256}): an older version or a re-encryption (rollback?)` });
  }
}

/** Findings as text, one per line: `PATH: CODE: message`. */
export function formatFindings(r: VerifyResult): string {
  if (r.ok) {
    const c = r.checked;
    return `verified: ${c.encrypted} encrypted, ${c.authenticated} authenticated, ${c.plain} plain files, ${c.symlinks} symlinks, ${c.hiddenEntries} hidden entries in encrypted regions; manifest sha256:${r.manifestSha256}`;
  }
  return [`${r.findings.length} finding(s):`, ...r.findings.map((f) => `  ${f.path}: ${f.code}: ${f.message}`)].join('\n');
}

