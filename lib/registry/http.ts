/**
 * HTTP to one registry host: Node's `http`/`https` agents with that host's TLS settings, TLS
 * first and plain HTTP only where allowed, redirects that never carry `Authorization` to another host, and
 * retries with exponential backoff and jitter, bounded in count and in time.
 */
import { createRequire } from 'node:module';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { Agent as NodeAgent, ClientRequest, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { EnclavifyError } from '../oci/errors.js';
import { extraCaCerts, extraCaCertsDeferred, loadTlsMaterial } from './certs.js';
import { describe, registryError, statusError, type Subject } from './errors.js';
import { isLoopback } from './reference.js';

/** How persistent the client is with a failing registry. */
export interface RetryPolicy {
  /** Tries of one request, the first included (default 6). */
  attempts?: number | undefined;
  /** Stop retrying once this many milliseconds have passed since the first try (default 120000). */
  maxElapsedMs?: number | undefined;
  /** First backoff delay in ms (default 200); doubled on each retry, with full jitter. */
  baseDelayMs?: number | undefined;
  /** Longest backoff delay in ms (default 10000); a longer `Retry-After` is still honoured within maxElapsedMs. */
  maxDelayMs?: number | undefined;
}

/** TLS and retry settings of the connection to a registry. */
export interface TransportOptions {
  /** Verify the registry's TLS certificate (default true). false also allows plain HTTP to any host. */
  tlsVerify?: boolean | undefined;
  /** A containers-certs.d style directory (`*.crt` CAs, `*.cert`/`*.key` client pairs) used instead of the defaults. */
  certDir?: string | undefined;
  /** Roots of the default cert directories (default `~/.config/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`). */
  certRoots?: string[] | undefined;
  retry?: RetryPolicy | undefined;
  /** Milliseconds to wait for response headers, and between body bytes (default 300000). */
  timeoutMs?: number | undefined;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_REQ_RETRY', 'ERR_STREAM_PREMATURE_CLOSE']);
const NOT_TLS_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_UNKNOWN_PROTOCOL']);
const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED', 'INVALID_CA', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

/** Alerts a server sends when it wants (another) client certificate. */
const CLIENT_CERT_ALERTS = new Set(['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE']);

const USER_AGENT = (() => {
  try {
    return `enclavify/${(createRequire(import.meta.url)('../../package.json') as { version: string }).version}`;
  } catch {
    return 'enclavify';
  }
})();

/** A response body: a byte stream that can also be discarded (`dump`, to free the connection). */
export type ResponseBody = Readable & { dump(): Promise<void> };

/** A response whose status the caller looks at; its body must be read or dumped. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
  /** The URL that answered (after redirects). */
  url: URL;
}

/** One header value (the first, when repeated). */
export function header(res: { headers: HttpResponse['headers'] }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * A failure worth another try: a retryable status, or a dropped connection. Caught by the retry
 * loops; should one ever escape, it is a coded error with the registry's own message.
 */
export class Transient extends EnclavifyError {
  constructor(
    readonly why: string,
    /** The server's `Retry-After`, in ms. */
    readonly retryAfterMs?: number,
    /** The final error if no more tries are allowed (e.g. the registry's 503 message). */
    readonly final?: EnclavifyError,
  ) {
    super(final ? final.code : 'REGISTRY_CONNECT', final ? final.message : why);
  }
}

/** Whether an error from the HTTP client or a stream is a dropped or timed-out connection (worth a retry). */
export function isTransientError(e: unknown): boolean {
  if (e instanceof Transient) return true;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && TRANSIENT_CODES.has(code)) return true;
  const cause = (e as { cause?: unknown })?.cause;
  return !!cause && cause !== e && isTransientError(cause);
}

/** Parses `Retry-After` (seconds or an HTTP date) into ms. */
export function retryAfterMs(v: string | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

function abortError(signal: AbortSignal, what: string): EnclavifyError {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new EnclavifyError('ABORTED', `${what}: cancelled${reason}`);
}

function sleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal, what));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!, what));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What {@link retrying} needs to know. */
export interface RetryContext {
  what: string;
  subject: Subject;
  policy?: RetryPolicy | undefined;
  signal?: AbortSignal | undefined;
  /** Called before each retry (progress: "retrying in 1.2 s: HTTP 503"). */
  onRetry?: ((why: string, delayMs: number, attempt: number) => void) | undefined;
}

/**
 * The retry budget of one operation: how many tries are left and how long to wait before the
 * next (exponential backoff with full jitter, or the server's `Retry-After`).
 */
