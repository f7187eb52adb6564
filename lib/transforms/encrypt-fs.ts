/**
 * encryptFS: the transform that applies fileClassify's decisions to the layers. Files of encrypted
 * regions become Gramine encrypted files (format 2.0) bound to their absolute paths, in every
 * layer that holds any (hidden entries are dropped); the other layers stay byte-identical. A
 * protection manifest is added as a small new layer, its SHA-256 and the keys go into
 * `draft.state` ({@link PROTECTION}), and the keys into a secret `keys.json` artifact. Keys never
 * enter the image, the report, progress messages or errors.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { noSpaceError } from '../store/space.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { EnclavifyError } from '../oci/errors.js';
import { viewNodes, type MergedEntry, type RootFs } from '../fs/merged.js';
import { ClassifiedFiles } from '../protect/classified-files.js';
import { manifestFromLines, type ManifestBytes } from '../protect/manifest-lines.js';
import { encryptLayers } from '../protect/encrypt-layers.js';
import { historyMentions, scrubHistory } from '../protect/history.js';
import { keysFile, regionKeys, toRegionKeys, type KeyInput } from '../protect/keys.js';
import {
  allRecords,
  buildManifest,
  entryMeta,
  MANIFEST_PATH,
  manifestSha256,
  metaDifferences,
  parseManifest,
  manifestPieces,
  serializeManifest,
  type AnyRecord,
  type AuthenticatedFileRecord,
  type EntryRecord,
  type FileRecord,
  type ManifestSource,
  type ProtectionManifest,
  type PlainFileRecord,
  type SymlinkRecord,
} from '../protect/manifest.js';
import { matchRules, type Rule } from '../protect/rules.js';
import type { Layer } from '../oci/image.js';
import { compareBytewise, type FsEntry } from '../fs/entry.js';
import type { Draft, LayerItem, Transform } from './pipeline.js';
import { CLASSIFICATION, PROTECTION, stateKey, type Classification, type Protection } from './state.js';

/** Options of {@link encryptFS}. */
export interface EncryptFSOptions {
  /** Keys to use, by key (region) name: 16 bytes or 32 hex digits. Regions without one get a fresh CSPRNG key. */
  keys?: Record<string, KeyInput>;
  /**
   * Reproducible builds: node keys and nonces are HKDF-derived from `masterKey` (at least 16
   * bytes), the path and the content, and region keys not given in `keys` are derived from it and
   * the key name; the same input gives byte-identical layers. See docs/protection.md.
   */
  deterministic?: { masterKey: Uint8Array };
  /** Crypto implementation; default node:crypto. */
  backend?: CryptoBackend;
  /** Path of the keys artifact; `false` for none (keys are still in `draft.state`). Default `keys.json`. */
  keysArtifact?: string | false;
  /** Layers rewritten at once (default 2). */
  concurrency?: number;
  /**
   * Replace the text of image history entries (`created_by`, `comment`) that name a path in an
   * encrypted region: build commands are kept in the config in plaintext and may hold what they
   * wrote there (`RUN echo s3cret > /app/data/pw`). Default false: fileClassify warns about them.
   */
  scrubHistory?: boolean;
}

/** Report key of this transform in `draft.report`. */
export const ENCRYPT_REPORT = 'encryptFS';

/** State key: where encryptFS put the keys artifact (so a manifest refresh can update it). */
const KEYS_ARTIFACT_STATE = stateKey<string | false>('enclavify.encryptFS.keysArtifact');

/** State key: the manifest this pipeline wrote last (read back from its spooled bytes, see manifestFromLines) and its SHA-256, for refreshes; `release` deletes the bytes. */
const MANIFEST_SOURCE_STATE = stateKey<{ source: ManifestSource; sha256: string; release: () => Promise<void> }>('enclavify.encryptFS.manifestSource');

