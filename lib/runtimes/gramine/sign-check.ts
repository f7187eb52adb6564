/**
 * What `enclavify sign` checks before it blesses an image: signing makes the Gramine manifest, and
 * every hash in it, the enclave's identity, so an image tampered with after conversion must not
 * get a signature.
 *
 * - The image against its protection manifest: everything `verify` checks without keys
 *   (authenticated files' hashes, missing, added or retyped entries, symlinks, metadata), plus the
 *   SHA-256 of every encrypted file's bytes on disk. Decryption and plaintext hidden in lower
 *   layers need the keys: that stays `enclavify verify --keys`.
 * - The Gramine manifest against the image and the protection manifest: every trusted file's
 *   (and the LibOS's) pinned hash is the file's hash in the image and the protection manifest's
 *   record; no allowed entry lets the host replace an authenticated file; every encrypted region
 *   is an encrypted mount with its key name.
 *
 * Without a protection manifest only the second part can be done, against the image alone.
 */
import type { TomlTable } from 'smol-toml';
import type { Image } from '../../oci/image.js';
import type { RootFs } from '../../fs/merged.js';
import type { Draft } from '../../transforms/pipeline.js';
import { parseManifest } from '../../protect/manifest.js';
import { verify } from '../../protect/verify.js';
import { allowedCovers } from './files.js';
import { isUnder, reachableFiles } from './paths.js';
import { EnclavifyError } from '../../oci/errors.js';

/** One reason not to sign. */
export interface SigningFinding {
  /** Absolute path in the image (or the manifest key) the finding is about. */
  path: string;
  /** `verify`'s finding codes, or TRUSTED_HASH_MISMATCH, TRUSTED_NOT_PROTECTED, AUTHENTICATED_ALLOWED, REGION_NOT_MOUNTED, REGION_KEY_MISMATCH. */
  code: string;
  message: string;
  /** Layer index, for findings about a layer entry. */
  layer?: number;
}

/** Result of {@link checkImageForSigning}. */
export interface SigningCheck {
  findings: SigningFinding[];
  /** Things worth saying that do not stop signing (a trusted file missing from the image, no protection manifest). */
  notes: string[];
  /** Whether the image had a protection manifest to check against. */
  protectionChecked: boolean;
}

/** Input of {@link checkImageForSigning}. */
export interface SigningCheckInput {
  /** The draft being signed (its current layers are checked). */
  draft: Draft;
  /** The parsed Gramine manifest that will be signed. */
  manifest: TomlTable;
  /** Where the protection manifest is in the image. */
  protectionPath: string;
  /**
   * The protection manifest's SHA-256 as the conversion reported it (hex). Without it the image is
   * only checked against the protection manifest it carries, which whoever changed the image can
   * have rewritten to match.
   */
  expectedProtectionSha256?: string;
}

/** A file record as the protection manifest stores it (only the fields compared here). */
interface LooseRecord {
  path: string;
  class: string;
  sha256?: string;
  size?: number;
  region?: string;
  diskSha256?: string;
  diskSize?: number;
}

function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}
const table = (v: unknown): TomlTable => (isTable(v) ? v : {});
const rel = (p: string) => p.replace(/^\/+/, '') || '.';

/** The draft's current layers as an Image for `verify` (the source itself when nothing changed). */
async function draftImage(draft: Draft): Promise<Image> {
  const src = await draft.source.layers();
  if (src.length === draft.layers.length && src.every((l, i) => l === draft.layers[i])) return draft.source;
  const missing = (what: string) => async (): Promise<never> => {
    throw new EnclavifyError('INTERNAL', `${what} of a pipeline draft is not available before the pipeline finishes`);
  };
  return {
    name: draft.source.name,
    mediaType: missing('the media type'),
    manifest: missing('the manifest'),
    rawManifest: missing('the manifest'),
    digest: missing('the digest'),
    config: async () => structuredClone(draft.config),
    rawConfig: missing('the raw config'),
    layers: async () => [...draft.layers],
  };
}

