/** Image references in skopeo's transport:details style. */
import { EnclavifyError } from '../oci/errors.js';
import { formatRegistryReference, parseRegistryReference, type RegistryReference } from '../registry/reference.js';

/** An OCI image layout directory, optionally a tag (`ref.name`) or a manifest digest in it. */
export interface OciRef { transport: 'oci'; dir: string; tag?: string; digest?: string }
/** A `docker save` archive, optionally naming one of its images (`name:tag`). */
export interface DockerArchiveRef { transport: 'docker-archive'; file: string; name?: string }
/**
 * A registry reference (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, or a Docker Hub short form),
 * normalised (`docker://alpine` is registry-1.docker.io/library/alpine:latest); `reference` keeps
 * the text as written (e.g. for a Kubernetes image name).
 */
export interface RegistryRef extends RegistryReference { transport: 'docker'; reference: string }
export type ImageRef = OciRef | DockerArchiveRef | RegistryRef;

export const ACCEPTED_FORMS = [
  'oci:DIR[:TAG]            an OCI image layout directory, image tagged TAG (org.opencontainers.image.ref.name)',
  'oci:DIR@sha256:HEX       the manifest with that digest in an OCI image layout',
  'docker-archive:FILE[:NAME:TAG]  a `docker save` archive (NAME:TAG picks an image; when writing, the tag to record)',
  'docker://HOST[:PORT]/REPO[:TAG|@DIGEST]  a registry (docker://alpine: Docker Hub, library/alpine:latest)',
].join('\n  ');

function bad(ref: string, why: string): EnclavifyError {
  return new EnclavifyError('BAD_REFERENCE', `invalid image reference ${JSON.stringify(ref)}: ${why}\naccepted forms:\n  ${ACCEPTED_FORMS}`);
}

// The grammar of org.opencontainers.image.ref.name (annotations.md): components of alphanumerics
// joined by separators [-._:@+] or "--", themselves joined by "/". skopeo writes such names
// (e.g. `oci:DIR:example.com/app:1.0`).
const COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const REF_NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const DOCKER_TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const TAG_RE = { test: (t: string) => REF_NAME_RE.test(t) || DOCKER_TAG_RE.test(t) };

/** Parses `oci:…`, `docker-archive:…` and `docker://…` references; errors show the accepted forms. */
export function parseRef(ref: string): ImageRef {
  const i = ref.indexOf(':');
  if (i <= 0) throw bad(ref, 'no transport (oci:, docker-archive:, docker://)');
  const transport = ref.slice(0, i);
  const rest = ref.slice(i + 1);
  if (transport === 'oci') {
    if (!rest) throw bad(ref, 'no directory');
    const at = rest.lastIndexOf('@');
    if (at > 0 && /^sha(256|512):/.test(rest.slice(at + 1))) {
      const digest = rest.slice(at + 1);
      if (!/^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/.test(digest)) throw bad(ref, `malformed digest ${digest}`);
      return { transport: 'oci', dir: rest.slice(0, at), digest };
    }
    const c = rest.indexOf(':');
    if (c < 0) return { transport: 'oci', dir: rest };
    const dir = rest.slice(0, c), tag = rest.slice(c + 1);
    if (!dir) throw bad(ref, 'no directory');
    // Like skopeo, the part after the first ':' is the reference name.
    if (!TAG_RE.test(tag)) throw bad(ref, `${JSON.stringify(tag)} is not a valid reference name (org.opencontainers.image.ref.name)`);
    return { transport: 'oci', dir, tag };
  }
  if (transport === 'docker-archive') {
    if (!rest) throw bad(ref, 'no archive file');
    const c = rest.indexOf(':');
    if (c < 0) return { transport: 'docker-archive', file: rest };
    const file = rest.slice(0, c), name = rest.slice(c + 1);
    if (!file) throw bad(ref, 'no archive file');
    if (!/^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name)) {
      throw bad(ref, `${JSON.stringify(name)} is not NAME:TAG`);
    }
    return { transport: 'docker-archive', file, name };
  }
  if (transport === 'docker') {
    if (!rest.startsWith('//') || rest.length <= 2) throw bad(ref, 'a registry reference is docker://HOST[:PORT]/REPO[:TAG|@DIGEST]');
    let parsed: RegistryReference;
    try {
      parsed = parseRegistryReference(rest.slice(2));
    } catch (e) {
      throw bad(ref, (e as Error).message.replace(/^invalid registry reference "[^"]*": /, '').replace(/ \(expected docker:\/\/.*$/, ''));
    }
    return { transport: 'docker', reference: rest.slice(2), ...parsed };
  }
  throw bad(ref, `unknown transport ${JSON.stringify(transport)}`);
}

/** The reference as a string, for messages. */
export function formatRef(r: ImageRef): string {
  if (r.transport === 'oci') return `oci:${r.dir}${r.digest ? '@' + r.digest : r.tag ? ':' + r.tag : ''}`;
  if (r.transport === 'docker-archive') return `docker-archive:${r.file}${r.name ? ':' + r.name : ''}`;
  return `docker://${formatRegistryReference(r)}`;
}
