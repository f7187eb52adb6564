/**
 * Rewriting layers so that no plaintext of an encrypted region remains in any of them. Every
 * regular-file entry under an encrypted region, in every layer, is either
 * - replaced by a Gramine encrypted file bound to its absolute path, when that entry is what the
 *   merged view shows at its path, or
 * - dropped, when a later entry or layer hides it (a whiteout, an opaque directory, a newer entry
 *   for the same path): it is invisible anyway, and dropping it leaves no ciphertext to manage.
 * Hard-link entries inside a region become regular files holding their own encrypted copy (an
 * encrypted file is bound to one path, so two names cannot share one). Symlink entries inside a
 * region that the merged view shows become regular files too, holding an encrypted copy of their
 * target (an encrypted file; fileClassify refuses other links but those to startup files): Gramine's encrypted
 * mounts cannot hold symlinks. Plaintext of a region file
 * kept elsewhere is removed too: hidden entries outside the regions whose content equals a region
 * file's plaintext (the source of a `RUN mv x /app/data/`) are dropped, with the hidden hard links
 * to them, and whiteout entries that carry bytes under a region (or a region file's plaintext) are
 * emptied (a runtime never extracts those bytes; the whiteout itself keeps working). Visible copies
 * outside the regions are reported (the caller warns): removing them would change the image.
 * Layers without such entries are not touched: the caller keeps their Layer objects, so they stay
 * byte-identical.
 *
 * Everything streams: a layer is read entry by entry, each encrypted file is staged (memory up to
 * 1 MiB, else an encrypted temporary file) only until the tar writer has consumed it.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { CryptoBackend } from '../crypto/backend.js';
import { tmpdir } from 'node:os';
import { ensureFreeSpace } from '../store/space.js';
import { EnclavifyError } from '../oci/errors.js';
import type { Layer } from '../oci/image.js';
import type { FsEntry } from '../fs/entry.js';
import type { MergedEntry, RootFs } from '../fs/merged.js';
import { readTar } from '../fs/tar-read.js';
import type { LayerItem } from '../transforms/pipeline.js';
import { encryptProtectedFile, type ProtectedFile } from './pf/index.js';
import { matchRules, type Rule } from './rules.js';
import type { WrapKey } from './keys.js';
import type { ProgressEvent, ProgressListener } from '../oci/progress.js';
import { abortable } from '../oci/abort.js';

/** What to do with one entry of a layer. */
type Action =
  | { kind: 'encrypt'; path: string; region: string }
  | { kind: 'encrypt-link'; path: string; region: string; merged: MergedEntry }
  | { kind: 'drop'; path: string; why: string }
  /** Keep the (whiteout) entry, without its bytes. */
  | { kind: 'empty'; path: string; why: string };

/** Options of {@link encryptLayers}. */
export interface EncryptLayersOptions {
  /** The merged view of `layers` (its per-layer indexes decide what is visible). */
  rootfs: RootFs;
  /** The layers, base first (`rootfs` was built from them). */
  layers: readonly Layer[];
  /** The effective rules (a classification's `rules`). */
  rules: readonly Rule[];
  /** Wrap keys by region (key) name. */
  keys: ReadonlyMap<string, WrapKey>;
  /** Builds a layer from entries (e.g. `draft.buildLayer`). */
  build(items: AsyncIterable<LayerItem>, name: string): Promise<Layer>;
  /** Where large encrypted files are staged (encrypted temporary files). */
  tmpDir?: string;
  backend?: CryptoBackend;
  /** Reproducible output (see docs/encrypted-files.md). */
  deterministic?: { masterKey: Uint8Array };
  /** Layers rewritten at once (default 2). */
  concurrency?: number;
  /** One `encrypt` event per rewritten layer. */
  onProgress?: ProgressListener | undefined;
  /** Fields every progress event carries (e.g. the transform). */
  progressEvent?: Partial<ProgressEvent>;
  /** Cancels the reads of the layers. */
  signal?: AbortSignal | undefined;
}

