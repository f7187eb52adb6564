/**
 * The Gramine runtime: `injectRuntime(gramine(options))`, image signing and inspection.
 * See docs/gramine.md.
 */
export { gramine, signGramineImage, inspectImage } from './entry.js';
export { enclaveCommand, DEFAULT_EXCLUDED, DEFAULT_PLAIN } from './runtime.js';
export type { GramineOptions } from './runtime.js';
export { DEBIAN_LAYOUT, DEFAULT_APP_BASE, APP_DIR, LAUNCHER_PATH, LABELS, defaultCopyPaths } from './layout.js';
export type { GramineLayout } from './layout.js';
export { buildGramineManifest, mergeFragment, parseFragment, allowedOverTrusted } from './manifest.js';
export type { GramineManifest, GramineManifestInput, GramineMount, TrustedFile, EnclaveSettings } from './manifest.js';
export { checkGramineManifest } from './schema.js';
export { reachableFiles, isUnder } from './paths.js';
export type { ReachablePath, ReachableOptions } from './paths.js';
export { loaderEnv, ldSoConfDirs, parseEnv } from './env.js';
export type { LoaderEnvInput, LoaderEnvValue } from './env.js';
export { launcherScript } from './launcher.js';
export type { LauncherPaths } from './launcher.js';
export { checkImageForSigning, formatSigningFindings } from './sign-check.js';
export type { SigningCheck, SigningCheckInput, SigningFinding } from './sign-check.js';
export { manifestRisks, hostEnvRisk, hostEnvNames } from './hardening.js';
export type { ManifestRisk, ManifestRiskOptions, RiskKind } from './hardening.js';
export type { SignGramineImageOptions, SigningOptions } from './sign.js';
export type { ImageInspection, GramineInspection, SigstructInfo, InspectOptions } from './inspect.js';
export { fileLists, allowedCovers } from './files.js';
export type { FileLists, FileListsInput, Listing } from './files.js';
