/**
 * The distribution-spec client for one registry and one set of credentials: the `/v2/` ping,
 * authorized requests with retries, and the endpoints pull and push use.
 */
import { createHash } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';
import { Authorizer } from './auth.js';
import { lookupCredentials, type Credentials, type CredentialLookupOptions } from './credentials.js';
import { describe, registryError, type Subject } from './errors.js';
import { header, readBody, retrying, Transport, Transient, unexpected, type HttpResponse, type RetryPolicy, type SendRequest, type TransportOptions } from './http.js';
import { registryModule } from './loaded.js';

registryModule.loaded = true;

/**
 * How to reach and authenticate to a registry (skopeo's per-image flags). One object per side
 * of a copy: `--src-*` options go into the source's, `--dest-*` into the destination's.
 */
export interface RegistryOptions extends TransportOptions {
  /**
   * Credentials (`--creds USER:PASS`). `null`: anonymous, no lookup (`--no-creds`). Undefined:
   * looked up in the auth files and credential helpers for each registry host.
   */
  credentials?: Credentials | null | undefined;
  /** An auth file consulted first (`--authfile`). */
  authFile?: string | undefined;
  /** Environment and home directory for the credential lookup (default: the process's). */
  env?: NodeJS.ProcessEnv | undefined;
  home?: string | undefined;
  /** Blobs transferred at once by a push (default 4). */
  concurrency?: number | undefined;
  /**
   * Bytes per PATCH of a chunked upload (default: the whole blob in one PATCH, resumed from the
   * registry's offset after a failure). Blobs up to `monolithicMax` are sent with one PUT.
   */
  chunkSize?: number | undefined;
  /** Largest blob sent as one monolithic PUT (default 1 MiB). */
  monolithicMax?: number | undefined;
}

/** A request as the client takes it: scopes to authorize and statuses that count as success. */
export interface CallRequest extends Omit<SendRequest, 'authorization' | 'body'> {
  /** Token scopes the request needs, e.g. `repository:app:pull`. */
  scopes: string[];
  /** Statuses the caller handles (others become registry errors). */
  expect: number[];
  /** The body, or a function making it afresh for each try. */
  body?: (SendRequest['body'] | (() => SendRequest['body'])) | undefined;
  /** For messages: `GET manifest` etc. */
  what: string;
  subject: Subject;
  /** Retry transient failures here (default true; false when the body is a stream that cannot be replayed). */
  retry?: boolean | undefined;
  onRetry?: ((why: string, delayMs: number) => void) | undefined;
}

interface PingState { challenge: boolean }

/** A client for one registry host with one set of credentials. Cheap to share. */
export class RegistryClient {
  readonly transport: Transport;
  readonly auth: Authorizer;
  private pingP?: Promise<PingState> | undefined;

  constructor(readonly registry: string, readonly credentials: Credentials | undefined, readonly options: RegistryOptions = {}) {
    this.transport = new Transport(registry, options);
    this.auth = new Authorizer(this.transport, credentials, options.retry);
  }

  get retry(): RetryPolicy | undefined {
    return this.options.retry;
  }

  /** `GET /v2/`: picks the scheme, learns the auth challenge, and tells a registry from a web server. */
  ping(signal?: AbortSignal): Promise<PingState> {
    const p = (this.pingP ??= this.doPing(signal));
    p.catch(() => {
      if (this.pingP === p) this.pingP = undefined;
    });
    return p;
  }

  private async doPing(signal?: AbortSignal): Promise<PingState> {
    try {
      return await this.pingOnce(signal);
    } catch (e) {
      // A TLS server that wants a client certificate just closes the connection after the handshake.
      if (e instanceof EnclavifyError && e.code === 'REGISTRY_RETRIES_EXHAUSTED' && this.transport.scheme !== 'http' && /connection failed/.test(e.message)) {
        e.message += '; if the registry requires a client certificate, put a *.cert/*.key pair in the cert dir (--cert-dir)';
      }
      throw e;
    }
  }