export class RetryBudget {
  private readonly started = Date.now();
  private tries = 0;
  constructor(private readonly policy: RetryPolicy = {}) {}

  /** Tries so far. */
  get count(): number {
    return this.tries;
  }

  /** Seconds since the first try, for messages. */
  get elapsed(): string {
    return ((Date.now() - this.started) / 1000).toFixed(1);
  }

  /**
   * Records a failed try. Returns the delay before the next one, or undefined when the budget is
   * spent (`attempts` tries, or the next try would start after `maxElapsedMs`).
   */
  fail(retryAfter?: number): number | undefined {
    this.tries++;
    const p = this.policy;
    const delay = retryAfter ?? Math.random() * Math.min(p.maxDelayMs ?? 10_000, (p.baseDelayMs ?? 200) * 2 ** (this.tries - 1));
    if (this.tries >= Math.max(1, p.attempts ?? 6) || Date.now() - this.started + delay > (p.maxElapsedMs ?? 120_000)) return undefined;
    return delay;
  }
}

/**
 * Runs `attempt` until it succeeds or throws something other than {@link Transient}; waits
 * between tries as {@link RetryBudget} says. Gives up with REGISTRY_RETRIES_EXHAUSTED.
 */
export async function retrying<T>(ctx: RetryContext, attempt: (n: number) => Promise<T>): Promise<T> {
  const budget = new RetryBudget(ctx.policy);
  for (;;) {
    if (ctx.signal?.aborted) throw abortError(ctx.signal, `${describe(ctx.subject)}: ${ctx.what}`);
    try {
      return await attempt(budget.count + 1);
    } catch (e) {
      if (!(e instanceof Transient)) {
        if (ctx.signal?.aborted && !(e instanceof EnclavifyError && e.code === 'ABORTED')) throw abortError(ctx.signal, `${describe(ctx.subject)}: ${ctx.what}`);
        throw e;
      }
      const delay = budget.fail(e.retryAfterMs);
      if (delay === undefined) throw exhausted(e, budget, `${describe(ctx.subject)}: ${ctx.what}`);
      ctx.onRetry?.(e.why, delay, budget.count);
      await sleep(delay, ctx.signal, `${describe(ctx.subject)}: ${ctx.what}`);
    }
  }
}

/** The error once retries are spent: the last failure (the registry's own words when it sent some). */
export function exhausted(e: Transient, budget: RetryBudget, where: string): EnclavifyError {
  const last = e.final ? e.final.message : `${where}: ${e.why}`;
  return registryError('REGISTRY_RETRIES_EXHAUSTED', `${last} (gave up after ${budget.count} ${budget.count === 1 ? 'try' : 'tries'} in ${budget.elapsed} s)`, e);
}

/** Waits `ms`, or rejects with ABORTED when the signal fires. */
export { sleep };

/** A request as {@link Transport.send} takes it. */
export interface SendRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute URL, or a path resolved against the registry's base URL. */
  url: string | URL;
  headers?: Record<string, string> | undefined;
  /** Sent only to `authOrigin` (default: the registry's own origin), never to another host, not even after a redirect. */
  authorization?: string | undefined;
  /** The origin the authorization is for (a token endpoint's); default the registry's. */
  authOrigin?: string | undefined;
  body?: Buffer | string | Readable | null | undefined;
  signal?: AbortSignal | undefined;
  /** Follow redirects (GET and HEAD only; default true). */
  followRedirects?: boolean | undefined;
  /** The first TLS attempt of {@link Transport.probe} where plain HTTP is allowed: see there. */
  tlsProbe?: boolean | undefined;
}

/**
 * The connection to one registry host: its dispatcher (TLS options from the cert dirs), the
 * scheme it speaks (https, or http where that is allowed and the server speaks no TLS).
 */
export class Transport {
  private agentsP: { 'http:'?: Promise<NodeAgent>; 'https:'?: Promise<NodeAgent>; probe?: Promise<NodeAgent> } = {};
  private tlsP?: Promise<Record<string, unknown>> | undefined;
  private schemeValue?: 'https' | 'http' | undefined;
  readonly tlsVerify: boolean;

  constructor(readonly registry: string, readonly options: TransportOptions = {}) {
    this.tlsVerify = options.tlsVerify !== false;
  }

  /** Whether plain HTTP may be used with this host. */
  get plainHttpAllowed(): boolean {
    return isLoopback(this.registry) || !this.tlsVerify;
  }

  get scheme(): 'https' | 'http' | undefined {
    return this.schemeValue;
  }

  /** `https://HOST` (or `http://HOST`) once the scheme is known. */
  get base(): string {
    return `${this.schemeValue ?? 'https'}://${this.registry}`;
  }

