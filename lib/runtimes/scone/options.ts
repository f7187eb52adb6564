/**
 * Options of the SCONE runtime (`scone(options)`), their defaults (those of sconify_image and of
 * the generated chart), their validation, and the SCONE_* variables they put into the image.
 */
import type { Image } from '../../oci/image.js';
import { EnclavifyError } from '../../oci/errors.js';

/** Run-time settings that sconify_image bakes into the image as SCONE_* variables. */
export interface SconeRuntimeSettings {
  /** SCONE_CAS_ADDR, the CAS address (`--cas`). Default `scone-cas.cf`. */
  cas?: string;
  /**
   * SCONE_LAS_ADDR, the local attestation service (`--las`). Default `localhost:18766`. The Helm
   * chart overrides it with the node's IP unless given explicitly.
   */
  las?: string;
  /** SCONE_HEAP (`--heap`), e.g. `1G`. Part of MRENCLAVE: must match the measured enclave. Default `1G`. */
  heap?: string;
  /** SCONE_STACK (`--stack`), e.g. `1M`. Default `1M`. */
  stack?: string;
  /** SCONE_ALLOW_DLOPEN (`--dlopen`): 0 none, 1 authenticated libraries, 2 any (debug). Part of MRENCLAVE. Default 1. */
  dlopen?: 0 | 1 | 2;
  /** SCONE_FORK (`--fork`): 0 or 1. Default 0. */
  fork?: 0 | 1;
  /** SCONE_LOG (`--log`), e.g. `ERROR`, `WARNING`, `INFO`, `DEBUG`. Default `ERROR`. */
  log?: string;
}

/** Where `binaryImage` takes the enclave-ready binary (and libraries) from. */
export interface SconeBinaryImage {
  /** The image holding enclave-ready files: an opened Image or a reference (`oci:DIR[:TAG]`, `docker-archive:FILE`). */
  image: Image | string;
  /** Path of the binary in that image. Default: the same path as `binary`. */
  path?: string;
  /**
   * Further files (typically libraries) to copy: a path (same path in both images) or
   * `{from, to}`. They are copied as they are, after symlinks are followed in the source image.
   */
  files?: Array<string | { from: string; to: string }>;
}

/** Options of {@link scone}; CLI equivalents in brackets. */
export interface SconeOptions extends SconeRuntimeSettings {
  /** Session namespace, may be nested (`org/team`). [--namespace] */
  namespace: string;
  /** Session name inside the namespace. [--name] */
  name: string;
  /** Service name inside the session. Default `service`. [--service-name] */
  serviceName?: string;
  /**
   * The binary that runs in the enclave (absolute path in the image): the file the kernel executes
   * for the image's Entrypoint/Cmd (the program found through the image's PATH, or a script's `#!`
   * interpreter), symlinks resolved. Default: that file. Any other file is refused
   * (`SCONE_BINARY_MISMATCH`); the command keeps argv[0] as the image names it. [--binary]
   */
  binary?: string;
  /** Copy an enclave-ready binary from another image in place of the native one. [--binary-image] */
  binaryImage?: SconeBinaryImage;
  /**
   * The MRENCLAVE(s) of the enclave, when known (measured with SCONE's tools: `SCONE_HASH=1
   * <binary>`). Recorded for emitPolicy. [--mrenclave]
   */
  mrenclaves?: (string | Uint8Array)[];
}

/** The defaults sconify_image uses (and the chart's `scone.*` values). */
export const SCONE_DEFAULTS = {
  cas: 'scone-cas.cf',
  las: 'localhost:18766',
  heap: '1G',
  stack: '1M',
  dlopen: 1,
  fork: 0,
  log: 'ERROR',
  serviceName: 'service',
} as const;

/** Variables that tell the SCONE runtime where CAS is and which session to ask for; not application settings. */
export const SCONE_PLUMBING_VARIABLES = ['SCONE_CAS_ADDR', 'SCONE_LAS_ADDR', 'SCONE_CONFIG_ID'] as const;

const SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9_.~-]{1,128}$/;
const SERVICE = /^[A-Za-z0-9_.~-]{1,128}$/;
const SIZE = /^[0-9]+[KMGkmg]?$/;
const ADDRESS = /^[A-Za-z0-9_.:[\]-]+$/;
const LOG = /^[A-Za-z0-9_]{1,32}$/;

function bad(option: string, value: unknown, expected: string): never {
  throw new EnclavifyError('SCONE_BAD_OPTIONS', `scone: ${option} ${JSON.stringify(value)}: ${expected}`);
}

/** Checks a session name, namespace (may be nested) and service name; returns the config id. */
export function sconeConfigIdOf(namespace: string, name: string, serviceName: string = SCONE_DEFAULTS.serviceName): string {
  if (typeof namespace !== 'string' || namespace === '') bad('namespace', namespace, 'required');
  for (const seg of namespace.split('/')) if (!SEGMENT.test(seg)) bad('namespace', namespace, 'each segment must be 1-128 of A-Z a-z 0-9 _ . ~ - (not "." or "..")');
  if (!SEGMENT.test(name)) bad('name', name, 'must be 1-128 of A-Z a-z 0-9 _ . ~ - (not "." or "..")');
  if (!SERVICE.test(serviceName)) bad('serviceName', serviceName, 'must be 1-128 of A-Z a-z 0-9 _ . ~ -');
  return `${namespace}/${name}/${serviceName}`;
}

/** The settings with defaults applied, validated. */
export function resolveSettings(o: SconeRuntimeSettings): Required<SconeRuntimeSettings> {
  const s = {
    cas: o.cas ?? SCONE_DEFAULTS.cas,
    las: o.las ?? SCONE_DEFAULTS.las,
    heap: o.heap ?? SCONE_DEFAULTS.heap,
    stack: o.stack ?? SCONE_DEFAULTS.stack,
    dlopen: o.dlopen ?? SCONE_DEFAULTS.dlopen,
    fork: o.fork ?? SCONE_DEFAULTS.fork,
    log: o.log ?? SCONE_DEFAULTS.log,
  };
  if (!ADDRESS.test(s.cas)) bad('cas', s.cas, 'expected HOST or HOST:PORT');
  if (!ADDRESS.test(s.las)) bad('las', s.las, 'expected HOST or HOST:PORT');
  if (!SIZE.test(s.heap)) bad('heap', s.heap, 'expected a size such as 512M or 1G');
  if (!SIZE.test(s.stack)) bad('stack', s.stack, 'expected a size such as 256K or 1M');
  if (![0, 1, 2].includes(s.dlopen)) bad('dlopen', s.dlopen, 'expected 0, 1 or 2');
  if (![0, 1].includes(s.fork)) bad('fork', s.fork, 'expected 0 or 1');
  if (!LOG.test(s.log)) bad('log', s.log, 'expected a level such as ERROR, WARNING, INFO or DEBUG');
  return s;
}

/** The SCONE_* variables the image carries, in a fixed order. */
export function sconeImageEnv(settings: Required<SconeRuntimeSettings>, configId: string): Array<[string, string]> {
  return [
    ['SCONE_CAS_ADDR', settings.cas],
    ['SCONE_LAS_ADDR', settings.las],
    ['SCONE_CONFIG_ID', configId],
    ['SCONE_HEAP', settings.heap],
    ['SCONE_STACK', settings.stack],
    ['SCONE_ALLOW_DLOPEN', String(settings.dlopen)],
    ['SCONE_FORK', String(settings.fork)],
    ['SCONE_LOG', settings.log],
  ];
}
