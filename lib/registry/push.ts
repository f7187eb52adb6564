/**
 * Writing an image to a registry: every blob first (HEAD and skip what exists, mount what another
 * repository of the same registry holds, upload the rest in parallel), the manifest last with its
 * exact bytes, so the tag moves only once everything it names is stored.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { verifyBytes } from '../oci/digest.js';
import { EnclavifyError, shortDigest } from '../oci/errors.js';
import type { Image } from '../oci/image.js';
import { BlobLayer } from '../oci/layer.js';
import { registryClient, type RegistryClient, type RegistryOptions } from './client.js';
import { describe, registryCodesOf, registryError, type Subject } from './errors.js';
import { exhausted, header, isTransientError, RetryBudget, sleep, Transient, type HttpResponse } from './http.js';
import { blobSources, rememberBlob } from './locations.js';
import { BlobProgress, type ProgressListener } from './progress.js';
import { formatRegistryReference, type RegistryReference } from './reference.js';

/** Options of {@link pushImage}. */
export interface PushOptions {
  registry?: RegistryOptions | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressListener | undefined;
}

/** What happened to one blob of a push. */
export interface PushedBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** `pushed`: uploaded; `mounted`: linked from another repository; `skipped`: already there. */
  status: 'pushed' | 'mounted' | 'skipped';
  /** The repository a mounted blob came from. */
  from?: string | undefined;
}

/** What a push wrote: the manifest (as `writeImage` reports it) and every blob. */
export interface PushResult {
  digest: string;
  size: number;
  mediaType: string;
  reference: string;
  blobs: PushedBlob[];
}

interface BlobJob {
  /** 0-based layer index (none for the config). */
  layer?: number | undefined;
  digest: string;
  size: number;
  mediaType: string;
  what: string;
  open: () => Promise<Readable>;
  /** Called once its bytes start going up (or it needs no upload). */
  onSending?: (() => void) | undefined;
}

/**
 * Pushes an image to `ref`. Layers stream from wherever the image holds them (a layout, a
 * pipeline's new layer, another registry: nothing is staged on disk) into the registry.
 */
