/**
 * Registry errors: the codes of the registry transport, and messages made from a registry's
 * answer that name the registry, the repository and the blob, never a credential.
 */
import { EnclavifyError, shortDigest, type ErrorCode } from '../oci/errors.js';

/** The registry's codes: the `REGISTRY_*` lines of ERROR_CODES (lib/oci/errors.ts). */
export type RegistryErrorCode = Extract<ErrorCode, `REGISTRY_${string}`>;

/** An EnclavifyError with a registry code. */
export function registryError(code: RegistryErrorCode, message: string, cause?: unknown): EnclavifyError {
  return new EnclavifyError(code, message, cause === undefined ? undefined : { cause });
}

/** What a request was about, for messages: `registry 127.0.0.1:5000, repository app, blob sha256:0123…`. */
export interface Subject {
  registry: string;
  repository?: string | undefined;
  blob?: string | undefined;
  /** A tag or digest of a manifest. */
  manifest?: string | undefined;
}

export function describe(s: Subject): string {
  const parts = [`registry ${s.registry}`];
  if (s.repository) parts.push(`repository ${s.repository}`);
  if (s.manifest) parts.push(`manifest ${s.manifest.includes(':') && s.manifest.startsWith('sha') ? shortDigest(s.manifest) : s.manifest}`);
  if (s.blob) parts.push(`blob ${shortDigest(s.blob)}`);
  return parts.join(', ');
}

/**
 * Replaces every occurrence of a secret (password, token, the Basic credential) by `***`: text
 * that comes from a server may echo what it was sent.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join('***');
  return out;
}

interface RegistryErrorBody { errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }> }

/**
 * A registry's error body (`{"errors":[{"code","message","detail"}]}`) as one readable line,
 * e.g. `MANIFEST_UNKNOWN: manifest unknown (Tag: latest)`; undefined when the body is not one.
 */
export function renderErrorBody(body: string): string | undefined {
  let x: RegistryErrorBody;
  try {
    x = JSON.parse(body) as RegistryErrorBody;
  } catch {
    return undefined;
  }
  if (!x || !Array.isArray(x.errors) || x.errors.length === 0) return undefined;
  return x.errors.slice(0, 5).map((e) => {
    const code = typeof e.code === 'string' ? e.code : 'UNKNOWN';
    const msg = typeof e.message === 'string' && e.message ? `: ${e.message}` : '';
    return `${code}${msg}${renderDetail(e.detail)}`;
  }).join('; ');
}

/** The codes of an error body (e.g. ['BLOB_UNKNOWN']). */
export function errorCodes(body: string): string[] {
  try {
    const x = JSON.parse(body) as RegistryErrorBody;
    return Array.isArray(x?.errors) ? x.errors.map((e) => String(e.code)) : [];
  } catch {
    return [];
  }
}

function renderDetail(d: unknown): string {
  if (d === undefined || d === null || d === '') return '';
  let s: string;
  if (typeof d === 'string') s = d;
  else if (typeof d === 'object' && !Array.isArray(d)) {
    s = Object.entries(d as Record<string, unknown>)
      .filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
      .map(([k, v]) => `${k}: ${v}`).join(', ');
  } else s = JSON.stringify(d);
  if (!s) return '';
  return ` (${s.length > 200 ? s.slice(0, 200) + '…' : s})`;
}

/** Printable excerpt of a non-JSON body (an HTML error page, a proxy's text). */
export function bodyExcerpt(body: string): string {
  const text = body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
  if (!text) return '';
  return `: ${text.length > 160 ? text.slice(0, 160) + '…' : text}`;
}

/**
 * The error for an HTTP status that the caller did not expect, with the registry's own words.
 * 401, 403 and 404 get messages that say what to do.
 */
export function statusError(status: number, body: string, s: Subject, what: string, secrets: Iterable<string> = []): EnclavifyError {
  const err = statusErrorOf(status, body, s, what, secrets);
  // The registry's own codes (e.g. DIGEST_INVALID), for callers that act on them.
  Object.defineProperty(err, 'registryCodes', { value: errorCodes(body), enumerable: false });
  return err;
}

/** The registry error codes an error carries (from its error body), if any. */
export function registryCodesOf(e: unknown): string[] {
  return ((e as { registryCodes?: string[] })?.registryCodes) ?? [];
}

function statusErrorOf(status: number, body: string, s: Subject, what: string, secrets: Iterable<string>): EnclavifyError {
  const rendered = renderErrorBody(body);
  const said = redact(rendered ? `: ${rendered}` : bodyExcerpt(body), secrets);
  const where = describe(s);
  if (status === 401) {
    return registryError('REGISTRY_UNAUTHORIZED', `${where}: ${what}: 401 unauthorized${said}; the registry needs credentials or refused the ones given (--creds USER:PASS, or an entry in an auth file)`);
  }
  if (status === 403) return registryError('REGISTRY_DENIED', `${where}: ${what}: 403 denied${said}; these credentials may not do this (push or pull permission on the repository?)`);
  if (status === 404) {
    const codes = errorCodes(body);
    const missing = codes.includes('NAME_UNKNOWN') ? 'no such repository' : codes.includes('MANIFEST_UNKNOWN') ? 'no such tag or manifest' : codes.includes('BLOB_UNKNOWN') ? 'no such blob' : 'not found';
    return registryError('REGISTRY_NOT_FOUND', `${where}: ${what}: 404 ${missing}${said}`);
  }
  if (status === 429) return registryError('REGISTRY_RETRIES_EXHAUSTED', `${where}: ${what}: 429 too many requests${said}`);
  return registryError('REGISTRY_HTTP', `${where}: ${what}: HTTP ${status}${said}`);
}