/** The encryptFS report section (no key material). */
export interface EncryptReport {
  manifestPath: string;
  manifestSha256: string;
  /** 0-based index of the manifest layer. */
  manifestLayer: number;
  regions: Array<{ name: string; path: string; files: number; bytes: number; diskBytes: number }>;
  /** 0-based indexes of the layers rewritten (they held entries under encrypted regions). */
  rewrittenLayers: number[];
  /** 0-based indexes of the layers kept byte-identical. */
  unchangedLayers: number[];
  /** Hidden entries dropped, and whiteout entries emptied, so that no plaintext of a region remains in a layer. */
  dropped: Array<{ layer: number; path: string; why: string }>;
  keyNames: string[];
  deterministic: boolean;
  /** Problems to look at: visible plaintext copies of encrypted files outside the regions. */
  warnings: string[];
  /** Indexes of the history entries whose text was replaced (`scrubHistory`). */
  historyScrubbed?: number[];
}

const rel = (p: string) => p.slice(1);

/**
 * The manifest's records of the files of `fs` (the view after encryption), from the
 * classification, made one at a time in the walk's order (bytewise by path, as the manifest
 * lists them): a million files' records are never held at once.
 */
function* manifestFiles(fs: RootFs, c: Classification, encrypted: Map<string, { region: string; size: number; diskSize: number; diskSha256: string }>): Generator<FileRecord> {
  // Every path the walk finds must be classified; counting them then tells whether every
  // classified path was found (a set of a million paths seen would say the same, at a cost).
  let seen = 0;
  // The classification of this very view answers by node, without a lookup by path.
  const own = c.files instanceof ClassifiedFiles && c.files.classifies(fs) ? c.files : undefined;
  const nodes = viewNodes(fs);
  for (const n of nodes.walk()) {
    const e = nodes.entryAt(n);
    if (e.type !== 'file' && e.type !== 'symlink') continue;
    const p = '/' + e.path;
    const f = own ? own.fileAt(n, e) : c.files.get(p);
    if (e.type === 'symlink' && f?.symlinkTo !== undefined) {
      // An encrypted copy of the link's target, written with the target's metadata.
      seen++;
      const x = encrypted.get(p);
      const target = fs.stat(e.path);
      if (!x || !target) throw new EnclavifyError('ENCRYPT_INTERNAL', `symlink ${p} is classified as an encrypted copy but was not encrypted`);
      yield { path: p, class: 'encrypted', region: x.region, size: x.size, diskSize: x.diskSize, diskSha256: x.diskSha256, ...entryMeta(target) };
      continue;
    }
    if (e.type !== 'file') continue;
    seen++;
    if (!f) throw new EnclavifyError('ENCRYPT_STALE_CLASSIFICATION', `${p} is in the image but not in the classification: a transform changed the files between fileClassify and encryptFS`);
    const meta = entryMeta(e);
    if (f.class === 'encrypted') {
      const x = encrypted.get(p);
      if (!x) throw new EnclavifyError('ENCRYPT_INTERNAL', `${p} is classified encrypted but was not encrypted`);
      yield { path: p, class: 'encrypted', region: x.region, size: x.size, diskSize: x.diskSize, diskSha256: x.diskSha256, ...meta };
    } else if (f.class === 'authenticated') {
      if (e.sha256 !== f.sha256 && f.sha256 !== undefined) {
        throw new EnclavifyError('ENCRYPT_STALE_CLASSIFICATION', `${p} changed between fileClassify and encryptFS`);
      }
      yield { path: p, class: 'authenticated', size: e.size, sha256: e.sha256!, ...(f.startup ? { startup: true } : {}), ...meta };
    } else yield { path: p, class: 'plain', ...(f.hostPath ? { hostPath: true } : {}), ...meta };
  }
  if (seen !== c.files.size) {
    const walked = new Set<string>();
    for (const e of fs.walk()) if (e.type === 'file' || e.type === 'symlink') walked.add('/' + e.path);
    for (const p of c.files.keys()) {
      if (!walked.has(p)) throw new EnclavifyError('ENCRYPT_STALE_CLASSIFICATION', `${p} was classified but is no longer in the image`);
    }
  }
}

/** A symlink's record. */
const symlinkRecord = (e: MergedEntry): SymlinkRecord => ({ path: '/' + e.path, target: e.linkname!, ...entryMeta(e) });

