/**
 * The attestation policy for the party that releases keys to a Gramine enclave after remote
 * attestation (a Gramine secret-provisioning / RA-TLS verifier): which enclaves it accepts
 * (MRENCLAVE list and/or MRSIGNER + ISV product id + minimum SVN), whether debug enclaves and which
 * platform TCB statuses are acceptable, the quote type, and which keys it then releases, by name.
 *
 * The policy never holds key material: key values stay in the verifier's key store. It is JSON,
 * validated against `schemas/gramine-policy.schema.json`; the format is described in
 * `docs/policy.md`.
 */
import { toHex } from './hex.js';
import { formatProblems, validateGramineAttestationPolicy } from './validate.js';
import { EnclavifyError } from '../oci/errors.js';

/** DCAP TCB statuses (EPID statuses map onto these; see docs/policy.md). Revoked is never accepted. */
export type TcbStatus =
  | 'UpToDate'
  | 'SWHardeningNeeded'
  | 'ConfigurationNeeded'
  | 'ConfigurationAndSWHardeningNeeded'
  | 'OutOfDate'
  | 'OutOfDateConfigurationNeeded';

/** Every acceptable status, in order of decreasing health; what `allowTcbVulnerabilities` allows. */
export const ALL_TCB_STATUSES: readonly TcbStatus[] = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
];

/** A released key: its Gramine name and, for reference, the encrypted mounts that use it. */
export interface GramineReleasedKey {
  name: string;
  mounts?: string[];
}

/** The policy document (see `schemas/gramine-policy.schema.json`). */
export interface GramineAttestationPolicy {
  kind: 'enclavify.gramine-attestation-policy';
  version: 1;
  name?: string;
  attestation: {
    type: 'dcap' | 'epid';
    mrenclave?: string[];
    signer?: { mrsigner: string; isvProdId: number; minIsvSvn: number };
    allowDebug: boolean;
    allowedTcbStatuses: TcbStatus[];
  };
  keys: GramineReleasedKey[];
  protectionManifestDigest?: string;
}

/** Options of {@link gramineAttestationPolicy}. */
export interface GramineAttestationPolicyOptions {
  /** A label, e.g. the image name. */
  name?: string;
  /** Quote type. Default `dcap`. */
  attestationType?: 'dcap' | 'epid';
  /** Accepted MRENCLAVEs (hex or raw 32 bytes). At least one of mrenclaves and signer. */
  mrenclaves?: (string | Uint8Array)[];
  /** Accepted signer: MRSIGNER, ISV product id, minimum ISV SVN (default 0). */
  signer?: { mrsigner: string | Uint8Array; isvProdId: number; minIsvSvn?: number };
  /** Accept debug enclaves (insecure). Default false. */
  allowDebug?: boolean;
  /** Accepted TCB statuses. Default `['UpToDate']`. */
  allowedTcbStatuses?: TcbStatus[];
  /** Accept every status except Revoked (insecure); overrides allowedTcbStatuses. */
  allowTcbVulnerabilities?: boolean;
  /** Keys released after attestation: names, or names with the mounts that use them. */
  keys: (string | GramineReleasedKey)[];
  /** Digest of the image's protection manifest: `sha256:<hex>` or bare hex. */
  protectionManifestDigest?: string;
}

/**
 * Builds and validates the policy. Throws naming the option for malformed hex, a missing
 * enclave identity, duplicate key names, or a key entry carrying anything but a name and mounts
 * (key values never go into the policy).
 */
export function gramineAttestationPolicy(options: GramineAttestationPolicyOptions): GramineAttestationPolicy {
  const o = options;
  const type = o.attestationType ?? 'dcap';
  if (type !== 'dcap' && type !== 'epid') throw new EnclavifyError('BAD_POLICY', `attestationType ${JSON.stringify(type)}: expected "dcap" or "epid"`);
  const mrenclave = [...new Set((o.mrenclaves ?? []).map((m, i) => toHex(m, 32, `mrenclaves[${i}]`)))];
  if (mrenclave.length === 0 && !o.signer) throw new EnclavifyError('BAD_POLICY', 'mrenclaves/signer: give at least one MRENCLAVE or a signer');

  const statuses: TcbStatus[] = o.allowTcbVulnerabilities ? [...ALL_TCB_STATUSES] : [...new Set(o.allowedTcbStatuses ?? ['UpToDate' as const])];
  for (const s of statuses) {
    if (!ALL_TCB_STATUSES.includes(s)) throw new EnclavifyError('BAD_POLICY', `allowedTcbStatuses: unknown or unacceptable status ${JSON.stringify(s)}`);
  }
  const signer = o.signer && {
    mrsigner: toHex(o.signer.mrsigner, 32, 'signer.mrsigner'),
    isvProdId: u16(o.signer.isvProdId, 'signer.isvProdId'),
    minIsvSvn: u16(o.signer.minIsvSvn ?? 0, 'signer.minIsvSvn'),
  };
  const attestation: GramineAttestationPolicy['attestation'] = {
    type,
    ...(mrenclave.length ? { mrenclave } : {}),
    ...(signer ? { signer } : {}),
    allowDebug: o.allowDebug === true,
    allowedTcbStatuses: statuses,
  };

  const policy: GramineAttestationPolicy = { kind: 'enclavify.gramine-attestation-policy', version: 1 } as GramineAttestationPolicy;
  if (o.name !== undefined) policy.name = o.name;
  policy.attestation = attestation;
  policy.keys = releasedKeys(o.keys);
  if (o.protectionManifestDigest !== undefined) {
    const hex = o.protectionManifestDigest.replace(/^sha256:/, '');
    policy.protectionManifestDigest = `sha256:${toHex(hex, 32, 'protectionManifestDigest')}`;
  }

  const problems = validateGramineAttestationPolicy(policy);
  if (problems.length) throw new EnclavifyError('BAD_POLICY', `Gramine attestation policy: invalid:\n${formatProblems(problems, '(policy)')}`);
  return policy;
}

