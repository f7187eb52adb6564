/**
 * Where blobs were seen: registry → digest → repositories, remembered for this process so a push
 * can mount a blob from another repository of the same registry instead of uploading it (as
 * containers/image's blob info cache does). Bounded; a wrong guess only costs a refused mount.
 */
const MAX = 20_000;
const seen = new Map<string, Set<string>>();

function key(registry: string, digest: string): string {
  return `${registry} ${digest}`;
}

/** Records that `repository` of `registry` holds `digest`. */
export function rememberBlob(registry: string, repository: string, digest: string): void {
  const k = key(registry, digest);
  let set = seen.get(k);
  if (!set) {
    if (seen.size >= MAX) seen.delete(seen.keys().next().value as string);
    set = new Set();
    seen.set(k, set);
  }
  set.add(repository);
}

/** Repositories of `registry` known to hold `digest`, other than `except`. */
export function blobSources(registry: string, digest: string, except?: string): string[] {
  return [...(seen.get(key(registry, digest)) ?? [])].filter((r) => r !== except);
}