/** An encrypted file as written. */
export interface EncryptedFileInfo {
  path: string;
  region: string;
  size: number;
  diskSize: number;
  diskSha256: string;
  /** Index of the layer that holds it. */
  layer: number;
}

/** What {@link encryptLayers} did. */
export interface EncryptLayersResult {
  /** New layers by index: only the layers that held entries under an encrypted region. */
  replaced: Map<number, Layer>;
  /** The encrypted files the merged view shows, by absolute path. */
  encrypted: Map<string, EncryptedFileInfo>;
  /** Hidden entries dropped, or whiteout entries emptied (absolute path, layer, why). */
  dropped: Array<{ layer: number; path: string; why: string }>;
  /** Visible files outside the encrypted regions whose content is an encrypted file's plaintext (kept). */
  copies: Array<{ path: string; of: string }>;
}

const abs = (p: string) => '/' + p;

/** The plaintext SHA-256 of each non-empty visible file under an encrypted region, with its path. */
function regionPlaintexts(fs: RootFs, rules: readonly Rule[]): Map<string, string> {
  const out = new Map<string, string>();
  if (!rules.some((r) => r.class === 'encrypted')) return out;
  for (const e of fs.walk()) {
    if (e.type !== 'file' || e.size === 0 || e.sha256 === undefined) continue;
    const p = abs(e.path);
    if (matchRules(rules, p)?.class === 'encrypted' && !out.has(e.sha256)) out.set(e.sha256, p);
  }
  return out;
}

/**
 * Visible files outside the encrypted regions whose content equals a region file's plaintext:
 * encrypting one copy protects nothing while the other is readable.
 */
export function plaintextCopies(fs: RootFs, rules: readonly Rule[], secrets = regionPlaintexts(fs, rules)): Array<{ path: string; of: string }> {
  const out: Array<{ path: string; of: string }> = [];
  if (secrets.size === 0) return out;
  for (const e of fs.walk()) {
    const of = e.type === 'file' && e.size > 0 && e.sha256 !== undefined ? secrets.get(e.sha256) : undefined;
    if (of && matchRules(rules, abs(e.path))?.class !== 'encrypted') out.push({ path: abs(e.path), of });
  }
  return out;
}

