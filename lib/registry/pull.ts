/**
 * Reading an image from a registry as an `Image`: the manifest (bounded, digest-checked, one
 * platform picked from an index), the config, and layers that stream from the registry when a
 * consumer reads them, verified while they stream and resumed with `Range` when a download is cut.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { mismatchMessage, parseDigest, verifyBytes } from '../oci/digest.js';
import { EnclavifyError, shortDigest } from '../oci/errors.js';
import { lazy, type Image, type Layer } from '../oci/image.js';
import { parseConfig, parseIndex, parseJson, parseManifest } from '../oci/json.js';
import { BlobLayer } from '../oci/layer.js';
import { manifestLayers } from '../oci/manifest-layers.js';
import { isIndexType, isManifestType, MT, type Compression } from '../oci/media-types.js';
import type { Descriptor, Platform } from '../oci/types.js';
import { registryClient, type RegistryClient, type RegistryOptions } from './client.js';
import { describe, registryError, type Subject } from './errors.js';
import { header, isTransientError, RetryBudget, Transient } from './http.js';
import { rememberBlob } from './locations.js';
import { BlobProgress, type ProgressListener } from './progress.js';
import { formatRegistryReference, type RegistryReference } from './reference.js';

/** Every manifest type we read, for `Accept` (without it registries may answer schema 1). */
export const MANIFEST_ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerManifestList].join(', ');
/** Manifests and configs larger than this are refused (the distribution spec's 4 MiB limit). */
export const MAX_MANIFEST = 4 << 20;
const SCHEMA1 = new Set(['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws']);

/** Options of {@link openRegistryImage}. */
export interface RegistryReadOptions {
  registry?: RegistryOptions | undefined;
  /** Platform picked from an index (default linux/amd64: SGX is x86-only). */
  platform?: Platform | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressListener | undefined;
}

/** A manifest as fetched: exact bytes, media type, digest. */
export interface FetchedManifest { bytes: Buffer; mediaType: string; digest: string }

const fmtPlatform = (p?: Platform) => (p ? `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}` : 'unknown');

/**
 * GETs a manifest or index by tag or digest. The body is bounded; its digest is checked against
 * the digest asked for and against `Docker-Content-Digest`; its `mediaType` must agree with the
 * `Content-Type`.
 */
