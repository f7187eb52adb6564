/**
 * The policies enclavify emits: the SCONE CAS session for SCONE images, the attestation policy
 * for the key-releasing verifier of Gramine images, their schemas, and an atomic writer.
 */
export * from './scone-types.js';
export { sconeSession, sconeNamespaceSession, sconeConfigId, sessionToYaml, DEFAULT_SESSION_VERSION, TCB_TOLERATIONS } from './scone-session.js';
export type { OciConfigSubset, SconeFspf, SconeSessionOptions } from './scone-session.js';
export { parseVolumeSpec, volumeEntries } from './scone-volumes.js';
export type { VolumeSpec } from './scone-volumes.js';
export { secretsFromFragment, injectionFilesFromFragment } from './scone-fragments.js';
export type { PolicyFragment } from './scone-fragments.js';
export { gramineAttestationPolicy, gramineAttestationPolicyToJson, raTlsVerifierEnv, ALL_TCB_STATUSES } from './gramine-policy.js';
export type { GramineAttestationPolicy, GramineAttestationPolicyOptions, GramineReleasedKey, TcbStatus } from './gramine-policy.js';
export { validateSconeSession, validateSconeDefinition, validateGramineAttestationPolicy, formatProblems, schemaDir, schemaFiles } from './validate.js';
export type { PolicyProblem } from './validate.js';
export { writeFileAtomic } from '../store/atomic.js';
export type { WriteFileAtomicOptions } from '../store/atomic.js';