  /**
   * The TLS options of this host (CAs, client certificate, verification) from its cert dirs, with
   * one secure context for every connection (given as options, each connection would parse the
   * CAs again: ~100 ms for the system's roots and a bundle of the same size).
   */
  private tlsOptions(): Promise<Record<string, unknown>> {
    return (this.tlsP ??= (async () => {
      const tls = await loadTlsMaterial(this.registry, this.options.certDir, this.options.certRoots);
      const connect: Record<string, unknown> = { rejectUnauthorized: this.tlsVerify };
      // Nothing verified, no CAs needed. Otherwise an explicit `ca` replaces Node's default store,
      // so the bundled roots and NODE_EXTRA_CA_CERTS go in with the cert dirs' CAs; the variable's
      // file is read only then, or when the launcher kept it from Node's store.
      const extra = this.tlsVerify && (tls.ca.length || extraCaCertsDeferred()) ? await extraCaCerts() : undefined;
      const ca = !this.tlsVerify ? [] : tls.ca.length || extra ? [...rootCertificates, ...(extra ? [extra] : []), ...tls.ca] : undefined;
      if (ca || tls.cert.length) {
        try {
          connect.secureContext = createSecureContext({ ...(ca ? { ca } : {}), ...(tls.cert.length ? { cert: tls.cert, key: tls.key } : {}) });
        } catch (e) {
          // OpenSSL's reason only: never the PEM text (it may hold a key).
          throw registryError('REGISTRY_TLS', `registry ${this.registry}: the TLS material of ${tls.dirs.join(', ') || 'NODE_EXTRA_CA_CERTS'} cannot be used (${(e as Error).message})`, e);
        }
      }
      return connect;
    })());
  }

  /**
   * Node's own `http`/`https` agents (keep-alive), for every request: nothing to load (undici's
   * modules took ~80 ms to compile, on the critical path of every push), body chunks straight
   * from the socket (no copy out of a WASM parser: a 100 MB download was ~15% faster), and an
   * upload's chunks handed to the socket as the source yields them. `probe` is the agent of the
   * probe's first TLS attempt (see {@link probe}): a context that trusts no CA.
   */
  private agent(protocol: string, probe: boolean): Promise<NodeAgent> {
    if (protocol === 'http:') return (this.agentsP['http:'] ??= import('node:http').then((m) => new m.Agent({ keepAlive: true })));
    if (probe) return (this.agentsP.probe ??= import('node:https').then((m) => new m.Agent({ keepAlive: true, rejectUnauthorized: true, secureContext: createSecureContext({ ca: [] }) })));
    return (this.agentsP['https:'] ??= Promise.all([this.tlsOptions(), import('node:https')]).then(([connect, m]) => new m.Agent({ keepAlive: true, ...connect })));
  }

