/**
 * Registry references (`HOST[:PORT]/REPO[:TAG|@DIGEST]`, the part after `docker://`), with
 * Docker's short forms: `alpine` is `registry-1.docker.io/library/alpine:latest`.
 */
import { parseDigest } from '../oci/digest.js';
import { EnclavifyError } from '../oci/errors.js';

/** A parsed registry reference. `registry` is the host the API is spoken to. */
export interface RegistryReference {
  /** `HOST[:PORT]`; Docker Hub's aliases (`docker.io`, `index.docker.io`) are `registry-1.docker.io`. */
  registry: string;
  /** Repository path, e.g. `library/alpine`. */
  repository: string;
  /** Tag (default `latest` when there is no digest). */
  tag?: string | undefined;
  /** Manifest digest; wins over the tag when both are given. */
  digest?: string | undefined;
}

/** Docker Hub's API host. */
export const DOCKER_HUB = 'registry-1.docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

// distribution-spec: path components of lower-case alphanumerics joined by `.`, `_`, `__` or `-+`.
const REPO_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

function bad(ref: string, why: string): EnclavifyError {
  return new EnclavifyError('BAD_REFERENCE', `invalid registry reference ${JSON.stringify(ref)}: ${why} (expected docker://HOST[:PORT]/REPO[:TAG|@DIGEST], or a Docker Hub name such as docker://alpine:3.20)`);
}

/** Whether a first path component names a registry host (Docker's rule: it has `.` or `:`, or is `localhost`). */
function isHost(component: string): boolean {
  return component === 'localhost' || /[.:]/.test(component) || component.startsWith('[');
}

/** Parses `HOST[:PORT]/REPO[:TAG][@DIGEST]` or a Docker Hub short name. */
export function parseRegistryReference(ref: string): RegistryReference {
  if (!ref) throw bad(ref, 'empty');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest, `docker://${ref}`);
    } catch (e) {
      throw bad(ref, (e as Error).message.replace(/^[^:]*: /, ''));
    }
  }
  const slash = rest.indexOf('/');
  let registry: string;
  let path: string;
  if (slash > 0 && isHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
  } else {
    registry = DOCKER_HUB;
    path = rest;
  }
  if (!HOST_RE.test(registry)) throw bad(ref, `${JSON.stringify(registry)} is not a host name with an optional port`);
  if (HUB_ALIASES.has(registry.toLowerCase())) registry = DOCKER_HUB;
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0 && !path.slice(colon).includes('/')) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(ref, `${JSON.stringify(tag)} is not a valid tag`);
  }
  if (!path) throw bad(ref, 'no repository');
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (!REPO_RE.test(path)) throw bad(ref, `${JSON.stringify(path)} is not a valid repository name (lower-case letters, digits and . _ - separators, components joined by /)`);
  if (registry.length + 1 + path.length > 255) throw bad(ref, 'the name is longer than 255 characters');
  if (!tag && !digest) tag = 'latest';
  return { registry, repository: path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `HOST/REPO:TAG`, `HOST/REPO@DIGEST` or `HOST/REPO:TAG@DIGEST`. */
export function formatRegistryReference(r: RegistryReference): string {
  return `${r.registry}/${r.repository}${r.tag ? ':' + r.tag : ''}${r.digest ? '@' + r.digest : ''}`;
}

/** Whether a registry host is this machine (plain HTTP may be used there). */
export function isLoopback(registry: string): boolean {
  const host = hostOf(registry);
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]' || host === '::1';
}

/** The host part of `HOST[:PORT]`. */
export function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(0, registry.indexOf(']') + 1);
  const c = registry.lastIndexOf(':');
  return c < 0 ? registry : registry.slice(0, c);
}
