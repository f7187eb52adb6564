/**
 * Protection rules: which class (encrypted, authenticated, plain) a path of an image gets. Rules
 * mirror `sconify_image`'s options (`--dir`, `--plain`, `--plain-file`, `--host-path`) plus
 * `--authenticated`; the rule with the longest matching path prefix decides, as with SCONE's
 * regions. Globs are expanded against the image's paths before matching, so matching itself is
 * literal, exact and cheap, and the effective rule set can be stored in the protection manifest
 * (which the verifier reads back).
 *
 * Paths here are absolute (`/app/data`), normalised (no `.`, `..`, `//` or trailing `/`).
 */
import { createHash } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';
import type { FileClass } from '../transforms/state.js';

/** What a rule says about the paths it covers. */
export type RuleKind =
  /** `--dir`: an encrypted region (a directory and everything below it). */
  | 'dir'
  /** `--plain`: a directory left unprotected. */
  | 'plain'
  /** `--plain-file`: one file left unprotected. */
  | 'plain-file'
  /** `--host-path`: unprotected in the image and mounted from the host at run time (file or directory). */
  | 'host-path'
  /** `--authenticated`: a file or directory whose files are pinned by SHA-256 (overrides a default or a wider rule). */
  | 'authenticated'
  /** A built-in default (see {@link DEFAULT_PLAIN_DIRS}). */
  | 'default';

/** One literal rule of the effective rule set. */
export interface Rule {
  /** Absolute, normalised path the rule covers (a directory prefix, or exactly one file when `fileOnly`). */
  path: string;
  class: FileClass;
  kind: RuleKind;
  /** The rule covers this exact path only (plain files); otherwise the path and everything below it. */
  fileOnly?: boolean;
  /** Host path: mounted from the host at run time. */
  hostPath?: boolean;
  /** Region (key) name, for encrypted rules. */
  region?: string;
  /** How the user wrote it, e.g. `--dir /app/data` or `--dir /srv/*\/data` for an expanded glob; `default` for defaults. */
  source: string;
}

/**
 * Directories left unprotected by default: kernel and device file systems, writable or host
 * state. Authenticated files are read-only at run time (their hash is fixed at build time), so
 * directories a program writes to cannot be authenticated.
 */
export const DEFAULT_PLAIN_DIRS: readonly string[] = ['/proc', '/sys', '/dev', '/run', '/tmp', '/var', '/boot'];

/** Files left unprotected by default: written by the container runtime (or the host) at start. */
export const DEFAULT_PLAIN_FILES: readonly string[] = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/etc/mtab'];

/** Characters that make a rule path a glob. */
const GLOB_CHARS = /[*?[]/;

/** Whether a rule path is a glob (`*`, `?`, `[...]`, `**`). */
export function isGlob(p: string): boolean {
  return GLOB_CHARS.test(p);
}

/**
 * Normalises a user-given absolute path: collapses `//` and `.`, strips a trailing `/`.
 * Throws `RULE_BAD_PATH` for a relative path, a `..` component or a NUL byte.
 */
export function normalizeRulePath(p: string, option: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) {
    throw new EnclavifyError('RULE_BAD_PATH', `${option} ${JSON.stringify(p)}: the path must be absolute (start with /)`);
  }
  if (p.includes('\0')) throw new EnclavifyError('RULE_BAD_PATH', `${option} ${JSON.stringify(p)}: the path contains a NUL byte`);
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw new EnclavifyError('RULE_BAD_PATH', `${option} ${JSON.stringify(p)}: ".." is not allowed in a rule path`);
    parts.push(c);
  }
  return '/' + parts.join('/');
}

/** Number of components of an absolute path (`/` has 0). */
export function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

/** Whether `p` is `prefix` or lies below it. */
export function under(p: string, prefix: string): boolean {
  return prefix === '/' || p === prefix || p.startsWith(prefix + '/');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A glob component as a regular expression: `*` any run of characters but `/`, `?` one, `[...]` a class. */
export function componentRe(c: string): string {
  let re = '';
  for (let i = 0; i < c.length; i++) {
    const ch = c[i];
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = c.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = c.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body}]`;
        i = end;
      }
    } else re += escapeRe(ch);
  }
  return re;
}

/**
 * Compiles an absolute glob to a regular expression over absolute paths. `*` and `?` stay within
 * one component (and match dot files too: a rule meant to protect a directory should not skip
 * `.env`); a `**` component matches zero or more components.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  const parts = glob.split('/').filter((c) => c !== '');
  for (const c of parts) re += c === '**' ? '(?:/[^/]+)*' : '/' + componentRe(c);
  return new RegExp((parts.length ? re : '^/') + '$');
}

/**
 * Region (key) name for a directory: `/app/data` -> `app_data`, `/` -> `root`. Letters, digits
 * and `_` only (safe as a Gramine `key_name`, a TOML key and a file name under
 * `/dev/attestation/keys/`).
 */
export function regionName(dir: string): string {
  let n = dir.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  if (n === '') n = 'root';
  if (/^[0-9]/.test(n)) n = 'd_' + n;
  // Key names are at most 64 characters (keys file schema); long paths keep a readable head and a
  // digest of the whole path, leaving room for a uniqueness suffix.
  if (n.length > 56) n = `${n.slice(0, 47)}_${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
  return n;
}

/** Valid user-chosen key names. */
export const KEY_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** The rule that decides a path, and why. */
export interface RuleMatch {
  rule: Rule;
  class: FileClass;
  region?: string;
  hostPath?: boolean;
}

/**
 * Finds the rule that decides `path` (absolute): the one with the longest matching path; at equal
 * paths a file rule beats a directory rule. Rule sets are validated when built, so there are no
 * ties between classes. Returns undefined when no rule matches (only possible without a `/` rule).
 */
export function matchRules(rules: readonly Rule[], path: string): RuleMatch | undefined {
  let best: Rule | undefined;
  let bestScore = -1;
  for (const r of rules) {
    if (r.fileOnly ? path !== r.path : !under(path, r.path)) continue;
    const score = depth(r.path) * 2 + (r.fileOnly ? 1 : 0);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  if (!best) return undefined;
  const m: RuleMatch = { rule: best, class: best.class };
  if (best.region !== undefined) m.region = best.region;
  if (best.hostPath) m.hostPath = true;
  return m;
}