export async function fetchManifest(client: RegistryClient, repository: string, reference: string, opts: { signal?: AbortSignal | undefined } = {}): Promise<FetchedManifest> {
  const subject: Subject = { registry: client.registry, repository, manifest: reference };
  const byDigest = reference.includes(':');
  const { res, bytes } = await client.fetchBytes({
    method: 'GET', url: `/v2/${repository}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT },
    scopes: [`repository:${repository}:pull`], expect: [200], what: 'GET manifest', subject, signal: opts.signal,
  }, MAX_MANIFEST);
  const contentType = (header(res, 'content-type') ?? '').split(';')[0].trim();
  if (SCHEMA1.has(contentType)) throw registryError('REGISTRY_UNSUPPORTED', `${describe(subject)}: the registry holds a Docker schema 1 manifest, which enclavify does not read; push the image again with a current tool (skopeo copy --format v2s2)`);
  const [alg] = byDigest ? parseDigest(reference, describe(subject)) : ['sha256' as const];
  const digest = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
  if (byDigest && digest !== reference) {
    throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: the registry sent a manifest whose digest is ${digest}, not the one asked for`);
  }
  const claimed = header(res, 'docker-content-digest');
  if (claimed && claimed.startsWith(`${alg}:`) && claimed !== digest) {
    throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: Docker-Content-Digest says ${claimed} but the manifest's digest is ${digest}`);
  }
  const body = parseJson(bytes, `${describe(subject)}: manifest`) as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown };
  if (body?.schemaVersion === 1) throw registryError('REGISTRY_UNSUPPORTED', `${describe(subject)}: the registry holds a Docker schema 1 manifest, which enclavify does not read`);
  const bodyType = typeof body?.mediaType === 'string' ? body.mediaType : undefined;
  if (bodyType && isKnown(contentType) && bodyType !== contentType) {
    throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: the manifest says its media type is ${bodyType} but the registry sent it as ${contentType}`);
  }
  const mediaType = bodyType ?? (isKnown(contentType) ? contentType : Array.isArray(body?.manifests) ? MT.ociIndex : MT.ociManifest);
  return { bytes, mediaType, digest };
}

const isKnown = (t: string) => isManifestType(t) || isIndexType(t);

/**
 * Opens an image in a registry. Nothing but the manifest (and, for an index, the chosen
 * platform's manifest) is fetched now; the config when first asked for; layers stream from the
 * registry each time a consumer opens them.
 */
export async function openRegistryImage(ref: RegistryReference, opts: RegistryReadOptions = {}): Promise<Image> {
  const client = await registryClient(ref.registry, ref.repository, opts.registry);
  const name = `docker://${formatRegistryReference(ref)}`;
  const want = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  let m = await fetchManifest(client, ref.repository, ref.digest ?? ref.tag ?? 'latest', { signal: opts.signal });
  for (let depth = 0; isIndexType(m.mediaType); depth++) {
    if (depth > 4) throw new EnclavifyError('BAD_INDEX', `${name}: indexes nested too deeply`);
    const idx = parseIndex(m.bytes, `${name}: index ${shortDigest(m.digest)}`);
    const match = idx.manifests.filter((d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture && (!want.variant || d.platform.variant === want.variant));
    const nested = idx.manifests.filter((d) => !d.platform && isIndexType(d.mediaType));
    const pick: Descriptor | undefined = match.find((d) => isManifestType(d.mediaType)) ?? match[0] ?? nested[0];
    if (!pick) throw new EnclavifyError('NOT_FOUND', `${name}: no manifest for platform ${fmtPlatform(want)} (available: ${idx.manifests.map((d) => fmtPlatform(d.platform)).join(', ')})`);
    const child = await fetchManifest(client, ref.repository, pick.digest, { signal: opts.signal });
    if (child.bytes.length !== pick.size) throw registryError('REGISTRY_BAD_RESPONSE', `${name}: manifest ${shortDigest(pick.digest)} has ${child.bytes.length} bytes, the index says ${pick.size}`);
    m = child;
  }
  if (!isManifestType(m.mediaType)) throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${name}: ${shortDigest(m.digest)} has media type ${m.mediaType}, not an image manifest`);
  const manifest = parseManifest(m.bytes, `${name}: manifest ${shortDigest(m.digest)}`);
  const subject: Subject = { registry: ref.registry, repository: ref.repository };
  for (const d of [manifest.config, ...manifest.layers]) rememberBlob(ref.registry, ref.repository, d.digest);

  const rawConfig = lazy(async () => {
    const d = manifest.config;
    if (d.size > MAX_MANIFEST) throw new EnclavifyError('BLOB_TOO_LARGE', `${name}: config ${shortDigest(d.digest)} is ${d.size} bytes, more than a config may be`);
    const { bytes } = await client.fetchBytes({
      method: 'GET', url: `/v2/${ref.repository}/blobs/${d.digest}`, scopes: [`repository:${ref.repository}:pull`], expect: [200],
      what: 'GET config', subject: { ...subject, blob: d.digest }, signal: opts.signal,
    }, d.size);
    verifyBytes(bytes, d, `${name}: config`);
    return bytes;
  });
  const config = lazy(async () => parseConfig(await rawConfig(), `${name}: config ${shortDigest(manifest.config.digest)}`));
  const layers = lazy(async (): Promise<Layer[]> => manifestLayers(name, manifest, await config(), ({ desc: d, index: i, name: lname, compression, diffId }) => {
    const open = (verify: boolean) => {
      const progress = new BlobProgress(opts.onProgress, 'pull', name, d.digest, d.size, `layer ${i}`, i);
      return new BlobDownload(client, ref.repository, d, progress, opts.signal, verify ? lname : undefined);
    };
    return new RegistryLayer(d.mediaType, compression, lname, open, { digest: d.digest, size: d.size, diffId }, d.annotations);
  }));
  return {
    name,
    mediaType: async () => m.mediaType,
    manifest: async () => manifest,
    rawManifest: async () => m.bytes,
    digest: async () => m.digest,
    config,
    rawConfig,
    layers,
  };
}

/**
 * A layer in a registry: a {@link BlobLayer} whose download checks the blob's size and digest
 * itself as the bytes arrive (one stream fewer per layer than a separate verifying stream).
 */
class RegistryLayer extends BlobLayer {
  constructor(
    mediaType: string,
    compression: Compression,
    name: string,
    private readonly download: (verify: boolean) => Readable,
    desc: { digest: string; size: number; diffId: string },
    annotations?: Record<string, string>,
  ) {
    super(mediaType, compression, name, async () => download(false), desc, annotations);
  }
  override async compressed(): Promise<Readable> {
    return this.download(true);
  }
}

/**
 * A blob's bytes from the registry; with `verify` (a name for messages), checked against the
 * descriptor's size and digest as they arrive, the end of the stream withheld until they match. A download that is
 * cut (a reset, a body shorter than the blob) resumes where it stopped with a `Range` request;
 * a registry that ignores `Range` sends the whole blob again, and the bytes already passed on are
 * skipped. Bounded by the retry policy.
 */
export class BlobDownload extends Readable {
  private offset = 0;
  private body?: Readable | undefined;
  private connecting = false;
  private readonly budget: RetryBudget;
  private readonly subject: Subject;
  private hash?: Hash | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
    private readonly desc: { digest: string; size: number },
    private readonly progress?: BlobProgress,
    private readonly signal?: AbortSignal,
    private readonly verifyAs?: string,
  ) {
    super({ highWaterMark: 1 << 20 });
    if (verifyAs) this.hash = createHash(parseDigest(desc.digest, verifyAs)[0]);
    this.subject = { registry: client.registry, repository, blob: desc.digest };
    this.budget = new RetryBudget(client.retry);
  }

  override _read(): void {
    if (this.body) this.body.resume();
    else if (!this.connecting && !this.destroyed) {
      if (this.offset === 0 && this.budget.count === 0) this.progress?.start();
      void this.connect();
    }
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    try {
      const from = this.offset;
      const res = await this.client.call({
        method: 'GET', url: `/v2/${this.repository}/blobs/${this.desc.digest}`, headers: from > 0 ? { range: `bytes=${from}-` } : {},
        scopes: [`repository:${this.repository}:pull`], expect: [200, 206], what: from > 0 ? `GET blob from byte ${from}` : 'GET blob',
        subject: this.subject, signal: this.signal, onRetry: (why, ms) => this.progress?.retrying(`${why}; retrying in ${(ms / 1000).toFixed(1)} s`),
      });
      if (this.destroyed) {
        res.body.destroy();
        return;
      }
      let skip = 0;
      if (from > 0 && res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
        if (!m || Number(m[1]) !== from) {
          res.body.destroy();
          throw registryError('REGISTRY_BAD_RESPONSE', `${describe(this.subject)}: asked for the bytes from ${from}, got Content-Range ${JSON.stringify(header(res, 'content-range') ?? '')}`);
        }
      } else if (from > 0) skip = from; // Range ignored: the whole blob again
      this.attach(res.body, skip);
    } catch (e) {
      this.destroy(e as Error);
    } finally {
      this.connecting = false;
    }
  }

  private attach(body: Readable, skip: number): void {
    this.body = body;
    body.on('data', (chunk: Buffer) => {
      if (skip > 0) {
        if (chunk.length <= skip) {
          skip -= chunk.length;
          return;
        }
        chunk = chunk.subarray(skip);
        skip = 0;
      }
      this.offset += chunk.length;
      if (this.hash) {
        if (this.offset > this.desc.size) {
          this.destroy(new EnclavifyError('BLOB_SIZE_MISMATCH', `${this.verifyAs}: blob ${shortDigest(this.desc.digest)} is larger than the ${this.desc.size} bytes its descriptor says`));
          return;
        }
        this.hash.update(chunk);
      }
      this.progress?.add(chunk.length);
      if (!this.push(chunk)) body.pause();
    });
    body.on('end', () => {
      if (this.body !== body) return;
      this.body = undefined;
      if (this.offset >= this.desc.size) {
        if (this.hash) {
          const got = `${this.desc.digest.split(':')[0]}:${this.hash.digest('hex')}`;
          if (got !== this.desc.digest) {
            this.destroy(new EnclavifyError('BLOB_DIGEST_MISMATCH', mismatchMessage(this.verifyAs ?? 'blob', this.desc)));
            return;
          }
        }
        this.progress?.finish('done');
        this.push(null);
      } else this.interrupted(`the connection ended after ${this.offset} of ${this.desc.size} bytes`);
    });
    body.on('error', (e: Error) => {
      if (this.body !== body) return;
      this.body = undefined;
      if (this.destroyed) return;
      if (isTransientError(e) || (e as NodeJS.ErrnoException).code === 'UND_ERR_ABORTED' && !this.signal?.aborted) this.interrupted(`connection lost after ${this.offset} of ${this.desc.size} bytes (${e instanceof Transient ? e.why : (e as NodeJS.ErrnoException).code ?? e.message})`);
      else this.destroy(this.signal?.aborted ? new EnclavifyError('ABORTED', `${describe(this.subject)}: download cancelled`) : e);
    });
  }

  private interrupted(why: string): void {
    const delay = this.budget.fail();
    if (delay === undefined) {
      this.destroy(registryError('REGISTRY_RETRIES_EXHAUSTED', `${describe(this.subject)}: GET blob: ${why} (gave up after ${this.budget.count} interrupted downloads in ${this.budget.elapsed} s)`));
      return;
    }
    this.progress?.retrying(`${why}; resuming at byte ${this.offset}`);
    this.connecting = true;
    setTimeout(() => {
      this.connecting = false;
      if (!this.destroyed) void this.connect();
    }, delay);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const b = this.body;
    this.body = undefined;
    b?.destroy();
    cb(err);
  }
}
