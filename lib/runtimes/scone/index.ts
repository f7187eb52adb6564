/** The SCONE runtime: `injectRuntime(scone(options))`, its options, and what it refuses. */
export { scone, type SconeRuntimeDetails } from './runtime.js';
export { SCONE_DEFAULTS, SCONE_PLUMBING_VARIABLES, sconeConfigIdOf, resolveSettings as resolveSconeSettings, sconeImageEnv } from './options.js';
export type { SconeOptions, SconeRuntimeSettings, SconeBinaryImage } from './options.js';
export { checkSconeFileProtection, SCONE_FSPF_UNSUPPORTED_MESSAGE, type SconeProtectionRequest } from './limits.js';
export { copyFromBinaryImage, type BinaryImageResult, type CopiedFile } from './binary-image.js';
export { sconeCommand, looksLikeItForks, elfImports, FORK_IMPORTS, type SconeCommand, type SconeScriptStep } from './command.js';
