/** The registry client (OCI distribution): references, pull, push, credentials. See docs/registry.md. */
export { parseRegistryReference, formatRegistryReference, DOCKER_HUB, type RegistryReference } from './reference.js';
export { openRegistryImage, fetchManifest, MANIFEST_ACCEPT, type RegistryReadOptions, type FetchedManifest } from './pull.js';
export { pushImage, type PushOptions, type PushResult, type PushedBlob } from './push.js';
export { registryClient, closeRegistryClients, type RegistryOptions } from './client.js';
export { lookupCredentials, parseCredentials, authFilePaths, type Credentials, type PasswordCredentials, type TokenCredentials, type FoundCredentials, type CredentialLookupOptions } from './credentials.js';
export { loadTlsMaterial, defaultCertDirs, type TlsMaterial } from './certs.js';
export type { RegistryErrorCode } from './errors.js';
export type { RetryPolicy, TransportOptions } from './http.js';
export type { ProgressEvent, ProgressListener } from './progress.js';