/** Protection records by path (the manifest's own and its amendments'), and its regions. */
async function protectionRecords(fs: RootFs, path: string): Promise<{ records: Map<string, LooseRecord>; regions: Array<{ name: string; path: string }> } | undefined> {
  if (fs.get(rel(path))?.type !== 'file') return undefined;
  const bytes = (await fs.readFiles([rel(path)])).get(rel(path))!;
  let m: { files: LooseRecord[]; regions: Array<{ name: string; path: string }>; amendments?: Array<{ files?: LooseRecord[] }> };
  try {
    m = parseManifest(bytes, path) as unknown as typeof m;
  } catch {
    return undefined; // verify reports it (MANIFEST_INVALID)
  }
  const records = new Map<string, LooseRecord>();
  for (const r of [...m.files, ...(m.amendments ?? []).flatMap((a) => a.files ?? [])]) records.set(r.path, r);
  return { records, regions: m.regions };
}

/** The URI's path, or undefined for a non-`file:` URI. */
const filePath = (uri: unknown): string | undefined => (typeof uri === 'string' && uri.startsWith('file:') ? uri.slice(5) : undefined);

/**
 * Checks an image before its Gramine manifest is signed (see the module comment). Reads the
 * protection manifest and, when there is one, runs `verify` without keys over the draft's layers.
 */