/** A directory's, device's or FIFO's record (the root is `/`). */
function entryRecord(e: MergedEntry | FsEntry): EntryRecord {
  const type = e.type as EntryRecord['type'];
  const dev = type === 'chardev' || type === 'blockdev' ? { devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 } : {};
  return { path: e.path === '.' ? '/' : '/' + e.path, type, ...dev, ...entryMeta(e) };
}

const isOther = (e: FsEntry) => e.type === 'dir' || e.type === 'chardev' || e.type === 'blockdev' || e.type === 'fifo';

/** Records of the symlinks (but those that became encrypted copies) and of the directories (root included), devices and FIFOs of a view. */
function viewRecords(fs: RootFs, isCopy: (path: string) => boolean = () => false): { symlinks: SymlinkRecord[]; entries: EntryRecord[] } {
  // One walk, no array of every entry (a million-file view would hold a million of them).
  const symlinks: SymlinkRecord[] = [];
  const entries: EntryRecord[] = [fs.root].filter(isOther).map(entryRecord);
  for (const e of fs.walk()) {
    if (e.type === 'symlink' && !isCopy('/' + e.path)) symlinks.push(symlinkRecord(e));
    else if (isOther(e)) entries.push(entryRecord(e));
  }
  return { symlinks, entries };
}