  private async pingOnce(signal?: AbortSignal): Promise<PingState> {
    const subject = { registry: this.registry };
    return retrying({ what: 'GET /v2/', subject, policy: this.retry, signal }, async () => {
      const res = await this.transport.probe((base, tlsProbe) => this.transport.send({ method: 'GET', url: new URL('/v2/', base), signal, tlsProbe }, subject));
      const apiHeader = header(res, 'docker-distribution-api-version');
      if (res.status === 200) {
        const type = header(res, 'content-type') ?? '';
        const body = await readBody(res, 64 << 10, subject, 'GET /v2/').catch(() => Buffer.alloc(0));
        if (!apiHeader && /html/i.test(type)) throw notOci(subject, res, 'a web page');
        void body;
        return { challenge: false };
      }
      if (res.status === 401) {
        await res.body.dump().catch(() => undefined);
        if (!this.auth.learn(res)) throw registryError('REGISTRY_NOT_OCI', `${describe(subject)}: GET /v2/ answered 401 without a WWW-Authenticate challenge; this does not look like an OCI registry`);
        return { challenge: true };
      }
      const err = await unexpected(res, subject, 'GET /v2/', this.auth.secrets);
      if (err instanceof Transient) throw err;
      if (res.status === 404 || !apiHeader) throw notOci(subject, res, `HTTP ${res.status}`);
      throw err;
    });
  }

  /** An authorized request, retried on transient failures, re-authorized once after a 401. */
  async call(req: CallRequest): Promise<HttpResponse> {
    await this.ping(req.signal);
    const once = async (): Promise<HttpResponse> => {
      let scopes = req.scopes;
      for (let authTry = 0; ; authTry++) {
        const authorization = await this.auth.authorization(scopes, req.subject, req.signal);
        const body = typeof req.body === 'function' ? req.body() : req.body;
        const res = await this.transport.send({ ...req, authorization, body }, req.subject);
        if (res.status === 401 && authTry === 0) {
          const next = this.auth.onUnauthorized(res, scopes, authorization);
          if (next) {
            await res.body.dump().catch(() => undefined);
            scopes = next;
            if (typeof req.body !== 'function' && req.body && typeof (req.body as { pipe?: unknown }).pipe === 'function') {
              // A stream body was consumed: the caller must start again.
              throw new Transient('the registry asked for authorization again');
            }
            continue;
          }
        }
        if (req.expect.includes(res.status)) return res;
        throw await unexpected(res, req.subject, req.what, this.auth.secrets);
      }
    };
    if (req.retry === false) return once();
    return retrying({ what: req.what, subject: req.subject, policy: this.retry, signal: req.signal, onRetry: req.onRetry }, once);
  }

  /**
   * An authorized request whose (small) body is read whole, at most `limit` bytes; a connection
   * lost while reading is retried like one lost before the headers.
   */
  async fetchBytes(req: CallRequest, limit: number): Promise<{ res: HttpResponse; bytes: Buffer }> {
    return retrying({ what: req.what, subject: req.subject, policy: this.retry, signal: req.signal, onRetry: req.onRetry }, async () => {
      const res = await this.call({ ...req, retry: false });
      return { res, bytes: await readBody(res, limit, req.subject, req.what) };
    });
  }

  /** Closes this client's connections. */
  close(): Promise<void> {
    return this.transport.close();
  }
}

function notOci(subject: Subject, res: HttpResponse, what: string): EnclavifyError {
  return registryError('REGISTRY_NOT_OCI', `${describe(subject)}: ${res.url.origin} is not an OCI distribution registry (GET /v2/ gave ${what}); check the host and port`);
}

const clients = new Map<string, RegistryClient>();

/**
 * The shared client for a registry and these options, with credentials resolved: the given ones,
 * none (`credentials: null`), or those the auth files hold for the registry and repository.
 */
export async function registryClient(registry: string, repository: string | undefined, options: RegistryOptions = {}): Promise<RegistryClient> {
  let creds: Credentials | undefined;
  if (options.credentials === null) creds = undefined;
  else if (options.credentials) creds = options.credentials;
  else {
    const lookup: CredentialLookupOptions = { authFile: options.authFile, env: options.env, home: options.home };
    creds = (await lookupCredentials(registry, repository, lookup))?.credentials;
  }
  // Keyed by a hash of the credentials: never the secret itself.
  const credKey = creds ? createHash('sha256').update(JSON.stringify(creds)).digest('hex') : '-';
  const key = JSON.stringify([registry, options.tlsVerify !== false, options.certDir ?? '', options.certRoots ?? [], options.timeoutMs ?? 0, options.retry ?? {}, credKey]);
  let c = clients.get(key);
  if (!c) {
    c = new RegistryClient(registry, creds, options);
    clients.set(key, c);
  }
  return c;
}

/** Closes every registry connection this process opened (tests, and the CLI before it exits). */
export async function closeRegistryClients(): Promise<void> {
  const all = [...clients.values()];
  clients.clear();
  await Promise.all(all.map((c) => c.close()));
}
