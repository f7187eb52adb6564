/**
 * TypeScript shapes of the SCONE CAS session (policy language v0.3.x) as enclavify emits it. The
 * JSON Schema `schemas/scone-session.schema.json` is the full, authoritative description; these
 * types cover what we generate and leave user-supplied parts (secrets, injection files) open.
 */

/** Who may read, update, or create sessions in the namespace of, a session. */
export interface SconeAccessPolicy {
  read?: string[];
  update?: string[];
  create_sessions?: string[];
}

/** One `services[]` entry. */
export interface SconeService {
  name: string;
  image_name?: string;
  /** Legacy attestation list, what sconify emits: any of these MRENCLAVEs may attest. */
  mrenclaves?: string[];
  /** A string is split at whitespace by CAS (quotes group); a list is taken verbatim. */
  command?: string | string[];
  environment?: Record<string, string>;
  pwd?: string;
  fspf_path?: string;
  /** 32 bytes hex: the key of the file-system protection file. Secret. */
  fspf_key?: string;
  /** 16 bytes hex: tag of the initial file-system state. */
  fspf_tag?: string;
  fspf_update_policy?: 'rollback_protected_reinitializable' | 'no_rollback_protection';
}

/** A reference to another session in an export list. */
export interface SconeSessionRef {
  session: string;
  session_hash?: string;
}

/** One `volumes[]` entry. */
export interface SconeVolume {
  name: string;
  fspf_key?: string;
  fspf_tag?: string;
  export?: SconeSessionRef[];
  import?: { session: string; volume: string };
}

/** A volume mounted by an image. */
export interface SconeImageVolume {
  name: string;
  path: string;
  update_policy?: 'rollback_protected' | 'ephemeral' | 'no_rollback_protection';
}

/** An injected file: a path read and rewritten in memory, or a path with its content. */
export type SconeInjectionFile = string | { path: string; content?: string; permission?: number | string };

/** A secret as the session language describes it (kinds ascii, binary, private-key, x509, ...). */
export interface SconeSecret {
  name: string;
  kind?: string;
  [field: string]: unknown;
}

/** One `images[]` entry. */
export interface SconeImage {
  name: string;
  volumes?: SconeImageVolume[];
  injection_files?: SconeInjectionFile[];
}

/** Platform issues CAS may be told to tolerate during attestation. */
export type SconeToleration =
  | 'debug-mode'
  | 'hyperthreading'
  | 'insecure-igpu'
  | 'outdated-tcb'
  | 'software-hardening-needed'
  | 'insecure-configuration'
  | 'aepic-leak';

/** `security.attestation`. */
export interface SconeAttestationSecurity {
  mode?: 'hardware' | 'none' | 'maa';
  tolerate?: SconeToleration[];
  ignore_advisories?: '*' | string[];
}

/** A SCONE CAS session (policy). */
export interface SconeSession {
  name: string;
  version: string;
  predecessor?: string;
  access_policy?: SconeAccessPolicy;
  services?: SconeService[];
  secrets?: SconeSecret[];
  volumes?: SconeVolume[];
  images?: SconeImage[];
  security?: { attestation?: SconeAttestationSecurity };
}