/** The directories of the manifest layer (the manifest's ancestors), read-only for all but root. */
function manifestDirItems(path: string, mtime: number): LayerItem[] {
  const parts = rel(path).split('/');
  return parts.slice(0, -1).map((_, i) => ({ entry: { path: parts.slice(0, i + 1).join('/'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0 } }));
}

/** Writes all of `b` (a write may take only part of it). */
async function writeAll(fh: FileHandle, b: Buffer): Promise<void> {
  for (let at = 0; at < b.length; ) at += (await fh.write(b, at)).bytesWritten;
}

/** Manifests up to this size are kept in memory between serialization and layer; larger ones go to a temporary file. */
const MANIFEST_IN_MEMORY = 16 << 20;

/**
 * The manifest serialized once, with its size and SHA-256: held in memory when small, else
 * spooled to a file in `tmpDir` (a million files' manifest is ~170 MB; serializing it is most of
 * the cost of writing it). `bytes()` gives it back, checked against the digest as it is read.
 * Internal (not exported by the package); `limit` is for tests.
 */
export async function spoolManifest(manifest: ManifestSource, tmpDir: string, path: string, limit = MANIFEST_IN_MEMORY): Promise<{ size: number; sha256: string; bytes(): AsyncGenerator<Buffer>; held(): ManifestBytes; dispose(): Promise<void> }> {
  const h = createHash('sha256');
  let size = 0;
  let held: Buffer[] | undefined = [];
  const file = join(tmpDir, `protection-manifest-${randomBytes(6).toString('hex')}.json`);
  let fh: FileHandle | undefined;
  try {
    for (const c of manifestPieces(manifest)) {
      h.update(c);
      size += c.length;
      if (held) {
        held.push(c);
        if (size <= limit) continue;
        fh = await open(file, 'wx', 0o600);
        for (const x of held) await writeAll(fh, x);
        held = undefined;
      } else await writeAll(fh!, c);
    }
    await fh?.close();
  } catch (err) {
    await fh?.close().catch(() => {});
    await rm(file, { force: true });
    throw (await noSpaceError(err, file, `encryptFS: spooling the protection manifest ${path}`)) ?? err;
  }
  const sha256 = h.digest('hex');
  const kept = held;
  return {
    size,
    sha256,
    async *bytes() {
      if (kept) return yield* kept;
      const check = createHash('sha256');
      for await (const c of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        check.update(c);
        yield c;
      }
      if (check.digest('hex') !== sha256) throw new EnclavifyError('ENCRYPT_INTERNAL', `${path}: the spooled protection manifest (${file}) changed before it was written into the layer`);
    },
    held: () => (kept ? { buffer: kept.length === 1 ? kept[0] : Buffer.concat(kept) } : { file, sha256 }),
    dispose: () => rm(file, { force: true }),
  };
}

/**
 * Builds the layer holding the manifest (its directories, then the file, read-only). With `hold`,
 * also the manifest read back from the bytes just written (they are kept until `release`): what a
 * later refresh joins with the view, holding neither the view the records were made from nor the
 * records themselves.
 */
async function manifestLayer(draft: Draft, manifest: ManifestSource, path: string, hold = false): Promise<{ layer: Layer; sha256: string; held?: { source: ManifestSource; release: () => Promise<void> } }> {
  const spool = await spoolManifest(manifest, draft.tmpDir, path);
  let kept = false;
  try {
    const mtime = Math.floor(draft.created.getTime() / 1000);
    const items = manifestDirItems(path, mtime);
    items.push({ entry: { path: rel(path), type: 'file', mode: 0o444, uid: 0, gid: 0, mtime, size: spool.size }, content: spool.bytes() });
    const layer = await draft.buildLayer(items, 'protection manifest');
    if (!hold) return { layer, sha256: spool.sha256 };
    const { files: _f, symlinks: _s, entries: _e, ...head } = manifest;
    kept = true;
    return { layer, sha256: spool.sha256, held: { source: manifestFromLines(head, spool.held(), path), release: () => spool.dispose() } };
  } finally {
    if (!kept) await spool.dispose();
  }
}

/** Adds the manifest as a new top layer; returns its SHA-256 (hex) and the manifest as held. */
async function addManifestLayer(draft: Draft, manifest: ManifestSource, path: string): Promise<{ sha256: string; held: { source: ManifestSource; release: () => Promise<void> } }> {
  const { layer, sha256, held } = await manifestLayer(draft, manifest, path, true);
  draft.addLayer(layer, { createdBy: 'enclavify encryptFS', comment: `protection manifest ${path}` });
  return { sha256, held: held! };
}

/** Records a new manifest digest in the state, the keys artifact and the report. */
function publishManifest(draft: Draft, protection: Protection, sha: string, keysArtifact: string | false | undefined): void {
  protection.manifestSha256 = sha;
  draft.state.set(PROTECTION, protection);
  const artifactPath = keysArtifact === undefined ? 'keys.json' : keysArtifact;
  const art = artifactPath === false ? undefined : draft.artifacts.get(artifactPath);
  if (art) {
    art.data = JSON.stringify(keysFile(protection.keys, { path: protection.manifestPath, sha256: sha }), null, 2) + '\n';
  }
  const report = draft.report[ENCRYPT_REPORT] as EncryptReport | undefined;
  if (report) report.manifestSha256 = sha;
}

/**
 * Encrypts the files fileClassify put in encrypted regions and records the protection of every
 * file in a manifest stored at {@link MANIFEST_PATH}. Needs fileClassify before it.
 *
 * ```ts
 * const out = await pipeline(image, [fileClassify({ dirs: ['/app/data'] }), encryptFS()]);
 * const { keys, manifestSha256 } = out.state.get(PROTECTION)!;
 * ```
 */
export function encryptFS(options: EncryptFSOptions = {}): Transform {
  return {
    name: 'encryptFS',
    async apply(draft) {
      const c = draft.state.require(CLASSIFICATION, 'encryptFS', 'fileClassify');
      const rules: Rule[] = c.rules ?? [];
      const keys = regionKeys({ regions: c.regions, supplied: options.keys, masterKey: options.deterministic?.masterKey, backend: options.backend });
      const fs = await draft.rootfs();
      const before = [...draft.layers];
      const res = await encryptLayers({
        rootfs: fs,
        layers: before,
        rules,
        keys,
        build: (items, name) => draft.buildLayer(items, name),
        tmpDir: draft.tmpDir,
        ...(options.backend ? { backend: options.backend } : {}),
        ...(options.deterministic ? { deterministic: options.deterministic } : {}),
        ...(options.concurrency ? { concurrency: options.concurrency } : {}),
        onProgress: draft.onProgress,
        progressEvent: { transform: draft.transform ?? 'encryptFS' },
        signal: draft.signal,
      });
      for (const [i, layer] of [...res.replaced].sort((a, b) => a[0] - b[0])) {
        const n = [...res.encrypted.values()].filter((e) => e.layer === i).length;
        draft.replaceLayer(i, layer, `enclavify encryptFS: ${n} file(s) encrypted`);
      }

      // The manifest describes the files as they are after encryption (metadata is unchanged),
      // and every other entry; the manifest layer's own directories as that layer sets them.
      // Only symlinks are looked up: a pass over every classified file would make an object each.
      const view = viewRecords(fs, (p) => c.files.get(p)?.symlinkTo !== undefined);
      const own = manifestDirItems(MANIFEST_PATH, 0).map((it) => entryRecord(it.entry));
      const ownPaths = new Set(own.map((r) => r.path));
      const built = buildManifest({
        regions: c.regions,
        hostPaths: c.hostPaths,
        rules,
        files: [],
        symlinks: view.symlinks,
        entries: [...view.entries.filter((r) => !ownPaths.has(r.path)), ...own],
      });
      // The file records (one per file: the bulk of a large image's manifest) are made from the
      // walk each time the manifest is serialized, instead of being held.
      const manifest: ManifestSource = { ...built, files: { [Symbol.iterator]: () => manifestFiles(fs, c, res.encrypted) } };
      const { sha256: sha, held } = await addManifestLayer(draft, manifest, MANIFEST_PATH);
      const regionKeyList = toRegionKeys(keys.values());
      const protection: Protection = {
        manifestPath: MANIFEST_PATH,
        manifestSha256: sha,
        keys: regionKeyList,
        regions: c.regions.map((r) => ({ ...r })),
        manifestLayer: draft.layers.length - 1,
      };
      draft.state.set(PROTECTION, protection);
      draft.state.set(KEYS_ARTIFACT_STATE, options.keysArtifact ?? 'keys.json');
      draft.state.set(MANIFEST_SOURCE_STATE, { ...held, sha256: sha });
      if (options.keysArtifact !== false && regionKeyList.length) {
        draft.addArtifact({
          path: options.keysArtifact ?? 'keys.json',
          data: JSON.stringify(keysFile(regionKeyList, { path: MANIFEST_PATH, sha256: sha }), null, 2) + '\n',
          secret: true,
          description: `wrap keys of ${regionKeyList.length} encrypted region key(s) (hex, Gramine fs.insecure__keys form)`,
        });
      }
      const report: EncryptReport = {
        manifestPath: MANIFEST_PATH,
        manifestSha256: sha,
        manifestLayer: protection.manifestLayer!,
        regions: c.regions.map((r) => {
          const files = [...res.encrypted.values()].filter((e) => e.region === r.name && (e.path === r.path || e.path.startsWith(r.path === '/' ? '/' : r.path + '/')));
          return { name: r.name, path: r.path, files: files.length, bytes: files.reduce((s, f) => s + f.size, 0), diskBytes: files.reduce((s, f) => s + f.diskSize, 0) };
        }),
        rewrittenLayers: [...res.replaced.keys()].sort((a, b) => a - b),
        unchangedLayers: before.map((_, i) => i).filter((i) => !res.replaced.has(i)),
        dropped: res.dropped,
        keyNames: regionKeyList.map((k) => k.name),
        deterministic: !!options.deterministic,
        warnings: res.copies.map((x) => `${x.path} holds the same bytes as encrypted ${x.of}, readable in plaintext: encrypting one copy protects nothing (encrypt or remove the other)`),
      };
      for (const w of report.warnings) draft.warn(w, { phase: 'encrypt' });
      if (options.scrubHistory) {
        const mentions = historyMentions(draft.config, rules);
        if (mentions.length) {
          report.historyScrubbed = scrubHistory(draft.config, mentions);
          draft.progress({ phase: 'encrypt', message: `encryptFS: replaced the text of ${mentions.length} image history entr${mentions.length > 1 ? 'ies' : 'y'} naming encrypted regions` });
        }
      }
      draft.report[ENCRYPT_REPORT] = report;
      // The draft has moved on from the view the classification was made on (layers rewritten, the
      // manifest added) and the held manifest no longer needs it: the classification keeps only
      // what its files need, so that view can be collected before the next one is built.
      if (c.files instanceof ClassifiedFiles) c.files.detach();
      draft.progress({ phase: 'encrypt', message: `encryptFS: ${res.encrypted.size} file(s) encrypted in ${res.replaced.size} layer(s); manifest ${MANIFEST_PATH} sha256:${sha}` });
    },
  };
}

/** What {@link refreshProtectionManifest} did. */
export interface ManifestRefresh {
  /** Regular files recorded for the first time (absolute paths). */
  added: string[];
  /** Symlinks, directories, devices and FIFOs recorded for the first time. */
  addedEntries: string[];
  /**
   * Recorded paths whose entry changed since the manifest was made (content, type, target or
   * metadata). Their records are kept as they were: verify reports them (HASH_MISMATCH, ...).
   */
  changed: string[];
  /** Recorded paths no longer in the image; their records are kept (verify reports them MISSING). */
  removed: string[];
  /** New paths left unrecorded, and why (verify reports them UNLISTED). */
  skipped: Array<{ path: string; why: string }>;
  /**
   * `merged`: the records went into the manifest made in this pipeline (the keys artifact gets
   * the new digest); `amendment`: the manifest came with the image, so they went into an
   * amendment that keeps the earlier manifest (and its digest) recoverable; `unchanged`: nothing
   * to record.
   */
  mode: 'merged' | 'amendment' | 'unchanged';
  manifestSha256: string;
}

/** Whether a merged-view entry still matches its record (same type, content or target, metadata). */
function matchesRecord(r: AnyRecord, e: MergedEntry): boolean {
  if (r.kind === 'file') {
    const f = r.record as FileRecord;
    if (e.type !== 'file' || metaDifferences(f, e).length) return false;
    return f.class !== 'authenticated' || f.sha256 === e.sha256; // encrypted files: verify decrypts them
  }
  if (r.kind === 'symlink') return e.type === 'symlink' && e.linkname === (r.record as SymlinkRecord).target && !metaDifferences(r.record as SymlinkRecord, e).length;
  const x = r.record as EntryRecord;
  return e.type === x.type && !metaDifferences(x, e).length;
}

/**
 * Records in the protection manifest what later transforms added (a runtime's files, the
 * signature files of `enclavify sign`), so that `verify` accepts them. It only ever ADDS records,
 * for paths the manifest does not have yet, whose entries come from layers above the manifest's:
 * a recorded file that changed since keeps its record (verify reports it; the change is listed in
 * `changed` and in a progress warning), a removed one too. Regular files get the class the
 * manifest's rules give them (authenticated with their SHA-256, or plain); a new file under an
 * encrypted region is refused (`MANIFEST_REFRESH_ENCRYPTED`): encrypted content can only come
 * from encryptFS.
 *
 * In the pipeline that ran encryptFS, the records are merged into the manifest and the keys
 * artifact gets the new digest. On an image converted earlier (no encryptFS in this pipeline),
 * they go into an {@link Amendment} instead: the manifest before it stays recoverable byte for
 * byte, so a keys file (or policy) pinning the earlier digest still verifies, and verify knows
 * which records the pin does not cover. An amendment holds only regular files and directories
 * without setuid/setgid bits or xattrs; other new entries are left unrecorded (`skipped`).
 *
 * The manifest layer is rebuilt in place and `PROTECTION.manifestSha256` (and the report) updated;
 * call it before anything reads the digest (policies).
 *
 * ```ts
 * // at the end of a runtime's inject():
 * await refreshProtectionManifest(draft);
 * ```
 */
export async function refreshProtectionManifest(draft: Draft): Promise<ManifestRefresh> {
  const protection = draft.state.require(PROTECTION, 'refreshProtectionManifest', 'encryptFS');
  const index = protection.manifestLayer;
  if (index === undefined || index >= draft.layers.length) throw new EnclavifyError('MANIFEST_LAYER_MISSING', 'refreshProtectionManifest: the protection manifest layer is gone');
  const fs = await draft.rootfs();
  const path = protection.manifestPath;
  const merge = draft.state.has(KEYS_ARTIFACT_STATE); // encryptFS made this manifest in this pipeline
  // The manifest this pipeline wrote, when the image still holds exactly it: its records are
  // joined with the view walk (both bytewise by path) without reading, parsing or mapping them.
  const held = draft.state.get(MANIFEST_SOURCE_STATE);
  const inImage = fs.get(rel(path));
  const fast = merge && held !== undefined && inImage?.type === 'file' && inImage.sha256 === held.sha256 ? held.source : undefined;
  let old: ManifestSource;
  let current: Uint8Array | undefined;
  let recorded: Map<string, AnyRecord> | undefined;
  if (fast) old = fast;
  else {
    current = (await fs.readFiles([rel(path)])).get(rel(path));
    if (!current) throw new EnclavifyError('MANIFEST_LAYER_MISSING', `refreshProtectionManifest: ${path} is no longer in the image`);
    const parsed = parseManifest(current, path);
    if (!merge && !serializeManifest(parsed).equals(Buffer.from(current))) {
      throw new EnclavifyError('MANIFEST_NOT_CANONICAL', `refreshProtectionManifest: ${path} is not as enclavify writes it (edited?); refusing to amend it`);
    }
    recorded = new Map(allRecords(parsed).map((r) => [r.path, r]));
    old = parsed;
  }
  const rules = old.rules as Rule[];
  const out: ManifestRefresh = { added: [], addedEntries: [], changed: [], removed: [], skipped: [], mode: 'unchanged', manifestSha256: '' };
  const files: Array<AuthenticatedFileRecord | PlainFileRecord> = [];
  const symlinks: SymlinkRecord[] = [];
  const entries: EntryRecord[] = [];
  const where = (e: MergedEntry) => fs.layers[e.layer]?.name ?? `layer ${e.layer}`;
  // The root, then a walk: no array of every entry of the image.
  const everyEntry = function* (): Generator<MergedEntry> {
    yield fs.root;
    yield* fs.walk();
  };
  const absOf = (e: MergedEntry) => (e.path === '.' ? '/' : '/' + e.path);
  const removedBy: Record<AnyRecord['kind'], string[]> = { file: [], symlink: [], entry: [] };
  /**
   * Each entry of the view with its record, if any. Recorded paths no longer in the view go to
   * `out.removed` (re-read manifest) or `removedBy` (joined records, ordered after the walk).
   */
  function* joined(): Generator<{ p: string; e: MergedEntry; rec?: AnyRecord }> {
    if (recorded) {
      for (const e of everyEntry()) {
        const p = absOf(e);
        const rec = recorded.get(p);
        yield rec ? { p, e, rec } : { p, e };
      }
      for (const p of recorded.keys()) if (!fs.get(p === '/' ? '.' : rel(p))) out.removed.push(p);
      return;
    }
    const view = everyEntry();
    const recs = recordsOf(old)[Symbol.iterator]();
    let e = view.next();
    let r = recs.next();
    while (!e.done || !r.done) {
      const c = e.done ? 1 : r.done ? -1 : compareBytewise(absOf(e.value), r.value.path);
      if (c < 0) {
        yield { p: absOf(e.value), e: e.value };
        e = view.next();
      } else if (c > 0) {
        const gone = r.value as AnyRecord;
        removedBy[gone.kind].push(gone.path);
        r = recs.next();
      } else {
        yield { p: r.value.path, e: e.value, rec: r.value };
        e = view.next();
        r = recs.next();
      }
    }
  }
  for (const { p, e, rec } of joined()) {
    if (p === path) continue;
    if (rec) {
      if (!matchesRecord(rec, e)) out.changed.push(p);
      continue;
    }
    if (e.layer <= index) {
      out.skipped.push({ path: p, why: `in ${where(e)}, not in a layer added after the protection manifest` });
      continue;
    }
    const meta = entryMeta(e);
    const special = (meta.mode & 0o6000) !== 0 || meta.xattrs !== undefined;
    if (!merge && (special || (e.type !== 'file' && e.type !== 'dir'))) {
      out.skipped.push({ path: p, why: special ? 'setuid/setgid bits or xattrs cannot be recorded by an amendment' : `a ${e.type} cannot be recorded by an amendment` });
      continue;
    }
    if (e.type === 'file') {
      const m = matchRules(rules, p);
      if (m?.class === 'encrypted') {
        throw new EnclavifyError('MANIFEST_REFRESH_ENCRYPTED', `${where(e)} adds ${p} under encrypted region ${m.rule.path}; files of encrypted regions must go through encryptFS`);
      }
      if (m?.class === 'plain') files.push({ path: p, class: 'plain', ...(m.hostPath ? { hostPath: true } : {}), ...meta });
      else files.push({ path: p, class: 'authenticated', size: e.size, sha256: e.sha256!, ...meta });
      out.added.push(p);
    } else if (e.type === 'symlink') {
      symlinks.push(symlinkRecord(e));
      out.addedEntries.push(p);
    } else if (e.type !== 'hardlink') {
      entries.push(entryRecord(e));
      out.addedEntries.push(p);
    }
  }
  // In the order of the manifest's lists, as a parsed manifest's records come.
  if (fast) out.removed.push(...removedBy.file, ...removedBy.symlink, ...removedBy.entry);
  const list = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, ... (${xs.length} in all)` : '');
  if (out.changed.length) draft.warn(`protection manifest: ${out.changed.length} recorded entr${out.changed.length > 1 ? 'ies' : 'y'} changed since it was made, not re-recorded (verify reports them): ${list(out.changed)}`);
  if (out.removed.length) draft.warn(`protection manifest: ${out.removed.length} recorded entr${out.removed.length > 1 ? 'ies are' : 'y is'} gone (verify reports them): ${list(out.removed)}`);
  if (out.skipped.length) draft.warn(`protection manifest: ${out.skipped.length} new entr${out.skipped.length > 1 ? 'ies' : 'y'} not recorded (verify reports them): ${list(out.skipped.map((x) => `${x.path} (${x.why})`))}`);
  if (!files.length && !symlinks.length && !entries.length) {
    out.manifestSha256 = fast ? held!.sha256 : manifestSha256(current!);
    return out;
  }
  let manifest: ManifestSource;
  if (fast) {
    // The new records are in walk order, so each list is the merge of two sorted lists.
    manifest = { ...fast, files: sortedUnion(fast.files, files), symlinks: sortedUnion(fast.symlinks, symlinks), entries: sortedUnion(fast.entries, entries) };
  } else {
    const o = old as ProtectionManifest;
    manifest = merge
      ? buildManifest({ ...o, files: [...o.files, ...files], symlinks: [...o.symlinks, ...symlinks], entries: [...o.entries, ...entries] })
      : buildManifest({ ...o, amendments: [...(o.amendments ?? []), { base: manifestSha256(current!), files, entries }] });
  }
  out.mode = merge ? 'merged' : 'amendment';
  const { layer, sha256, held: now } = await manifestLayer(draft, manifest, path, merge);
  draft.replaceLayer(index, layer, merge ? 'protection manifest refreshed' : 'protection manifest amended');
  if (now) {
    draft.state.set(MANIFEST_SOURCE_STATE, { ...now, sha256 });
    // The new manifest was made from the held one's bytes: now they can go.
    await held?.release();
  }
  out.manifestSha256 = sha256;
  publishManifest(draft, protection, out.manifestSha256, draft.state.get(KEYS_ARTIFACT_STATE));
  return out;
}

/** The records of a manifest's three lists as one list, bytewise by path (each list is sorted and no path is in two). */
function recordsOf(m: ManifestSource): Iterable<AnyRecord> {
  const tag = <T extends FileRecord | SymlinkRecord | EntryRecord>(xs: Iterable<T>, kind: AnyRecord['kind']) => ({
    *[Symbol.iterator]() {
      for (const record of xs) yield { path: record.path, kind, record } as AnyRecord;
    },
  });
  return sortedUnion(sortedUnion(tag(m.files, 'file'), tag(m.symlinks, 'symlink')), tag(m.entries, 'entry'));
}

/** Two lists sorted bytewise by path, merged (made as they are read; re-iterable when both are). */
function sortedUnion<T extends { path: string }>(a: Iterable<T>, b: Iterable<T>): Iterable<T> {
  return {
    *[Symbol.iterator]() {
      const ia = a[Symbol.iterator]();
      const ib = b[Symbol.iterator]();
      let x = ia.next();
      let y = ib.next();
      while (!x.done || !y.done) {
        if (y.done || (!x.done && compareBytewise(x.value.path, y.value.path) <= 0)) {
          yield x.value;
          x = ia.next();
        } else {
          yield y.value;
          y = ib.next();
        }
      }
    },
  };
}
