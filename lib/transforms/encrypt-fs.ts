/**
 * encryptFS: the transform that applies fileClassify's decisions to the layers. Files of encrypted
 * regions become Gramine encrypted files (format 2.0) bound to their absolute paths, in every
 * layer that holds any (hidden entries are dropped); the other layers stay byte-identical. A
 * protection manifest is added as a small new layer, its SHA-256 and the keys go into
 * `draft.state` ({@link PROTECTION}), and the keys into a secret `keys.json` artifact. Keys never
 * enter the image, the report, progress messages or errors.
 */
import type { CryptoBackend } from '../crypto/backend.js';
import { EnclavifyError } from '../oci/errors.js';
import type { RootFs } from '../fs/merged.js';
import { encryptLayers } from '../protect/encrypt-layers.js';
import { keysFile, regionKeys, toRegionKeys, type KeyInput } from '../protect/keys.js';
import {
  buildManifest,
  MANIFEST_PATH,
  manifestSha256,
  parseManifest,
  serializeManifest,
  type FileRecord,
  type ProtectionManifest,
} from '../protect/manifest.js';
import { matchRules, type Rule } from '../protect/rules.js';
import type { Layer } from '../oci/image.js';
import type { Draft, LayerItem, Transform } from './pipeline.js';
import { CLASSIFICATION, need, PROTECTION, type Classification, type Protection } from './state.js';

/** Options of {@link encryptFS}. */
export interface EncryptFsOptions {
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
}

/** Report key of this transform in `draft.report`. */
export const ENCRYPT_REPORT = 'encryptFS';

/** State key: where encryptFS put the keys artifact (so a manifest refresh can update it). */
const KEYS_ARTIFACT_STATE = 'enclavify.encryptFS.keysArtifact';

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
  dropped: Array<{ layer: number; path: string; why: string }>;
  keyNames: string[];
  deterministic: boolean;
}

const rel = (p: string) => p.slice(1);

/** The manifest's entries for the files of `fs` (the view after encryption), from the classification. */
function manifestFiles(fs: RootFs, c: Classification, encrypted: Map<string, { region: string; size: number; diskSize: number; diskSha256: string }>): FileRecord[] {
  const out: FileRecord[] = [];
  const seen = new Set<string>();
  for (const e of fs.entries()) {
    if (e.type !== 'file') continue;
    const p = '/' + e.path;
    seen.add(p);
    const f = c.files.get(p);
    if (!f) throw new EnclavifyError('ENCRYPT_STALE_CLASSIFICATION', `${p} is in the image but not in the classification: a transform changed the files between fileClassify and encryptFS`);
    if (f.class === 'encrypted') {
      const x = encrypted.get(p);
      if (!x) throw new EnclavifyError('ENCRYPT_INTERNAL', `${p} is classified encrypted but was not encrypted`);
      out.push({ path: p, class: 'encrypted', region: x.region, size: x.size, diskSize: x.diskSize, diskSha256: x.diskSha256 });
    } else if (f.class === 'authenticated') {
      if (e.sha256 !== f.sha256 && f.sha256 !== undefined) {
        throw new EnclavifyError('ENCRYPT_STALE_CLASSIFICATION', `${p} changed between fileClassify and encryptFS`);
      }
      out.push({ path: p, class: 'authenticated', size: e.size, sha256: e.sha256!, ...(f.startup ? { startup: true } : {}) });
    } else out.push({ path: p, class: 'plain', ...(f.hostPath ? { hostPath: true } : {}) });
  }
  for (const p of c.files.keys()) {
    if (!seen.has(p)) throw new EnclavifyError('ENCRYPT_STALE_CLASSIFICATION', `${p} was classified but is no longer in the image`);
  }
  return out;
}