/** The actions for each layer that needs rewriting: layer index -> entry index -> action. */
export function planEncryption(fs: RootFs, rules: readonly Rule[], secrets = regionPlaintexts(fs, rules)): Map<number, Map<number, Action>> {
  const plans = new Map<number, Map<number, Action>>();
  const planOf = (i: number) => {
    let plan = plans.get(i);
    if (!plan) plans.set(i, (plan = new Map()));
    return plan;
  };
  // Without an encrypted region nothing is encrypted, emptied or dropped.
  if (!rules.some((r) => r.class === 'encrypted')) return plans;
  // `${layer}:${index}` of the contents the merged view shows, asked only of hidden copies of a
  // region's plaintext: so only contents with such a hash (not one string per file of the image).
  const visible = new Set<string>();
  if (secrets.size) {
    for (const e of fs.walk()) if (e.type === 'file' && e.content && e.sha256 !== undefined && secrets.has(e.sha256)) visible.add(`${e.content.layer}:${e.content.index}`);
  }
  const droppedPaths = new Set<string>(); // hidden copies dropped so far (hidden hard links to them go too)
  fs.layers.forEach((ix, i) => {
    // The last entry of each path in this layer (an earlier one for the same path is replaced by it).
    const last = new Map<string, number>();
    ix.entries.forEach((e, k) => last.set(e.path, k));
    ix.entries.forEach((e, k) => {
      const p = abs(e.path);
      const m = matchRules(rules, p);
      const inRegion = m?.class === 'encrypted';
      const copyOf = e.size > 0 && e.sha256 !== undefined ? secrets.get(e.sha256) : undefined;
      if (e.whiteout) {
        // Runtimes skip a whiteout's bytes, but they are in the blob: keep the whiteout, drop the bytes.
        if (e.size > 0 && (inRegion || copyOf)) {
          planOf(i).set(k, { kind: 'empty', path: p, why: inRegion ? `whiteout entry carried ${e.size} bytes inside encrypted region ${m!.rule.path}` : `whiteout entry carried the plaintext of encrypted ${copyOf}` });
        }
        return;
      }
      // What the view shows at this path: looked up only where it decides (most entries are outside every region).
      const seenAt = () => fs.get(e.path);
      if (e.type === 'symlink') {
        if (!inRegion) return;
        const seen = seenAt();
        if (seen?.type !== 'symlink' || seen.layer !== i || last.get(e.path) !== k) return; // hidden links hold no data
        const real = fs.resolve(e.path);
        const target = real === undefined ? undefined : fs.get(real);
        if (target?.type !== 'file' || !target.content || matchRules(rules, abs(real!))?.class !== 'encrypted') {
          if (target?.type === 'file' && target.content) return; // a link to a file kept readable (a startup file): kept, fileClassify said so
          throw new EnclavifyError('CLASSIFY_SYMLINK', `${ix.name}: symlink ${p} -> ${e.linkname} in encrypted region ${m.rule.path} does not point to a regular file of the region; run fileClassify right before encryptFS (it explains what to do)`);
        }
        planOf(i).set(k, { kind: 'encrypt-link', path: p, region: m.region!, merged: target });
        return;
      }
      if (e.type !== 'file' && e.type !== 'hardlink') return;
      if (!inRegion) {
        if (e.type === 'file' && copyOf && !visible.has(`${i}:${k}`)) {
          planOf(i).set(k, { kind: 'drop', path: p, why: `hidden copy of the plaintext of encrypted ${copyOf}` });
          droppedPaths.add(e.path);
        } else if (e.type === 'hardlink' && droppedPaths.has(e.linkname!)) {
          const seen = seenAt();
          const shown = seen?.type === 'file' && seen.layer === i && last.get(e.path) === k;
          if (!shown) {
            planOf(i).set(k, { kind: 'drop', path: p, why: `hidden hard link to a dropped copy of the plaintext of encrypted files` });
            droppedPaths.add(e.path);
          }
        }
        return;
      }
      const plan = planOf(i);
      const seen = seenAt();
      if (e.type === 'file') {
        const shown = seen?.type === 'file' && seen.content?.layer === i && seen.content.index === k && seen.content.path === e.path;
        plan.set(k, shown ? { kind: 'encrypt', path: p, region: m.region! } : { kind: 'drop', path: p, why: 'hidden by a later entry or layer' });
      } else {
        const shown = seen?.type === 'file' && seen.layer === i && last.get(e.path) === k && seen.content !== undefined;
        plan.set(k, shown ? { kind: 'encrypt-link', path: p, region: m.region!, merged: seen } : { kind: 'drop', path: p, why: 'hidden hard link' });
      }
    });
  });
  return plans;
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const t = items[next++];
      try {
        await fn(t);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * Encrypts the regions' files in every layer that holds some (see the module comment). Returns
 * the new layers by index; the caller swaps them in. Throws `ENCRYPT_*` / `PF_INPUT` errors naming
 * the layer and the entry.
 */
export async function encryptLayers(opts: EncryptLayersOptions): Promise<EncryptLayersResult> {
  const { rootfs: fs, layers } = opts;
  if (layers.length !== fs.layers.length) throw new EnclavifyError('ENCRYPT_STALE_VIEW', `encryptLayers: the view has ${fs.layers.length} layers, the image ${layers.length}`);
  // The region plaintexts found once for the plan and the copies; the view is walked (never
  // materialized as an array: a million-file image would hold a million entry objects).
  const secrets = regionPlaintexts(fs, opts.rules);
  const plans = planEncryption(fs, opts.rules, secrets);
  const result: EncryptLayersResult = { replaced: new Map(), encrypted: new Map(), dropped: [], copies: plaintextCopies(fs, opts.rules, secrets) };
  const keyOf = (region: string) => {
    const k = opts.keys.get(region);
    if (!k) throw new EnclavifyError('ENCRYPT_NO_KEY', `no key for encrypted region ${region}`);
    return k.key;
  };
  const seal = (path: string, region: string, size: number, plaintext: AsyncIterable<Uint8Array>) =>
    encryptProtectedFile({
      wrapKey: keyOf(region),
      path,
      size,
      plaintext,
      ...(opts.backend ? { backend: opts.backend } : {}),
      ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
      ...(opts.deterministic ? { deterministic: opts.deterministic } : {}),
    });

  // Hard links inside regions need the linked content sealed for their own path: stage those
  // first, reading each source layer once per round (one target path per content per round).
  const staged = new Map<string, ProtectedFile>(); // `${layer}:${index}` of the link entry -> sealed copy
  // Fail early, with the numbers, when the temporary directory cannot hold what is about to be
  // staged: the rewritten layers (encrypted content does not compress) and the largest encrypted
  // file's staging copy. Checked once for the whole plan: layers are built concurrently.
  let total = 0;
  let largest = 0;
  for (const [i, plan] of plans) {
    const ix = fs.layers[i];
    for (const [k, a] of plan) {
      if (a.kind !== 'encrypt' && a.kind !== 'encrypt-link') continue;
      const size = ix.entries[k]?.size || (a.kind === 'encrypt-link' ? a.merged.size ?? 0 : 0);
      total += size + Math.ceil(size / 96) + 8192; // + MHT nodes and the metadata node
      largest = Math.max(largest, size);
    }
  }
  if (total > 64 << 20) await ensureFreeSpace(opts.tmpDir ?? tmpdir(), total + largest, `encryptFS: staging ${plans.size} rewritten layer(s) with encrypted files`, 'temporary directory');
  try {
    await stageLinks(opts, plans, staged, seal);
    const order = [...plans.keys()].sort((a, b) => a - b);
    await mapLimit(order, opts.concurrency ?? 2, async (i) => {
      const plan = plans.get(i)!;
      const layer = layers[i];
      const counts = { encrypted: 0, dropped: 0 };
      // Read through the view's source: a layer staged by the scan is not decompressed again.
      const items = rewrite(layer, () => fs.sources[i].open(), i, plan, staged, seal, result, counts, opts.signal);
      const built = await opts.build(items, `${layer.name} (encrypted regions)`);
      result.replaced.set(i, built);
      opts.onProgress?.({ phase: 'encrypt', ...opts.progressEvent, layer: i, message: `encryptFS: ${layer.name}: ${counts.encrypted} file(s) encrypted, ${counts.dropped} hidden entr${counts.dropped === 1 ? 'y' : 'ies'} dropped` });
    });
  } finally {
    await Promise.all([...staged.values()].map((f) => f.dispose()));
  }
  return result;
}

type Seal = (path: string, region: string, size: number, plaintext: AsyncIterable<Uint8Array>) => Promise<ProtectedFile>;

/** Seals the content of visible in-region hard links for their own paths. */
async function stageLinks(opts: EncryptLayersOptions, plans: Map<number, Map<number, Action>>, staged: Map<string, ProtectedFile>, seal: Seal): Promise<void> {
  const fs = opts.rootfs;
  // Pending work: content ref -> link entries that need it.
  const todo: Array<{ key: string; action: Extract<Action, { kind: 'encrypt-link' }> }> = [];
  for (const [i, plan] of plans) for (const [k, a] of plan) if (a.kind === 'encrypt-link') todo.push({ key: `${i}:${k}`, action: a });
  while (todo.length) {
    // One round: at most one link per content, grouped by the layer holding the content.
    const round = new Map<number, Map<number, (typeof todo)[number]>>();
    for (let t = 0; t < todo.length; ) {
      const c = todo[t].action.merged.content!;
      let byIndex = round.get(c.layer);
      if (!byIndex) round.set(c.layer, (byIndex = new Map()));
      if (byIndex.has(c.index)) {
        t++;
        continue;
      }
      byIndex.set(c.index, todo[t]);
      todo.splice(t, 1);
    }
    // Through the view: a staged layer is read by byte range, contents checked against the scan.
    const byContent = new Map<string, (typeof todo)[number]>();
    for (const [layerIndex, wanted] of round) for (const [index, w] of wanted) byContent.set(`${layerIndex}:${index}`, w);
    await fs.streamFiles([...byContent.values()].map((w) => w.action.merged.path), async (f, content) => {
      const c = f.entry.content!;
      const w = byContent.get(`${c.layer}:${c.index}`);
      if (!w) throw new EnclavifyError('ENCRYPT_INTERNAL', `${fs.sources[c.layer].name}: ${JSON.stringify(c.path)} was not asked for`);
      const a = w.action;
      staged.set(w.key, await seal(a.path, a.region, f.entry.size, abortable(content, opts.signal)));
    });
  }
}

/**
 * The encrypted bytes, hashed on the way out; `done` receives the SHA-256 once all was read.
 * Chunks are copied: the tar writer passes them on zero-copy, and the staging area they view is
 * wiped by `dispose` as soon as the writer moves to the next entry, possibly before the
 * compressor downstream has read them.
 */
async function* hashed(stream: Readable, done: (sha256: string) => void): AsyncGenerator<Uint8Array> {
  const h = createHash('sha256');
  for await (const chunk of stream) {
    const copy = Buffer.from(chunk as Buffer);
    h.update(copy);
    yield copy;
  }
  done(h.digest('hex'));
}

/** The rewritten entries of layer `i`. */
async function* rewrite(
  layer: Layer,
  open: () => Promise<Readable>,
  i: number,
  plan: Map<number, Action>,
  staged: Map<string, ProtectedFile>,
  seal: Seal,
  result: EncryptLayersResult,
  counts: { encrypted: number; dropped: number },
  signal: AbortSignal | undefined,
): AsyncGenerator<LayerItem> {
  let k = 0;
  for await (const { entry, content } of readTar(abortable(await open(), signal), { source: layer.name })) {
    const a = plan.get(k++);
    if (!a) {
      yield content ? { entry, content } : { entry };
      continue;
    }
    if (a.kind === 'drop') {
      result.dropped.push({ layer: i, path: a.path, why: a.why });
      counts.dropped++;
      continue; // unread content is skipped by the reader
    }
    if (a.kind === 'empty') {
      result.dropped.push({ layer: i, path: a.path, why: a.why });
      counts.dropped++;
      yield { entry: { ...entry, size: 0 }, content: new Uint8Array(0) };
      continue;
    }
    let pf: ProtectedFile;
    let out: FsEntry;
    if (a.kind === 'encrypt') {
      if (!content) throw new EnclavifyError('ENCRYPT_INTERNAL', `${layer.name}: entry ${JSON.stringify(entry.path)} has no content`);
      pf = await seal(a.path, a.region, entry.size, content);
      out = { ...entry, size: pf.size };
    } else {
      const s = staged.get(`${i}:${k - 1}`);
      if (!s) throw new EnclavifyError('ENCRYPT_INTERNAL', `${layer.name}: no sealed copy for hard link ${JSON.stringify(entry.path)}`);
      staged.delete(`${i}:${k - 1}`);
      pf = s;
      // The link's name gets the inode's metadata (as the merged view and umoci show it); a
      // symlink's copy gets its target's (what reading through the link showed).
      const m = a.merged;
      out = { path: entry.path, type: 'file', mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, size: pf.size };
      if (m.uname !== undefined) out.uname = m.uname;
      if (m.gname !== undefined) out.gname = m.gname;
      if (m.pax !== undefined) out.pax = m.pax;
    }
    try {
      let sha = '';
      yield { entry: out, content: hashed(pf.stream(), (h) => (sha = h)) };
      // The tar writer asks for the next entry only after consuming this one's content.
      if (!sha) throw new EnclavifyError('ENCRYPT_INTERNAL', `${layer.name}: ${a.path} was not fully written`);
      result.encrypted.set(a.path, { path: a.path, region: a.region, size: pf.plainSize, diskSize: pf.size, diskSha256: sha, layer: i });
      counts.encrypted++;
    } finally {
      await pf.dispose();
    }
  }
}