export async function pushImage(image: Image, ref: RegistryReference, opts: PushOptions = {}): Promise<PushResult> {
  const name = `docker://${formatRegistryReference(ref)}`;
  const client = await registryClient(ref.registry, ref.repository, opts.registry);
  // The `/v2/` ping (connection, scheme, auth challenge) while the image's metadata is read.
  client.ping(opts.signal).catch(() => undefined);
  const manifest = await image.manifest();
  const raw = Buffer.from(await image.rawManifest());
  const mediaType = await image.mediaType();
  const digest = await image.digest();
  verifyBytes(raw, { digest }, `${image.name}: manifest`);
  if (ref.digest && ref.digest !== digest) {
    throw new EnclavifyError('BAD_REFERENCE', `${name}: the destination names digest ${ref.digest}, but the image's manifest is ${digest}`);
  }
  const rawConfig = Buffer.from(await image.rawConfig());
  verifyBytes(rawConfig, manifest.config, `${image.name}: config`);
  const layers = await image.layers();
  const jobs: BlobJob[] = [
    { digest: manifest.config.digest, size: manifest.config.size, mediaType: manifest.config.mediaType, what: 'config', open: async () => Readable.from([rawConfig]) },
  ];
  for (const [i, l] of layers.entries()) {
    const d = manifest.layers[i];
    // A stored blob goes up as it is, not hashed on the way: the registry verifies each upload
    // against the digest it is pushed as (PUT ?digest=) and refuses a mismatch.
    const open = l instanceof BlobLayer ? () => l.stored() : () => l.compressed();
    jobs.push({ layer: i, digest: d.digest, size: d.size, mediaType: d.mediaType, what: `layer ${i}`, open });
  }
  // One blob per digest (an image may list the same layer twice); the largest first, so that the
  // upload that takes longest starts at once and the small ones go up beside it.
  const unique = [...new Map(jobs.map((j) => [j.digest, j])).values()].sort((a, b) => b.size - a.size);

  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  const pusher = new BlobPusher(client, ref.repository, name, opts, signal);
  const results = new Map<string, PushedBlob>();
  let next = 0;
  let firstError: unknown;
  // The other blobs' HEADs and POSTs wait until the largest blob's bytes are on their way: on a
  // busy registry they would otherwise delay the start of the upload that decides the time.
  let leadSending = () => {};
  const lead = unique[0] && unique[0].size > (opts.registry?.monolithicMax ?? 1 << 20) ? new Promise<void>((r) => (leadSending = r)) : Promise.resolve();
  if (unique[0]) unique[0].onSending = () => leadSending();
  const worker = async (w: number) => {
    if (w > 0) await lead;
    while (next < unique.length && firstError === undefined) {
      const j = unique[next++];
      try {
        results.set(j.digest, await pusher.push(j));
      } catch (e) {
        if (firstError === undefined) {
          firstError = e;
          abort.abort(e);
        }
      } finally {
        j.onSending?.();
      }
    }
  };
  const n = Math.max(1, Math.min(opts.registry?.concurrency ?? 4, unique.length));
  await Promise.all(Array.from({ length: n }, (_, w) => worker(w)));
  if (firstError !== undefined) {
    if (opts.signal?.aborted) throw new EnclavifyError('ABORTED', `${name}: push cancelled; the tag was not moved`);
    throw firstError;
  }

  // Last: the manifest, exact bytes. Only now does the tag name the new image.
  const target = ref.digest && !ref.tag ? ref.digest : ref.tag ?? 'latest';
  const subject: Subject = { registry: ref.registry, repository: ref.repository, manifest: target };
  const res = await client.call({
    method: 'PUT', url: `/v2/${ref.repository}/manifests/${target}`, headers: { 'content-type': mediaType }, body: raw,
    scopes: [pushScope(ref.repository)], expect: [200, 201, 202], what: 'PUT manifest', subject, signal,
  });
  await res.body.dump().catch(() => undefined);
  const claimed = header(res, 'docker-content-digest');
  if (claimed && claimed.startsWith(digest.split(':')[0] + ':') && claimed !== digest) {
    throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: the registry stored the manifest as ${claimed}, not ${digest}`);
  }
  opts.onProgress?.({ phase: 'push', message: `${name}: manifest ${shortDigest(digest)} stored`, image: name });
  return { digest, size: raw.length, mediaType, reference: name, blobs: jobs.map((j) => results.get(j.digest)!) };
}

/**
 * Starts what a push to `ref` will need before its image is ready (while a source is opened or
 * checked): the push modules, the credential lookup and the `/v2/` ping on a kept-alive
 * connection. Never fails; a failure shows again when the push itself runs. `signal` ends a ping
 * still retrying (the caller aborts it when it is done, pushed or not).
 */
export function preparePush(ref: RegistryReference, registry: RegistryOptions | undefined, signal: AbortSignal): void {
  registryClient(ref.registry, ref.repository, registry).then((c) => c.ping(signal)).catch(() => undefined);
}

const pushScope = (repo: string) => `repository:${repo}:pull,push`;

/** Appends `digest=` to an upload URL without rebuilding it (its query may carry state the registry signed). */
function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** `0-N` or `bytes=0-N`: the number of bytes the registry holds (`0-0` on an empty session, as distribution says). */
function rangeEnd(res: HttpResponse): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec((header(res, 'range') ?? '').trim());
  if (!m) return undefined;
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}

/**
 * Counts the bytes a body carries, skipping the first `skip` (a resumed upload re-reads its
 * source), and calls `onFirst` once its first chunk has been handed on.
 */
class Meter extends Transform {
  constructor(private skip: number, private readonly onBytes: (n: number) => void, private onFirst?: (() => void) | undefined) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.skip > 0) {
      if (chunk.length <= this.skip) {
        this.skip -= chunk.length;
        return cb();
      }
      chunk = chunk.subarray(this.skip);
      this.skip = 0;
    }
    this.onBytes(chunk.length);
    cb(null, chunk);
    const first = this.onFirst;
    if (first) {
      this.onFirst = undefined;
      first();
    }
  }
}

/** Reads a source stream in pieces of a given length (one per PATCH of a chunked upload). */
class Slicer {
  private it: AsyncIterator<Buffer>;
  private rest?: Buffer | undefined;
  constructor(private readonly source: Readable) {
    this.it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      let c = this.rest;
      this.rest = undefined;
      if (!c) {
        const r = await this.it.next();
        if (r.done) return;
        c = r.value;
      }
      if (c.length > left) {
        this.rest = c.subarray(left);
        c = c.subarray(0, left);
      }
      left -= c.length;
      yield c;
    }
  }
  destroy(): void {
    this.source.destroy();
  }
}

/** Pushes single blobs into one repository, resuming uploads after failures. */
class BlobPusher {
  private readonly chunkSize: number;
  private readonly monolithicMax: number;
  constructor(
    private readonly client: RegistryClient,
    private readonly repository: string,
    private readonly image: string,
    private readonly opts: PushOptions,
    private readonly signal: AbortSignal,
  ) {
    this.chunkSize = opts.registry?.chunkSize ?? 0;
    this.monolithicMax = opts.registry?.monolithicMax ?? 1 << 20;
  }

  private subject(digest: string): Subject {
    return { registry: this.client.registry, repository: this.repository, blob: digest };
  }

  async push(j: BlobJob): Promise<PushedBlob> {
    const subject = this.subject(j.digest);
    const progress = new BlobProgress(this.opts.onProgress, 'push', this.image, j.digest, j.size, j.what, j.layer);
    const onRetry = (why: string, ms: number) => progress.retrying(`${why}; retrying in ${(ms / 1000).toFixed(1)} s`);
    const base = { scopes: [pushScope(this.repository)], subject, signal: this.signal, onRetry };
    const head = await this.client.call({ ...base, method: 'HEAD', url: `/v2/${this.repository}/blobs/${j.digest}`, expect: [200, 404], what: 'HEAD blob' });
    await head.body.dump().catch(() => undefined);
    const done = (status: PushedBlob['status'], from?: string): PushedBlob => {
      rememberBlob(this.client.registry, this.repository, j.digest);
      progress.finish(status === 'pushed' ? 'done' : status, from);
      return { digest: j.digest, size: j.size, mediaType: j.mediaType, status, ...(from ? { from } : {}) };
    };
    if (head.status === 200) return done('skipped');
    // Cross-repository mount: 201 = linked, nothing to upload; 202 = the registry declined and
    // opened an ordinary upload session instead, which we then use.
    let location: string | undefined;
    for (const from of blobSources(this.client.registry, j.digest, this.repository).slice(0, 3)) {
      let res: HttpResponse;
      try {
        res = await this.client.call({
          ...base, scopes: [pushScope(this.repository), `repository:${from}:pull`], method: 'POST',
          url: `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(j.digest)}&from=${encodeURIComponent(from)}`,
          expect: [201, 202], what: `mount blob from ${from}`,
        });
      } catch (e) {
        // A source these credentials may not read (or that is gone) is refused rather than
        // answered with 202: a remembered location is only a guess, so try the next, then upload.
        if (e instanceof EnclavifyError && (e.code === 'REGISTRY_UNAUTHORIZED' || e.code === 'REGISTRY_DENIED' || e.code === 'REGISTRY_NOT_FOUND')) continue;
        throw e;
      }
      await res.body.dump().catch(() => undefined);
      if (res.status === 201) return done('mounted', from);
      location = this.location(res, subject);
      break;
    }
    progress.start();
    await this.upload(j, location, progress, subject);
    return done('pushed');
  }

  private location(res: HttpResponse, subject: Subject): string {
    const loc = header(res, 'location');
    if (!loc) throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: the upload response (HTTP ${res.status}) has no Location`);
    return new URL(loc, res.url).toString();
  }

  private async startSession(subject: Subject, onRetry: (why: string, ms: number) => void): Promise<string> {
    const res = await this.client.call({
      method: 'POST', url: `/v2/${this.repository}/blobs/uploads/`, headers: { 'content-length': '0' }, scopes: [pushScope(this.repository)],
      expect: [202], what: 'start upload', subject, signal: this.signal, onRetry,
    });
    await res.body.dump().catch(() => undefined);
    return this.location(res, subject);
  }

  /** Where an interrupted upload stands: the registry's offset and the URL to go on with, or undefined (start again). */
  private async status(location: string, subject: Subject): Promise<{ offset: number; location: string } | undefined> {
    try {
      const res = await this.client.call({
        method: 'GET', url: location, scopes: [pushScope(this.repository)], expect: [204, 200, 400, 404, 416], what: 'upload status', subject, signal: this.signal, retry: false,
      });
      await res.body.dump().catch(() => undefined);
      if (res.status !== 204 && res.status !== 200) return undefined;
      const offset = rangeEnd(res);
      if (offset === undefined) return undefined;
      return { offset, location: header(res, 'location') ? this.location(res, subject) : location };
    } catch (e) {
      if (e instanceof Transient) return undefined;
      throw e;
    }
  }

  /**
   * Uploads one blob: a monolithic PUT for small blobs; otherwise PATCHes (the whole rest of the
   * blob in one, or `chunkSize` bytes each) with `Content-Range`, following each returned
   * `Location` and `Range`, then a PUT with the digest. After a failure the registry is asked for
   * its offset and the upload goes on from there, or starts again in a new session.
   */
  private async upload(j: BlobJob, initial: string | undefined, progress: BlobProgress, subject: Subject): Promise<void> {
    const budget = new RetryBudget(this.client.retry);
    const onRetry = (why: string, ms: number) => progress.retrying(`${why}; retrying in ${(ms / 1000).toFixed(1)} s`);
    let location = initial ?? (await this.startSession(subject, onRetry));
    let offset = 0;
    let resumed = false;
    for (;;) {
      let source: Readable | undefined;
      try {
        source = await j.open();
        // The other blobs' requests wait for this one's first bytes (see pushImage), so that
        // their HEADs and POSTs do not delay the start of the upload that decides the time.
        const meter = new Meter(offset, (n) => progress.add(n), j.onSending);
        source.on('error', (e) => meter.destroy(e));
        source.pipe(meter);
        const body = meter;
        progress.add(0, offset);
        if (offset === 0 && j.size <= this.monolithicMax) {
          await this.put(location, j, body, j.size, subject);
          return;
        }
        const slicer = this.chunkSize > 0 ? new Slicer(body) : undefined;
        try {
          while (offset < j.size) {
            const len = this.chunkSize > 0 ? Math.min(this.chunkSize, j.size - offset) : j.size - offset;
            const res = await this.client.call({
              method: 'PATCH', url: location, scopes: [pushScope(this.repository)], expect: [202, 201, 204],
              headers: { 'content-type': 'application/octet-stream', 'content-length': String(len), 'content-range': `${offset}-${offset + len - 1}` },
              body: slicer ? Readable.from(slicer.take(len), { objectMode: false }) : body, what: `upload bytes ${offset}-${offset + len - 1}`, subject, signal: this.signal, retry: false,
            });
            await res.body.dump().catch(() => undefined);
            if (header(res, 'location')) location = this.location(res, subject);
            const held = rangeEnd(res);
            const expected = offset + len;
            if (held !== undefined && held !== expected) {
              // The registry holds less than was sent: go on from its offset with a fresh read.
              offset = held;
              throw new Transient(`the registry holds ${held} bytes, ${expected} were sent`);
            }
            offset = expected;
          }
        } finally {
          slicer?.destroy();
        }
        await this.put(location, j, null, 0, subject);
        return;
      } catch (e) {
        source?.destroy();
        if (this.signal.aborted) throw e instanceof EnclavifyError && e.code === 'ABORTED' ? e : new EnclavifyError('ABORTED', `${describe(subject)}: upload cancelled`);
        const codes = registryCodesOf(e);
        if (codes.includes('DIGEST_INVALID') || codes.includes('SIZE_INVALID')) {
          // After a resume the registry may hold a byte twice (distribution reports 0-0 for an
          // empty session): start once more from nothing. Otherwise the source is corrupt.
          if (resumed) {
            resumed = false;
            offset = 0;
            progress.retrying('the registry refused the resumed upload; starting it again');
            location = await this.startSession(subject, onRetry);
            continue;
          }
          throw new EnclavifyError('BLOB_DIGEST_MISMATCH', `${(e as Error).message}: the bytes of ${j.what} do not match its digest ${j.digest} (a corrupt source blob); nothing was tagged`);
        }
        const transient = e instanceof Transient ? e : isTransientError(e) ? new Transient(`connection lost (${(e as NodeJS.ErrnoException).code})`) : undefined;
        // A 400/404/416 after a resume means the session is gone or out of step: start over once more.
        const stale = !transient && offset > 0 && e instanceof EnclavifyError && /REGISTRY_(HTTP|NOT_FOUND)/.test(e.code);
        if (!transient && !stale) throw e;
        const t = transient ?? new Transient((e as Error).message);
        const delay = budget.fail(t.retryAfterMs);
        if (delay === undefined) throw exhausted(t, budget, `${describe(subject)}: upload`);
        const st = stale ? undefined : await this.status(location, subject);
        if (st && st.offset <= j.size) {
          offset = st.offset;
          location = st.location;
          resumed = resumed || offset > 0;
          progress.retrying(`${t.why}; resuming at byte ${offset}`);
        } else {
          offset = 0;
          progress.retrying(`${t.why}; starting the upload again`);
          await sleep(delay, this.signal, `${describe(subject)}: upload`);
          location = await this.startSession(subject, onRetry);
          continue;
        }
        await sleep(delay, this.signal, `${describe(subject)}: upload`);
      }
    }
  }

  /** Closes the upload session with the blob's digest (and, for a monolithic upload, its bytes). */
  private async put(location: string, j: BlobJob, body: Readable | null, length: number, subject: Subject): Promise<void> {
    const res = await this.client.call({
      method: 'PUT', url: withDigest(location, j.digest), scopes: [pushScope(this.repository)], expect: [201, 204],
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(length) }, body,
      what: length ? 'upload blob' : 'finish upload', subject, signal: this.signal, retry: false,
    });
    await res.body.dump().catch(() => undefined);
    const claimed = header(res, 'docker-content-digest');
    if (claimed && claimed.startsWith(j.digest.split(':')[0] + ':') && claimed !== j.digest) {
      throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: the registry stored the blob as ${claimed}`);
    }
  }
}
