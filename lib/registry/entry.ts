/**
 * The registry client as the package's root exports it: references and credentials are light and
 * loaded with the library; pull, push and the HTTP client load on the first
 * call, so that importing `enclavify` does not pay for them.
 */
import type { Image } from '../oci/image.js';
import type { RegistryReference } from './reference.js';
import type { RegistryReadOptions } from './pull.js';
import type { PushOptions, PushResult } from './push.js';

export { parseRegistryReference, formatRegistryReference } from './reference.js';
export { lookupCredentials, parseCredentials } from './credentials.js';

/**
 * Opens an image in a registry. Nothing but the manifest (and, for an index, the chosen
 * platform's manifest) is fetched now; the config when first asked for; layers stream from the
 * registry each time a consumer opens them.
 */
export async function openRegistryImage(ref: RegistryReference, opts: RegistryReadOptions = {}): Promise<Image> {
  return (await import('./pull.js')).openRegistryImage(ref, opts);
}

/**
 * Pushes an image to `ref`. Layers stream from wherever the image holds them (a layout, a
 * pipeline's new layer, another registry: nothing is staged on disk) into the registry.
 */
export async function pushImage(image: Image, ref: RegistryReference, opts: PushOptions = {}): Promise<PushResult> {
  return (await import('./push.js')).pushImage(image, ref, opts);
}

/** Closes every registry connection this process opened (tests, and the CLI before it exits). */
export async function closeRegistryClients(): Promise<void> {
  return (await import('./client.js')).closeRegistryClients();
}
