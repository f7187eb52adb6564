/**
 * What transforms hand to each other through `draft.state`: typed keys and the shapes behind
 * them. fileClassify → encryptFS → injectRuntime → emitPolicy / emitChart.
 */
import type { Rule } from '../protect/rules.js';
import { EnclavifyError } from '../oci/errors.js';

declare const valueType: unique symbol;

/**
 * A key of `draft.state` that knows the type of its value: `state.get(PROTECTION)` is a
 * `Protection | undefined`. Keys are compared by `id`, so two modules making the same key share
 * the value. Make your own with {@link stateKey}.
 */
export interface StateKey<T> {
  /** Unique name, e.g. `enclavify.protection` (prefix yours with your package name). */
  readonly id: string;
  /** Only for the type checker: the type of the value. */
  readonly [valueType]?: T;
}

/** A typed state key: `const STAMP = stateKey<{ build: string }>('acme.stamp')`. */
export function stateKey<T>(id: string): StateKey<T> {
  return Object.freeze({ id }) as StateKey<T>;
}

/** What transforms share in a pipeline (`draft.state`, and the result's `state`): values by typed key. */
export class PipelineState {
  private readonly values = new Map<string, unknown>();

  /** The value set under `key`, if any. */
  get<T>(key: StateKey<T>): T | undefined {
    return this.values.get(key.id) as T | undefined;
  }

  /** Sets the value under `key` (replacing any). */
  set<T>(key: StateKey<T>, value: T): this {
    this.values.set(key.id, value);
    return this;
  }

  has(key: StateKey<unknown>): boolean {
    return this.values.has(key.id);
  }

  delete(key: StateKey<unknown>): boolean {
    return this.values.delete(key.id);
  }

  /** The ids of the keys set, in the order they were first set. */
  ids(): string[] {
    return [...this.values.keys()];
  }

  /**
   * The value under `key`, which an earlier transform must have set: otherwise `PIPELINE_ORDER`,
   * naming who needs it (`by`) and what must run before (`from`).
   */
  require<T>(key: StateKey<T>, by: string, from: string): T {
    const v = this.get(key);
    if (v === undefined) throw new EnclavifyError('PIPELINE_ORDER', `${by} needs ${from} to run before it in the pipeline`);
    return v;
  }
}

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
  /**
   * A symlink in an encrypted region, to a regular file of the same region: Gramine's encrypted
   * mounts cannot hold symlinks, so encryptFS writes an encrypted copy of the target (this
   * absolute path) at the link's own path. `size` and `sha256` are the target's.
   */
  symlinkTo?: string;
}

/** fileClassify's result. */
export interface Classification {
  regions: Region[];
  /** Absolute host paths (`--host-path`). */
  hostPaths: string[];
  /**
   * Every regular file (and hard link) of the merged view, by absolute path, in bytewise order of
   * path. fileClassify's is a compact index beside the view: each read makes a new object (keep
   * what you need, not the map's values; a million files are not a million objects).
   */
  files: ReadonlyMap<string, ClassifiedFile>;
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

/** fileClassify's result. */
export const CLASSIFICATION = stateKey<Classification>('enclavify.classification');
/** encryptFS's result (keys included: never log it). */
export const PROTECTION = stateKey<Protection>('enclavify.protection');
/** What injectRuntime (or signGramineImage) did. */
export const RUNTIME = stateKey<RuntimeInfo>('enclavify.runtime');