  /**
   * One request through Node's http client; resolves once the response headers are in. A stream
   * body is piped with backpressure; its error, or the signal, destroys the request. A response
   * that arrives before the body was all sent (an error status) closes the connection once read,
   * so that no half-sent request is left on a kept-alive socket.
   */
  private async nodeRequest(url: URL, method: string, headers: Record<string, string>, body: SendRequest['body'], signal: AbortSignal | undefined, tlsProbe: boolean): Promise<{ statusCode: number; headers: HttpResponse['headers']; body: ResponseBody }> {
    const agent = await this.agent(url.protocol, tlsProbe);
    const mod = url.protocol === 'http:' ? await import('node:http') : await import('node:https');
    const timeout = this.options.timeoutMs ?? 300_000;
    return new Promise((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = mod.request(url, { method, headers, agent, ...(signal ? { signal } : {}) });
      } catch (e) {
        reject(e);
        return;
      }
      // No bytes for `timeout` ms, before the headers or within the body: a dropped connection.
      req.setTimeout(timeout, () => req.destroy(new Transient(`no data for ${timeout} ms`)));
      req.on('error', reject);
      const stream = body && typeof body !== 'string' && !Buffer.isBuffer(body) ? body : undefined;
      const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
      let sent = 0;
      req.on('response', (res: IncomingMessage) => {
        // The registry answered before it had the whole body (an error status): the rest will
        // not be sent, so this connection cannot carry another request once the answer is read.
        // (It often answers a complete body before the source has signalled its end: not early.)
        if (stream && (declared === undefined ? !req.writableEnded : sent < declared)) {
          stream.off('data', count);
          stream.unpipe(req);
          res.once('end', () => req.destroy());
        }
        const b = res as IncomingMessage & ResponseBody;
        b.dump = () => new Promise<void>((done) => {
          if (res.readableEnded || res.destroyed) return done();
          res.on('end', () => done());
          res.on('close', () => done());
          res.on('error', () => done());
          res.resume();
        });
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: b });
      });
      if (!stream) {
        req.end(body ?? undefined);
        return;
      }
      const count = (c: Buffer) => {
        sent += c.length;
      };
      // Counting must not keep the source flowing once the request is gone (pipe pauses it).
      const stop = () => {
        stream.off('data', count);
        stream.unpipe(req);
      };
      stream.once('error', (e) => req.destroy(e));
      stream.on('data', count);
      req.once('close', stop);
      stream.pipe(req);
    });
  }

  /**
   * Chooses the scheme by a first request: https; plain http only when the server answers TLS
   * with something that is not TLS and this host may use plain HTTP. A certificate that does not
   * verify is an error, never a reason to fall back. Where plain HTTP is allowed (loopback, or
   * TLS verification off) the plain request goes out beside the TLS one, so that a plain
   * registry costs no second round trip; its answer is used only once the TLS attempt has failed
   * for want of TLS (it carries no credentials: `send` is given the scheme's base URL).
   */
  async probe(send: (base: string, tlsProbe?: boolean) => Promise<HttpResponse>): Promise<HttpResponse> {
    if (this.schemeValue) return send(this.base);
    this.schemeValue = 'https';
    const plain = this.plainHttpAllowed ? send(`http://${this.registry}`) : undefined;
    plain?.catch(() => undefined);
    const dropPlain = () => plain?.then((r) => r.body.dump(), () => undefined).catch(() => undefined);
    // Where plain HTTP may be the answer, the first TLS attempt trusts no CA: its only use is to
    // learn whether the server speaks TLS, and building the real context (Node's roots, a cert
    // dir's or NODE_EXTRA_CA_CERTS' CAs: 30-100 ms of CPU) would hold up the plain answer. A
    // server that speaks TLS fails that attempt's verification, and the request is sent again
    // through the real context: nothing is ever accepted unverified.
    const tlsProbe = this.plainHttpAllowed && this.tlsVerify;
    try {
      const res = await send(this.base, tlsProbe);
      if (!tlsProbe) {
        // TLS it is: the plain answer (if any) is read and dropped.
        dropPlain();
        return res;
      }
      // Not possible with a context that trusts no CA; were it ever, an answer not verified is not used.
      await res.body.dump().catch(() => undefined);
    } catch (e) {
      const code = tlsCode(e);
      if (code && NOT_TLS_CODES.has(code)) {
        if (!plain) {
          throw registryError('REGISTRY_TLS', `registry ${this.registry}: the server speaks no TLS; plain HTTP is used only for a loopback host or with --tls-verify=false`, e);
        }
        this.schemeValue = 'http';
        return plain;
      }
      if (!tlsProbe) {
        this.schemeValue = undefined;
        throw e;
      }
    }
    // The server speaks TLS (or could not be reached): the request again, through the real context.
    try {
      const res = await send(this.base);
      dropPlain();
      return res;
    } catch (e) {
      this.schemeValue = undefined;
      throw e;
    }
  }

  /** One request (no retries), following redirects for GET and HEAD. Errors are mapped to registry errors. */
  async send(req: SendRequest, subject: Subject): Promise<HttpResponse> {
    let url = typeof req.url === 'string' ? new URL(req.url, this.base) : req.url;
    const origin = req.authOrigin ?? new URL(this.base).origin;
    const follow = req.followRedirects !== false && (req.method === 'GET' || req.method === 'HEAD');
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
      // The credential goes to the registry's own origin only: a redirect to a CDN or an object
      // store never sees it (distribution-spec: MUST NOT forward Authorization across hosts).
      if (req.authorization && url.origin === origin) headers.authorization = req.authorization;
      let res: { statusCode: number; headers: HttpResponse['headers']; body: ResponseBody };
      try {
        res = await this.nodeRequest(url, req.method, headers, req.body, req.signal, req.tlsProbe === true);
      } catch (e) {
        throw this.mapError(e, req, subject, url);
      }
      const status = res.statusCode;
      const location = res.headers.location;
      if (follow && [301, 302, 303, 307, 308].includes(status) && typeof location === 'string') {
        await res.body.dump().catch(() => undefined);
        if (hop >= 5) throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: ${req.method} ${url.pathname}: more than 5 redirects`);
        const next = new URL(location, url);
        if (next.protocol !== 'https:' && !(next.protocol === 'http:' && (isLoopback(next.host) || !this.tlsVerify))) {
          throw registryError('REGISTRY_TLS', `${describe(subject)}: ${req.method} ${url.pathname} redirects to ${next.protocol}//${next.host}, which is not HTTPS`);
        }
        url = next;
        continue;
      }
      return { status, headers: res.headers, body: res.body, url };
    }
  }

  private mapError(e: unknown, req: SendRequest, subject: Subject, url: URL): Error {
    if (req.signal?.aborted) return abortError(req.signal, `${describe(subject)}: ${req.method} ${url.pathname}`);
    if (e instanceof EnclavifyError) return e;
    const code = tlsCode(e);
    const where = `${describe(subject)}: ${req.method} ${url.origin}${url.pathname}`;
    if (code && CLIENT_CERT_ALERTS.has(code)) {
      return registryError('REGISTRY_TLS', `${where}: the server refused the TLS handshake (${code}); if the registry requires a client certificate, put a *.cert/*.key pair in the cert dir (--cert-dir)`, e);
    }
    if (code && CERT_CODES.has(code)) {
      const hint = this.tlsVerify ? '; give the CA with --cert-dir DIR (a *.crt file), or --tls-verify=false for a test registry' : '';
      return registryError('REGISTRY_TLS', `${where}: the TLS certificate does not verify (${code})${hint}`, e);
    }
    // probe() finds the code in the cause and decides whether plain HTTP may be used.
    if (code && NOT_TLS_CODES.has(code)) return registryError('REGISTRY_TLS', `${where}: the server does not speak TLS (${code})`, e);
    if (isTransientError(e)) return new Transient(`connection failed (${code ?? (e as Error).message})`);
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
      return registryError('REGISTRY_CONNECT', `${where}: cannot connect (${code})`, e);
    }
    return registryError('REGISTRY_CONNECT', `${where}: ${(e as Error).message}`, e);
  }

  /** Closes the connections of this transport. */
  async close(): Promise<void> {
    const agents = Object.values(this.agentsP);
    this.agentsP = {};
    for (const a of await Promise.allSettled(agents)) if (a.status === 'fulfilled') a.value.destroy();
  }
}

