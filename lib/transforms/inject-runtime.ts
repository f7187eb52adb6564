/** injectRuntime: the transform that makes an image start under a TEE runtime (Gramine, SCONE). */
import type { Draft, Transform } from './pipeline.js';

/** A TEE runtime: adds its files and rewires the image's entrypoint. */
export interface Runtime {
  readonly name: string;
  inject(draft: Draft): Promise<void>;
}

/** `injectRuntime(gramine({...}))` or `injectRuntime(scone({...}))`. */
export function injectRuntime(runtime: Runtime): Transform {
  return { name: `injectRuntime(${runtime.name})`, apply: (draft) => runtime.inject(draft) };
}