export async function checkImageForSigning(input: SigningCheckInput): Promise<SigningCheck> {
  const { draft, manifest, protectionPath, expectedProtectionSha256 } = input;
  const fs = await draft.rootfs();
  const findings: SigningFinding[] = [];
  const notes: string[] = [];
  const add = (f: SigningFinding) => findings.push(f);
  const protection = await protectionRecords(fs, protectionPath);
  const hasManifestFile = fs.get(rel(protectionPath))?.type === 'file';

  // 1. The image against its protection manifest, without keys.
  if (hasManifestFile) {
    const v = await verify(await draftImage(draft), { keys: new Map(), manifestPath: protectionPath, signal: draft.signal, ...(expectedProtectionSha256 ? { expectedManifestSha256: expectedProtectionSha256 } : {}) });
    const reported = new Set<string>();
    for (const f of v.findings) {
      if (f.code.startsWith('KEY_')) continue; // no keys here: encrypted files are compared by their bytes' hash below
      reported.add(f.path);
      add({ path: f.path, code: f.code, message: f.message, ...(f.layer !== undefined ? { layer: f.layer } : {}) });
    }
    for (const r of protection?.records.values() ?? []) {
      if (r.class !== 'encrypted' || reported.has(r.path)) continue;
      const e = fs.get(rel(r.path));
      if (e?.type === 'file' && (e.sha256 !== r.diskSha256 || e.size !== r.diskSize)) {
        add({ path: r.path, code: 'CIPHERTEXT_CHANGED', message: `encrypted file changed: its bytes have SHA-256 ${e.sha256} (${e.size} bytes), the protection manifest records ${r.diskSha256} (${r.diskSize} bytes)` });
      }
    }
  } else if (expectedProtectionSha256) {
    add({ path: protectionPath, code: 'MANIFEST_MISSING', message: `the image has no protection manifest, but SHA-256 ${expectedProtectionSha256} was expected` });
  } else notes.push(`no protection manifest at ${protectionPath}: only the Gramine manifest's hashes were checked against the image`);

  // 2. The Gramine manifest against the image and the protection manifest.
  const sgx = table(manifest.sgx), loader = table(manifest.loader), fsT = table(manifest.fs);
  const records = protection?.records;
  const pinned: Array<{ uri: string; sha256?: string; key: string }> = [];
  for (const t of Array.isArray(sgx.trusted_files) ? sgx.trusted_files : []) {
    if (typeof t === 'string') pinned.push({ uri: t, key: 'sgx.trusted_files' });
    else if (isTable(t) && typeof t.uri === 'string') pinned.push({ uri: t.uri, ...(typeof t.sha256 === 'string' ? { sha256: t.sha256 } : {}), key: 'sgx.trusted_files' });
  }
  const ep = table(loader.entrypoint);
  if (typeof ep.uri === 'string') pinned.push({ uri: ep.uri, ...(typeof ep.sha256 === 'string' ? { sha256: ep.sha256 } : {}), key: 'loader.entrypoint' });
  for (const t of pinned) {
    const p = filePath(t.uri);
    if (p === undefined) continue;
    const e = fs.stat(p);
    if (!e || e.type !== 'file') {
      notes.push(`${t.key} ${t.uri} is not a file in the image: the enclave cannot open it`);
      continue;
    }
    const real = `/${fs.resolve(p)}`;
    const shown = real === p ? p : `${p} (${real})`;
    if (t.sha256 !== undefined && t.sha256 !== e.sha256) {
      add({ path: p, code: 'TRUSTED_HASH_MISMATCH', message: `${t.key} pins SHA-256 ${t.sha256} for ${shown}, the image's file has ${e.sha256}` });
    }
    const rec = records?.get(real);
    const expected = t.sha256 ?? e.sha256;
    if (rec?.class === 'authenticated' && rec.sha256 !== expected) {
      add({ path: p, code: 'TRUSTED_NOT_PROTECTED', message: `${t.key} pins SHA-256 ${expected} for ${shown}, the protection manifest records ${rec.sha256}` });
    }
  }

  // No allowed entry may let the host replace an authenticated (or trusted) file: Gramine checks allowed files first.
  const allowed = (Array.isArray(sgx.allowed_files) ? sgx.allowed_files : []).map(filePath).filter((a): a is string => a !== undefined);
  if (allowed.length) {
    const covering = (p: string) => allowed.find((a) => allowedCovers(a, p));
    const trustedPaths = new Set(pinned.filter((t) => t.key === 'sgx.trusted_files').map((t) => filePath(t.uri)).filter((p): p is string => p !== undefined));
    for (const p of trustedPaths) {
      const hit = covering(p);
      if (hit) add({ path: p, code: 'AUTHENTICATED_ALLOWED', message: `trusted file ${p} is covered by allowed entry file:${hit}, which switches its hash check off` });
    }
    if (records) {
      const mounts = (Array.isArray(fsT.mounts) ? fsT.mounts : []).filter(isTable).map((m) => String(m.path ?? '')).filter((m) => m.startsWith('/'));
      const { paths } = reachableFiles(fs, { skip: ['/proc', '/sys', '/dev', ...mounts] });
      for (const a of paths) {
        if (trustedPaths.has(a.alias) || records.get(`/${a.real}`)?.class !== 'authenticated' || isUnder(a.alias, [protectionPath])) continue;
        const hit = covering(a.alias);
        if (hit) add({ path: a.alias, code: 'AUTHENTICATED_ALLOWED', message: `authenticated file /${a.real}${a.alias === `/${a.real}` ? '' : ` (opened as ${a.alias})`} is covered by allowed entry file:${hit}: the host could replace it` });
      }
    }
  }

  // Every encrypted region of the protection manifest is an encrypted mount with its key.
  const encMounts = (Array.isArray(fsT.mounts) ? fsT.mounts : []).filter(isTable).filter((m) => m.type === 'encrypted');
  for (const r of protection?.regions ?? []) {
    const m = encMounts.find((x) => x.path === r.path);
    if (!m) add({ path: r.path, code: 'REGION_NOT_MOUNTED', message: `encrypted region ${r.path} (key ${r.name}) is not an encrypted mount in the Gramine manifest: the enclave would not decrypt or authenticate its files` });
    else if ((m.key_name ?? 'default') !== r.name) add({ path: r.path, code: 'REGION_KEY_MISMATCH', message: `encrypted mount ${r.path} uses key ${String(m.key_name ?? 'default')}, the protection manifest's region uses key ${r.name}` });
  }
  return { findings, notes, protectionChecked: hasManifestFile };
}

/** Findings as lines, `PATH: CODE: message`, at most `max`. */
export function formatSigningFindings(findings: readonly SigningFinding[], max = 20): string {
  const lines = findings.slice(0, max).map((f) => `  ${f.path}: ${f.code}: ${f.message}`);
  if (findings.length > max) lines.push(`  ... and ${findings.length - max} more`);
  return lines.join('\n');
}