function tlsCode(e: unknown): string | undefined {
  for (let x = e as { code?: string; cause?: unknown; message?: unknown } | undefined, i = 0; x && i < 4; x = x.cause as typeof x, i++) {
    if (typeof x.code === 'string' && (NOT_TLS_CODES.has(x.code) || CERT_CODES.has(x.code))) return x.code;
    // Node's https reports an OpenSSL failure during its first write as `write EPROTO ...:SSL
    // routines:FUNC:wrong version number:...`; the reason gives the code OpenSSL's error reports.
    const m = x.code === 'EPROTO' && typeof x.message === 'string' ? /SSL routines:[^:]*:([a-z0-9 ]+):/i.exec(x.message) : null;
    if (m) return `ERR_SSL_${m[1].trim().toUpperCase().replace(/ /g, '_')}`;
  }
  return (e as { code?: string })?.code;
}

/** Reads a body up to `limit` bytes; more is an error naming `what`. */
export async function readBody(res: HttpResponse, limit: number, subject: Subject, what: string): Promise<Buffer> {
  const len = Number(header(res, 'content-length'));
  if (Number.isFinite(len) && len > limit) {
    res.body.destroy();
    throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: ${what} is ${len} bytes, more than the ${limit} allowed`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of res.body) {
      size += (c as Buffer).length;
      if (size > limit) {
        res.body.destroy();
        throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: ${what} is more than the ${limit} bytes allowed`);
      }
      chunks.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof EnclavifyError) throw e;
    if (isTransientError(e)) throw new Transient(`connection lost while reading ${what}`);
    throw e;
  }
  return Buffer.concat(chunks);
}

/** Reads a (small) error body as text, for messages; never fails. */
export async function errorBody(res: HttpResponse): Promise<string> {
  try {
    return (await readBody(res, 64 << 10, { registry: '' }, 'error body')).toString('utf8');
  } catch {
    return '';
  }
}

/**
 * Turns a response whose status is retryable into a {@link Transient} (the registry's own error
 * as the final message), or any unexpected status into its registry error.
 */
export async function unexpected(res: HttpResponse, subject: Subject, what: string, secrets: Iterable<string> = []): Promise<Error> {
  const body = res.status === 0 || res.body.readableEnded ? '' : await errorBody(res);
  const err = statusError(res.status, body, subject, what, secrets);
  if (RETRY_STATUS.has(res.status)) {
    return new Transient(`HTTP ${res.status}`, retryAfterMs(header(res, 'retry-after')), err);
  }
  return err;
}