/** The policy as pretty JSON with a final newline. */
export function gramineAttestationPolicyToJson(policy: GramineAttestationPolicy): string {
  return JSON.stringify(policy, null, 2) + '\n';
}

/**
 * The `RA_TLS_*` environment for Gramine's stock RA-TLS / secret-provisioning verifier
 * (`secret_prov_verify_dcap.so`, `ra_tls_verify_dcap.so`) that enforces exactly this policy.
 * Throws when the stock verifier cannot express it (more than one MRENCLAVE, a status set that its
 * flags cannot produce, EPID) -- such a policy needs a verifier that reads the policy itself.
 */
export function raTlsVerifierEnv(policy: GramineAttestationPolicy): Record<string, string> {
  const a = policy.attestation;
  if (a.type !== 'dcap') throw new EnclavifyError('BAD_POLICY', 'raTlsVerifierEnv: only DCAP policies map onto the RA_TLS_* variables');
  if ((a.mrenclave?.length ?? 0) > 1) {
    throw new EnclavifyError('BAD_POLICY', 'raTlsVerifierEnv: the stock verifier accepts one MRENCLAVE; this policy lists several');
  }
  const allowed = new Set(a.allowedTcbStatuses);
  const outdated = allowed.has('OutOfDate') || allowed.has('OutOfDateConfigurationNeeded');
  const hwConfig = allowed.has('ConfigurationNeeded') || allowed.has('ConfigurationAndSWHardeningNeeded') || allowed.has('OutOfDateConfigurationNeeded');
  const swHardening = allowed.has('SWHardeningNeeded') || allowed.has('ConfigurationAndSWHardeningNeeded');
  // What Gramine accepts with these flags; it must be exactly the policy's set.
  const implied = new Set<TcbStatus>(['UpToDate']);
  if (swHardening) implied.add('SWHardeningNeeded');
  if (hwConfig) implied.add('ConfigurationNeeded');
  if (hwConfig && swHardening) implied.add('ConfigurationAndSWHardeningNeeded');
  if (outdated) implied.add('OutOfDate');
  if (outdated && hwConfig) implied.add('OutOfDateConfigurationNeeded');
  if (implied.size !== allowed.size || [...implied].some((s) => !allowed.has(s))) {
    throw new EnclavifyError(
      'BAD_POLICY',
      `raTlsVerifierEnv: the stock verifier's flags would accept ${[...implied].join(', ')}; the policy accepts ${[...allowed].join(', ')}`,
    );
  }
  const env: Record<string, string> = {
    RA_TLS_MRENCLAVE: a.mrenclave?.[0] ?? 'any',
    RA_TLS_MRSIGNER: a.signer?.mrsigner ?? 'any',
    RA_TLS_ISV_PROD_ID: a.signer ? String(a.signer.isvProdId) : 'any',
    RA_TLS_ISV_SVN: a.signer ? String(a.signer.minIsvSvn) : 'any',
  };
  if (a.allowDebug) env.RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE = '1';
  if (outdated) env.RA_TLS_ALLOW_OUTDATED_TCB_INSECURE = '1';
  if (hwConfig) env.RA_TLS_ALLOW_HW_CONFIG_NEEDED = '1';
  if (swHardening) env.RA_TLS_ALLOW_SW_HARDENING_NEEDED = '1';
  return env;
}

function u16(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new EnclavifyError('BAD_POLICY', `${what}: expected an integer 0..65535`);
  return n;
}

function releasedKeys(keys: (string | GramineReleasedKey)[]): GramineReleasedKey[] {
  if (!Array.isArray(keys)) throw new EnclavifyError('BAD_POLICY', 'keys: expected a list of key names');
  const seen = new Map<string, number>();
  return keys.map((k, i) => {
    const entry = typeof k === 'string' ? { name: k } : k;
    if (typeof entry !== 'object' || entry === null) throw new EnclavifyError('BAD_POLICY', `keys[${i}]: expected a key name`);
    const extra = Object.keys(entry).filter((f) => f !== 'name' && f !== 'mounts');
    if (extra.length) {
      // Do not echo the values: a caller may have put the key itself there.
      throw new EnclavifyError('BAD_POLICY', `keys[${i}]: only "name" and "mounts" are allowed (got ${extra.map((f) => JSON.stringify(f)).join(', ')}); key values never go into the policy`);
    }
    if (typeof entry.name !== 'string') throw new EnclavifyError('BAD_POLICY', `keys[${i}]: name must be a string`);
    if (/^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{64})$/.test(entry.name)) {
      throw new EnclavifyError('BAD_POLICY', `keys[${i}]: the name looks like a hex key; give the key's name, key values never go into the policy`);
    }
    const first = seen.get(entry.name);
    if (first !== undefined) throw new EnclavifyError('BAD_POLICY', `keys[${i}]: duplicate key name (same as keys[${first}])`);
    seen.set(entry.name, i);
    const out: GramineReleasedKey = { name: entry.name };
    if (entry.mounts !== undefined) out.mounts = [...entry.mounts];
    return out;
  });
}
