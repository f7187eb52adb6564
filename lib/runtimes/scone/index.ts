/**
 * `enclavify/scone`: the SCONE runtime. `injectRuntime(scone(options))` sets the SCONE_*
 * environment, makes the enclave command the Entrypoint and copies an enclave-ready binary from
 * another image; its options and defaults. See docs/policy.md for the CAS session.
 * @packageDocumentation
 * @module enclavify/scone
 */
export { scone, type SconeRuntimeDetails } from './runtime.js';
export { SCONE_DEFAULTS, SCONE_PLUMBING_VARIABLES, sconeConfigIdOf, resolveSettings as resolveSconeSettings, sconeImageEnv } from './options.js';
export type { SconeOptions, SconeRuntimeSettings, SconeBinaryImage } from './options.js';
export type { BinaryImageResult, CopiedFile } from './binary-image.js';
export { sconeCommand, type SconeCommand, type SconeScriptStep } from './command.js';
