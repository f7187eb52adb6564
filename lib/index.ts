/**
 * enclavify: turn native OCI container images into confidential images for Intel SGX.
 *
 * The public API (docs/api.md). Images are opened by reference (`openImage`), changed by a
 * `pipeline` of transforms, and written by reference (`writeImage`). Everything streams; nothing
 * needs a Docker daemon. Long operations take `signal` and `onProgress`; every error is an
 * `EnclavifyError` with a `code` from `ERROR_CODES`; results holding temporary files are
 * disposable (`await using`).
 * @packageDocumentation
 * @module enclavify
 */
// Errors, progress, cancellation
export { EnclavifyError, ERROR_CODES, type ErrorCode, type ErrorCodeInfo } from './oci/errors.js';
export type { ProgressEvent, ProgressListener, ProgressPhase } from './oci/progress.js';
// The image model
export type { Image, Layer } from './oci/image.js';
export type { Descriptor, Manifest, Index, ImageConfig, ContainerConfig, HistoryEntry, Platform } from './oci/types.js';
export { MT, type Compression } from './oci/media-types.js';
export type { CompressionOptions } from './oci/compression.js';
export type { FsEntry, EntryType } from './fs/entry.js';
export type { RootFs, MergedEntry } from './fs/merged.js';
// Opening, writing and copying images
export { openImage, writeImage, copyImage, parseRef, formatRef, hostPlatform, parsePlatform, type ImageRef, type OciRef, type DockerArchiveRef, type RegistryRef, type OpenOptions, type WriteOptions, type CopyOptions, type WriteResult, type WriteImageResult, ScanCache, defaultCacheDir, type ScanCacheOptions } from './store/index.js';
// Registries (docker://): references, pull, push, credentials
// pull, push and the HTTP client load on first use (entry.ts).
export { parseRegistryReference, formatRegistryReference, openRegistryImage, pushImage, closeRegistryClients, lookupCredentials, parseCredentials } from './registry/entry.js';
export type { RegistryReference, RegistryOptions, RegistryReadOptions, PushOptions, PushResult, PushedBlob, Credentials, PasswordCredentials, TokenCredentials, FoundCredentials, CredentialLookupOptions, RetryPolicy, TransportOptions } from './registry/index.js';
export { imageFromDirectory, type ImageFromDirectoryOptions, type DirectoryImage } from './fs/from-directory.js';
// Pipelines and the state transforms share
export { pipeline, type Draft, type DraftProgress, type DraftWarning, type Transform, type Artifact, type LayerItem, type PipelineOptions, type PipelineResult } from './transforms/pipeline.js';
export { stateKey, CLASSIFICATION, PROTECTION, RUNTIME, type StateKey, type PipelineState, type Classification, type ClassifiedFile, type FileClass, type Region, type Protection, type RegionKey, type RuntimeInfo } from './transforms/state.js';
// Transforms
export { fileClassify, type FileClassifyOptions } from './transforms/file-classify.js';
export type { ClassifyRules, ClassificationReport, DirRule, ClassTotals, StartupReport } from './protect/classify.js';
export type { StartupFiles, StartupLibrary, MissingLibrary, ScriptInterpreter, LibraryVia } from './protect/deps.js';
export { DEFAULT_PLAIN_DIRS, DEFAULT_PLAIN_FILES, type Rule, type RuleKind } from './protect/rules.js';
export { encryptFS, refreshProtectionManifest, type EncryptFSOptions, type EncryptReport, type ManifestRefresh } from './transforms/encrypt-fs.js';
export { injectRuntime, type Runtime } from './transforms/inject-runtime.js';
export { emitPolicy, POLICY, type EmitPolicyOptions, type EmitSconePolicyOptions, type EmitGraminePolicyOptions, type PolicyInfo } from './transforms/emit-policy.js';
export type { GramineReleasedKey, TcbStatus, PolicyFragment, SconeAccessPolicy, SconeFspf, VolumeSpec } from './policy/index.js';
export { emitChart, CHART, type EmitChartOptions, type ChartInfo } from './transforms/emit-chart.js';
export { SGX_DEVICE_MODES, WORKLOAD_TYPES, type ChartOptions, type ChartVolume, type ChartEncryptedVolume, type ChartServiceSettings, type CocoChartSettings, type GramineChartSettings, type GramineLoader, type SconeChartSettings, type SgxDeviceMode, type VolumePersistence, type WorkloadType, type Runtime as ChartRuntime } from './chart/options.js';
// Runtimes: SCONE, Gramine (signing, inspection)
export { scone, SCONE_DEFAULTS, type SconeOptions, type SconeBinaryImage, type SconeRuntimeSettings } from './runtimes/scone/index.js';
// The Gramine runtime's implementation loads when first used (entry.ts).
export { gramine, signGramineImage, inspectImage, checkGramineManifest } from './runtimes/gramine/entry.js';
export type { GramineOptions, GramineLayout, SignGramineImageOptions, SigningOptions, ImageInspection, GramineInspection, SigstructInfo, InspectOptions } from './runtimes/gramine/index.js';
export type { EnclaveSigner, PrivateKeySigner, CallbackSigner } from './sgx/index.js';
// Protection: verification, manifests, keys
export { verify, type VerifyOptions, type VerifyResult, type Finding, type FindingCode } from './protect/verify.js';
export { MANIFEST_PATH, MANIFEST_VERSION, ENCRYPTED_FORMAT, parseManifest, type ProtectionManifest, type FileRecord, type Amendment, type AuthenticatedFileRecord, type EncryptedFileRecord, type PlainFileRecord, type EntryRecord, type EntryMeta, type OtherEntryType, type ManifestRule, type SymlinkRecord } from './protect/manifest.js';
export { parseKeysFile, readKeysFile, keysFile, type KeysFile, type KeySet, type KeyInput, type KeysConversion, type ReadKeysFileOptions } from './protect/keys.js';
export { protectionSchemaProblems, type ProtectionSchemaName, type SchemaProblem } from './protect/schemas.js';
export type { CryptoBackend, GcmSealed, Sha256Hash } from './crypto/index.js';

export { encryptedImage, decryptingImage, isEncryptedImage, encryptLayer, decryptLayer, parseRecipient, readDecryptionKeys, type Recipient, type DecryptionKeys, type ResolvedRecipient, type EncryptImageOptions, type EncryptLayerOptions, type EncryptedLayer, type DecryptedLayer, type AaAlgorithm } from './ocicrypt/index.js';
