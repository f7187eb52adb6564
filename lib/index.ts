/**
 * enclavify: turn native OCI container images into confidential images for Intel SGX.
 *
 * The public API. Images are opened by reference (`openImage`), changed by a `pipeline` of
 * transforms, and written by reference (`writeImage`). Everything streams; nothing needs a
 * Docker daemon.
 * @packageDocumentation
 */
export { EnclavifyError, ERROR_CODES, type ErrorCode } from './oci/errors.js';
export type { ProgressEvent, ProgressListener, ProgressPhase } from './oci/progress.js';
export type { Image, Layer } from './oci/image.js';
export type { Descriptor, Manifest, Index, ImageConfig, ContainerConfig, HistoryEntry, Platform } from './oci/types.js';
export { MT, type Compression } from './oci/media-types.js';
export type { CompressionOptions } from './oci/compression.js';
export { openImage, writeImage, copyImage, parseRef, formatRef, hostPlatform, parsePlatform, type ImageRef, type ReadOptions, type WriteResult } from './store/index.js';
export { pipeline, Draft, type Transform, type Artifact, type LayerItem, type PipelineOptions, type PipelineResult } from './transforms/pipeline.js';
export type { FsEntry, EntryType } from './fs/entry.js';
// SCONE runtime, policy and chart transforms, images from directories (runtime/policy/chart work)
export { injectRuntime, type Runtime } from './transforms/inject-runtime.js';
export { RUNTIME, PROTECTION, CLASSIFICATION, type RuntimeInfo, type Protection, type Classification } from './transforms/state.js';
export { scone, checkSconeFileProtection, SCONE_DEFAULTS, type SconeOptions, type SconeBinaryImage, type SconeRuntimeSettings } from './runtimes/scone/index.js';
export { emitPolicy, POLICY, type EmitPolicyOptions, type EmitSconePolicyOptions, type EmitGraminePolicyOptions, type PolicyInfo } from './transforms/emit-policy.js';
export { emitChart, CHART, type EmitChartOptions, type ChartInfo } from './transforms/emit-chart.js';
export { imageFromDirectory, type ImageFromDirectoryOptions } from './fs/from-directory.js';
export { fileClassify, type FileClassifyOptions } from './transforms/file-classify.js';
export { encryptFS, refreshProtectionManifest, type EncryptFsOptions, type EncryptReport, type ManifestRefresh } from './transforms/encrypt-fs.js';
export { classifyImage, formatClassificationReport, type ClassifyRules, type ClassificationReport } from './protect/classify.js';
export { verify, formatFindings, type VerifyOptions, type VerifyResult, type Finding, type FindingCode } from './protect/verify.js';
export { MANIFEST_PATH, parseManifest, type ProtectionManifest, type FileRecord } from './protect/manifest.js';
export { parseKeysFile, readKeysFile, keysFile, type KeysFile, type KeySet } from './protect/keys.js';
export { DEFAULT_PLAIN_DIRS, DEFAULT_PLAIN_FILES, type Rule } from './protect/rules.js';
export { protectionSchemaProblems } from './protect/schemas.js';
// Gramine runtime, signing of converted images, inspection (Gramine runtime work)
export { gramine, signGramineImage, inspectImage, formatInspection, checkGramineManifest, DEBIAN_LAYOUT, type GramineOptions, type GramineLayout, type SignGramineImageOptions, type ImageInspection } from './runtimes/gramine/index.js';
