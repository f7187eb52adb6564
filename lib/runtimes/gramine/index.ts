/**
 * `enclavify/gramine`: the Gramine runtime. `injectRuntime(gramine(options))` adds the runtime
 * layer, the manifest with trusted files under every alias, the launcher and (optionally) the
 * signature; {@link signGramineImage} signs a converted image later, {@link inspectImage} reads
 * back what a converted image holds. See docs/gramine.md.
 * @packageDocumentation
 * @module enclavify/gramine
 */
export { gramine, signGramineImage, inspectImage } from './entry.js';
export { enclaveCommand, DEFAULT_EXCLUDED, DEFAULT_PLAIN } from './runtime.js';
export type { GramineOptions } from './runtime.js';
export { DEFAULT_APP_BASE, APP_DIR, LAUNCHER_PATH, LABELS } from './layout.js';
export type { GramineLayout } from './layout.js';
export { buildGramineManifest } from './manifest.js';
export type { GramineManifest, GramineManifestInput, GramineMount, TrustedFile, EnclaveSettings } from './manifest.js';
export type { LoaderEnvValue } from './env.js';
export { checkGramineManifest } from './schema.js';
export type { SignGramineImageOptions, SigningOptions } from './sign.js';
export { checkImageForSigning } from './sign-check.js';
export type { SigningCheck, SigningCheckInput, SigningFinding } from './sign-check.js';
export { manifestRisks } from './hardening.js';
export type { ManifestRisk, ManifestRiskOptions, RiskKind } from './hardening.js';
export type { ImageInspection, GramineInspection, SigstructInfo, InspectOptions } from './inspect.js';