/** Builds the layer holding the manifest (its directories, then the file, read-only). */
async function manifestLayer(draft: Draft, manifest: ProtectionManifest, path: string): Promise<{ layer: Layer; bytes: Buffer }> {
  const bytes = serializeManifest(manifest);
  const mtime = Math.floor(draft.created.getTime() / 1000);
  const parts = rel(path).split('/');
  const items: LayerItem[] = parts.slice(0, -1).map((_, i) => ({
    entry: { path: parts.slice(0, i + 1).join('/'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime, size: 0 },
  }));
  items.push({ entry: { path: rel(path), type: 'file', mode: 0o444, uid: 0, gid: 0, mtime, size: bytes.length }, content: bytes });
  return { layer: await draft.buildLayer(items, 'protection manifest'), bytes };
}

/** Adds the manifest as a new top layer; returns its bytes. */
async function addManifestLayer(draft: Draft, manifest: ProtectionManifest, path: string): Promise<Buffer> {
  const { layer, bytes } = await manifestLayer(draft, manifest, path);
  draft.addLayer(layer, { createdBy: 'enclavify encryptFS', comment: `protection manifest ${path}` });
  return bytes;
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
 * const out = await pipeline(image, fileClassify({ dirs: ['/app/data'] }), encryptFS());
 * const { keys, manifestSha256 } = out.state.get(PROTECTION) as Protection;
 * ```
 */
export function encryptFS(options: EncryptFsOptions = {}): Transform {
  return {
    name: 'encryptFS',
    async apply(draft) {
      const c = need<Classification>(draft, CLASSIFICATION, 'encryptFS', 'fileClassify');
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
        progress: (m) => draft.progress(m),
      });
      for (const [i, layer] of [...res.replaced].sort((a, b) => a[0] - b[0])) {
        const n = [...res.encrypted.values()].filter((e) => e.layer === i).length;
        draft.replaceLayer(i, layer, `enclavify encryptFS: ${n} file(s) encrypted`);
      }

      // The manifest describes the files as they are after encryption (metadata is unchanged).
      const manifest = buildManifest({
        regions: c.regions,
        hostPaths: c.hostPaths,
        rules,
        files: manifestFiles(fs, c, res.encrypted),
        symlinks: fs.entries().filter((e) => e.type === 'symlink').map((e) => ({ path: '/' + e.path, target: e.linkname! })),
      });
      const bytes = await addManifestLayer(draft, manifest, MANIFEST_PATH);
      const sha = manifestSha256(bytes);
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
      };
      draft.report[ENCRYPT_REPORT] = report;
      draft.progress(`encryptFS: ${res.encrypted.size} file(s) encrypted in ${res.replaced.size} layer(s); manifest ${MANIFEST_PATH} sha256:${sha}`);
    },
  };
}

/** Formats the encryptFS report for the CLI. */
export function formatEncryptReport(r: EncryptReport): string {
  const out = ['Encryption (Gramine encrypted files 2.0, bound to their paths):'];
  for (const g of r.regions) out.push(`  ${g.path.padEnd(30)} key ${g.name.padEnd(16)} ${g.files} file(s), ${g.bytes.toLocaleString('en-US')} -> ${g.diskBytes.toLocaleString('en-US')} bytes`);
  // Layers are numbered from 1 (the base) in text, as in layer names; the JSON report has 0-based indexes.
  const list = (xs: number[]) => (xs.length ? xs.map((i) => i + 1).join(', ') : 'none');
  out.push(`  layers rewritten: ${list(r.rewrittenLayers)}; unchanged (byte-identical): ${list(r.unchangedLayers)}`);
  for (const d of r.dropped) out.push(`  dropped from layer ${d.layer + 1}: ${d.path} (${d.why})`);
  out.push(`Protection manifest: ${r.manifestPath} (layer ${r.manifestLayer + 1}) sha256:${r.manifestSha256}`);
  if (r.deterministic) out.push('  deterministic mode: keys and nonces derived from the master key');
  return out.join('\n');
}

/** What {@link refreshProtectionManifest} changed. */
export interface ManifestRefresh {
  /** Files recorded for the first time (absolute paths). */
  added: string[];
  /** Authenticated files whose recorded hash was updated. */
  changed: string[];
  /** Files no longer in the image, removed from the manifest. */
  removed: string[];
  manifestSha256: string;
}

/**
 * Brings the protection manifest up to date after later transforms added layers (a runtime's
 * files, say), so that `verify` accepts them: new and changed files are recorded with the class
 * the rules give them (authenticated files with their SHA-256), removed ones dropped, symlinks
 * re-read. The manifest layer is rebuilt in place and `PROTECTION.manifestSha256` (and the keys
 * artifact) updated; call it before anything reads the digest (policies). A later layer that puts
 * plaintext under an encrypted region, or changes an encrypted file, is refused: encrypted
 * content can only come from encryptFS.
 *
 * ```ts
 * // at the end of a runtime's inject():
 * await refreshProtectionManifest(draft);
 * ```
 */
export async function refreshProtectionManifest(draft: Draft): Promise<ManifestRefresh> {
  const protection = need<Protection>(draft, PROTECTION, 'refreshProtectionManifest', 'encryptFS');
  const index = protection.manifestLayer;
  if (index === undefined || index >= draft.layers.length) throw new EnclavifyError('MANIFEST_LAYER_MISSING', 'refreshProtectionManifest: the protection manifest layer is gone');
  const fs = await draft.rootfs();
  const path = protection.manifestPath;
  const current = (await fs.readFiles([rel(path)])).get(rel(path));
  if (!current) throw new EnclavifyError('MANIFEST_LAYER_MISSING', `refreshProtectionManifest: ${path} is no longer in the image`);
  const old = parseManifest(current, path);
  const rules = old.rules as Rule[];
  const byPath = new Map(old.files.map((f) => [f.path, f]));
  const files: FileRecord[] = [];
  const out: ManifestRefresh = { added: [], changed: [], removed: [], manifestSha256: '' };
  const seen = new Set<string>();
  for (const e of fs.entries()) {
    if (e.type !== 'file') continue;
    const p = '/' + e.path;
    if (p === path) continue;
    seen.add(p);
    const rec = byPath.get(p);
    const fromLater = e.layer > index;
    if (rec && (!fromLater || (rec.class === 'authenticated' && rec.sha256 === e.sha256))) {
      files.push(rec);
      continue;
    }
    const m = matchRules(rules, p);
    const cls = rec?.class ?? m?.class ?? 'authenticated';
    if (cls === 'encrypted') {
      throw new EnclavifyError('MANIFEST_REFRESH_ENCRYPTED', `${fs.layers[e.layer]?.name ?? `layer ${e.layer}`} ${rec ? 'changes encrypted file' : 'adds'} ${p} under encrypted region ${m?.rule.path ?? ''}; files of encrypted regions must go through encryptFS`);
    }
    if (cls === 'authenticated') files.push({ path: p, class: 'authenticated', size: e.size, sha256: e.sha256! });
    else files.push({ path: p, class: 'plain', ...(m?.hostPath ? { hostPath: true } : {}) });
    (rec ? out.changed : out.added).push(p);
  }
  for (const p of byPath.keys()) if (!seen.has(p)) out.removed.push(p);
  const manifest = buildManifest({
    regions: old.regions,
    hostPaths: old.hostPaths,
    rules: old.rules,
    files,
    symlinks: fs.entries().filter((e) => e.type === 'symlink').map((e) => ({ path: '/' + e.path, target: e.linkname! })),
  });
  const { layer, bytes } = await manifestLayer(draft, manifest, path);
  draft.replaceLayer(index, layer, 'protection manifest refreshed');
  out.manifestSha256 = manifestSha256(bytes);
  publishManifest(draft, protection, out.manifestSha256, draft.state.get(KEYS_ARTIFACT_STATE) as string | false | undefined);
  return out;
}
