/**
 * What transforms hand to each other through `draft.state`: typed keys and the shapes behind
 * them. fileClassify → encryptFS → injectRuntime → emitPolicy / emitChart.
 */
import type { Draft } from './pipeline.js';
import type { Rule } from '../protect/rules.js';
import { EnclavifyError } from '../oci/errors.js';

/** Protection class of a file. */
export type FileClass = 'encrypted' | 'authenticated' | 'plain';

/** An encrypted region: a directory whose files are encrypted with one key. */
export interface Region {
  /** Key name (Gramine `key_name`, keys file `name`), e.g. `app_data`. */
  name: string;
  /** Absolute directory in the image, e.g. `/app/data`. */
  path: string;
}

/** The class of one path of the merged view. */
export interface ClassifiedFile {
  /** Absolute path, e.g. `/app/data/secret.txt`. */
  path: string;
  class: FileClass;
  /** Encrypted region name, for encrypted files. */
  region?: string;
  /** Why (the rule that decided, e.g. `--dir /app/data`, `default: authenticated`, `startup dependency of /usr/bin/python3`). */
  reason: string;
  /** Host path: plain in the image, mounted from the host at run time. */
  hostPath?: boolean;
  /** Content size in bytes (in the classified image, before encryption). */
  size?: number;
  /** Hex SHA-256 of the content (before encryption). */
  sha256?: string;
  /** Startup file of the entrypoint (program, interpreter, library): must stay readable before keys exist. */
  startup?: boolean;
}

/** fileClassify's result. */
export interface Classification {
  regions: Region[];
  /** Absolute host paths (`--host-path`). */
  hostPaths: string[];
  /** Every regular file (and hard link) of the merged view, by absolute path. */
  files: Map<string, ClassifiedFile>;
  /** Startup files that must stay readable before keys exist (entrypoint, interpreter, libraries), absolute. */
  startup: string[];
  /** The program the container runs (absolute, symlinks resolved) and its argv (Entrypoint + Cmd). */
  entrypoint?: { program: string; argv: string[] };
  warnings: string[];
  /** The effective rule set (user rules with globs expanded, plus defaults), most general first. */
  rules?: Rule[];
}

/** A key produced by encryptFS. Secret: never logged, never written into an image. */
export interface RegionKey {
  name: string;
  region: string;
  /** 32 lowercase hex digits (16 bytes), the form of Gramine's `fs.insecure__keys`. */
  keyHex: string;
  /** Every region directory using this key (more than one with a single image key). */
  regions?: string[];
}

/** encryptFS's result. */
export interface Protection {
  /** Path of the protection manifest inside the image. */
  manifestPath: string;
  /** SHA-256 (hex) of the protection manifest's bytes, for policies. */
  manifestSha256: string;
  keys: RegionKey[];
  /** The encrypted regions (key name and directory). */
  regions?: Region[];
  /** Index of the layer holding the protection manifest. */
  manifestLayer?: number;
}

/** What injectRuntime did, for emitPolicy and emitChart. */
export interface RuntimeInfo {
  runtime: 'gramine' | 'scone' | string;
  /** The new Entrypoint. */
  entrypoint: string[];
  /** Gramine: manifest path in the image. */
  manifestPath?: string;
  /** Measurement, when known (signed Gramine image, or given). Lowercase hex. */
  mrenclave?: string[];
  mrsigner?: string;
  isvProdId?: number;
  isvSvn?: number;
  debug?: boolean;
  /** Names of keys the runtime expects to be provisioned. */
  keyNames: string[];
  /** SCONE: the config id `<ns>/<session>/<service>`. */
  sconeConfigId?: string;
  /** Extra facts for reports. */
  details?: Record<string, unknown>;
}

export const CLASSIFICATION = 'enclavify.classification';
export const PROTECTION = 'enclavify.protection';
export const RUNTIME = 'enclavify.runtime';

/** Read a state value set by an earlier transform, or fail naming who needs it. */
export function need<T>(draft: Draft, key: string, by: string, from: string): T {
  const v = draft.state.get(key) as T | undefined;
  if (v === undefined) throw new EnclavifyError('PIPELINE_ORDER', `${by} needs ${from} to run before it in the pipeline`);
  return v;
}
