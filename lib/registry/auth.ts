/**
 * Registry authentication: `WWW-Authenticate` challenges, Basic credentials, and distribution's
 * Bearer token flow (realm, service, scopes; tokens reused until they expire; a wider scope
 * requested when an operation needs more, e.g. push after pull, or a mount's source repository).
 */
import { describe, redact, registryError, type Subject } from './errors.js';
import type { Credentials } from './credentials.js';
import { secretsOf } from './credentials.js';
import { header, readBody, retrying, Transport, Transient, unexpected, type HttpResponse, type RetryPolicy } from './http.js';
import { isLoopback } from './reference.js';

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Lower-case scheme: `basic`, `bearer`. */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` value (RFC 7235): one or more challenges, each a scheme followed by
 * `name=token` or `name="quoted \"string\""` parameters separated by commas.
 */
export function parseWwwAuthenticate(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = value.length;
  const skipWs = () => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  const token = () => {
    const s = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(value[i])) i++;
    return value.slice(s, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (value[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const t = token();
    if (!t) {
      i++;
      continue;
    }
    skipWs();
    if (value[i] === '=' && current) {
      i++;
      skipWs();
      let v = '';
      if (value[i] === '"') {
        i++;
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++;
          v += value[i++];
        }
        i++;
      } else {
        const s = i;
        while (i < n && value[i] !== ',' && value[i] !== ' ') i++;
        v = value.slice(s, i);
      }
      current.params[t.toLowerCase()] = v;
    } else {
      // A token not followed by '=' starts a new challenge (token68 values are skipped).
      if (i === start) i++;
      current = { scheme: t.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** `repository:NAME:pull` style scope strings, merged per resource: `repository:a:pull` + `repository:a:push` = `repository:a:pull,push`. */
export function mergeScopes(scopes: string[]): string[] {
  const by = new Map<string, Set<string>>();
  for (const s of scopes) {
    const i = s.lastIndexOf(':');
    if (i < 0) continue;
    const res = s.slice(0, i);
    const set = by.get(res) ?? new Set<string>();
    for (const a of s.slice(i + 1).split(',')) if (a) set.add(a);
    by.set(res, set);
  }
  return [...by].map(([res, acts]) => `${res}:${[...acts].sort().join(',')}`).sort();
}

/** Whether the granted scopes cover every needed one. */
function covers(granted: string[], needed: string[]): boolean {
  const g = new Map(mergeScopes(granted).map((s) => {
    const i = s.lastIndexOf(':');
    return [s.slice(0, i), new Set(s.slice(i + 1).split(','))] as const;
  }));
  return mergeScopes(needed).every((s) => {
    const i = s.lastIndexOf(':');
    const have = g.get(s.slice(0, i));
    return !!have && s.slice(i + 1).split(',').every((a) => have.has(a) || have.has('*'));
  });
}

interface CachedToken { scopes: string[]; token: string; expiresAt: number }

/**
 * Authorizes requests to one registry with one set of credentials. The challenge comes from the
 * registry's `/v2/` ping (or a later 401); tokens are cached per scope set until shortly before
 * they expire.
 */
export class Authorizer {
  private challenge?: Challenge | undefined;
  private tokens: CachedToken[] = [];
  private pending = new Map<string, Promise<CachedToken>>();
  private realmTransports = new Map<string, Transport>();
  readonly secrets: string[];

  constructor(
    private readonly transport: Transport,
    private readonly credentials: Credentials | undefined,
    private readonly retry?: RetryPolicy,
  ) {
    this.secrets = secretsOf(credentials);
  }

  /** Learns the scheme (and, for Bearer, the realm and service) from a response's `WWW-Authenticate`. */
  learn(res: { headers: HttpResponse['headers'] }): Challenge | undefined {
    const h = header(res, 'www-authenticate');
    if (!h) return undefined;
    const cs = parseWwwAuthenticate(h);
    const c = cs.find((x) => x.scheme === 'bearer') ?? cs.find((x) => x.scheme === 'basic');
    if (c) this.challenge = c;
    return c;
  }

  /** Whether requests need an Authorization header at all. */
  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  /** The Authorization header for an operation needing `scopes`, or undefined (anonymous). */
  async authorization(scopes: string[], subject: Subject, signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      if (!this.credentials) return undefined;
      if (!('username' in this.credentials)) throw registryError('REGISTRY_UNAUTHORIZED', `${describe(subject)}: the registry wants a user name and password (Basic), but the credentials found are an identity token`);
      return `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    }
    if (c.scheme === 'bearer') return `Bearer ${(await this.token(scopes, subject, signal)).token}`;
    throw registryError('REGISTRY_UNAUTHORIZED', `${describe(subject)}: the registry wants ${c.scheme} authentication, which enclavify does not speak (Basic, Bearer)`);
  }

  /**
   * After a 401: learns the new challenge and drops the token that did not suffice. Returns the
   * scopes to retry with (widened by the scope the registry names, e.g. push after pull), or
   * undefined when another try cannot succeed.
   */
  onUnauthorized(res: HttpResponse, scopes: string[], sent: string | undefined): string[] | undefined {
    const c = this.learn(res);
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.credentials && !sent?.startsWith('Basic ') ? scopes : undefined;
    if (c.scheme !== 'bearer') return undefined;
    const wanted = c.params.scope ? c.params.scope.split(' ').filter(Boolean) : [];
    const next = mergeScopes([...scopes, ...wanted]);
    if (!sent?.startsWith('Bearer ')) return next;
    const failed = this.tokens.find((t) => `Bearer ${t.token}` === sent);
    this.tokens = this.tokens.filter((t) => t !== failed);
    // A token for a narrower scope than the registry now names is worth replacing; an expired one too.
    if (failed && !covers(failed.scopes, next)) return next;
    return c.params.error === 'invalid_token' ? next : undefined;
  }

  private async token(scopes: string[], subject: Subject, signal?: AbortSignal): Promise<CachedToken> {
    const now = Date.now();
    this.tokens = this.tokens.filter((t) => t.expiresAt > now);
    const hit = this.tokens.find((t) => covers(t.scopes, scopes));
    if (hit) return hit;
    const key = mergeScopes(scopes).join(' ');
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(mergeScopes(scopes), subject, signal).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private realmTransport(realm: URL): Transport {
    let t = this.realmTransports.get(realm.host);
    if (!t) {
      t = realm.host === this.transport.registry ? this.transport : new Transport(realm.host, this.transport.options);
      this.realmTransports.set(realm.host, t);
    }
    return t;
  }

  private async fetchToken(scopes: string[], subject: Subject, signal?: AbortSignal): Promise<CachedToken> {
    const c = this.challenge!;
    const realmText = c.params.realm;
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch {
      throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: the Bearer challenge has no valid realm (${JSON.stringify(realmText ?? '')})`);
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && (isLoopback(realm.host) || !this.transport.tlsVerify))) {
      throw registryError('REGISTRY_TLS', `${describe(subject)}: the token endpoint ${realm.origin} is not HTTPS; credentials are sent there only over TLS (or to a loopback host, or with --tls-verify=false)`);
    }
    const t = this.realmTransport(realm);
    const what = `token for ${scopes.join(' ') || 'the registry'} from ${realm.origin}${realm.pathname}`;
    const creds = this.credentials;
    const started = Date.now();
    const res = await retrying({ what, subject, policy: this.retry, signal }, async () => {
      let r: HttpResponse;
      if (creds && 'identityToken' in creds) {
        // OAuth2 refresh-token grant (distribution's oauth.md), as docker does with an identity token.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'enclavify', ...(c.params.service ? { service: c.params.service } : {}), scope: scopes.join(' ') });
        r = await t.send({ method: 'POST', url: realm, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(), signal, authOrigin: realm.origin }, subject);
      } else {
        const u = new URL(realm);
        if (c.params.service) u.searchParams.set('service', c.params.service);
        for (const s of scopes) u.searchParams.append('scope', s);
        const authorization = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
        r = await t.send({ method: 'GET', url: u, signal, authorization, authOrigin: realm.origin }, subject);
      }
      if (r.status === 200) return r;
      if (r.status === 401 || r.status === 403) {
        await r.body.dump().catch(() => undefined);
        const who = creds && 'username' in creds ? `the credentials of user ${creds.username}` : creds ? 'the identity token' : 'anonymous access';
        throw registryError('REGISTRY_UNAUTHORIZED', `${describe(subject)}: the token endpoint ${realm.origin}${realm.pathname} refused ${who} (HTTP ${r.status}) for ${scopes.join(' ') || 'the registry'}; check --creds or the auth file`);
      }
      throw await unexpected(r, subject, what, this.secrets);
    });
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse((await readBody(res, 1 << 20, subject, what)).toString('utf8')) as typeof body;
    } catch (e) {
      if (e instanceof Transient) throw registryError('REGISTRY_CONNECT', `${describe(subject)}: ${what}: ${e.why}`);
      if ((e as { code?: string }).code) throw e;
      throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: ${what}: the answer is not JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw registryError('REGISTRY_BAD_RESPONSE', `${describe(subject)}: ${what}: the answer holds no token`);
    this.secrets.push(token);
    // distribution's token spec: expires_in defaults to 60 s. Renew a little early.
    const life = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : 60_000;
    const cached = { scopes, token, expiresAt: started + life - Math.min(30_000, life / 10) };
    this.tokens.push(cached);
    return cached;
  }

  /** Removes secrets (passwords, tokens) from text that came from a server. */
  redact(text: string): string {
    return redact(text, this.secrets);
  }
}
