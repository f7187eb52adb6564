/**
 * The Trustee bundle of a CoCo image: what an operator loads into the KBS so that the guest gets
 * the image's key-encryption key (KEK) after attestation, and nothing else. Written, never run:
 * `set-resources.sh` holds the `kbs-client` commands.
 */
import { EnclavifyError } from '../oci/errors.js';
import { parseKbsId } from '../ocicrypt/keyprovider-aa.js';
import { initData, type InitData, type InitDataAlgorithm } from './initdata.js';
import type { Artifact } from '../transforms/pipeline.js';

/** TEEs a CoCo image is made for (`--tee`). */
export const TEES = ['tdx', 'snp', 'se', 'coco-dev'] as const;
export type Tee = (typeof TEES)[number];

/** The Kata runtime class of each TEE. */
export const RUNTIME_CLASS: Record<Tee, string> = { tdx: 'kata-qemu-tdx', snp: 'kata-qemu-snp', se: 'kata-qemu-se', 'coco-dev': 'kata-qemu-coco-dev' };

/** The name of each TEE's parsed evidence in Trustee's EAR token (`ear.veraison.annotated-evidence.<tee>`). */
const EVIDENCE: Record<Tee, string> = { tdx: 'tdx', snp: 'snp', se: 'se', 'coco-dev': 'sample' };

/**
 * Where each TEE's verifier in Trustee puts the launch measurement, and how long the field holding
 * the init-data digest is (the verifier zero-pads or truncates the expected digest to it:
 * `regularize_data` in deps/verifier/src/lib.rs). Undefined `initDataBytes`: the TEE does not bind
 * init data into its evidence (IBM SE reports no init-data claim), so the policy cannot check it.
 */
const CLAIMS: Record<Tee, { measurement: string; measurementHexChars?: number; initDataBytes?: number; initDataFullDigest?: boolean }> = {
  tdx: { measurement: 'quote.body.mr_td', measurementHexChars: 96, initDataBytes: 48 },
  snp: { measurement: 'measurement', measurementHexChars: 96, initDataBytes: 32 },
  se: { measurement: 'tag', measurementHexChars: 32 },
  // The sample verifier (no TEE) copies the expected digest, whole, into its init_data claim.
  'coco-dev': { measurement: 'launch_digest', initDataFullDigest: true },
};

/** Options of {@link trusteeBundle}. */
export interface TrusteeBundleOptions {
  tee: Tee;
  /** The KEK's KBS resource id (`kbs:///REPO/TYPE/TAG`). */
  kid: string;
  kek: Uint8Array;
  /** A short name for the image's resources (e.g. `app-1`). */
  name: string;
  /** The image reference, for comments. */
  image: string;
  kbsUrl: string;
  kbsCert?: string | undefined;
  initDataAlgorithm?: InitDataAlgorithm | undefined;
  /** Accepted launch measurements (`--measurement`); see {@link PolicyReferenceValues}. */
  measurements?: readonly string[] | undefined;
}

/** The bundle: artifacts under `trustee/`, and the init data for the chart. */
export interface TrusteeBundle {
  artifacts: Artifact[];
  initData: InitData;
  /** KBS resource paths the policy releases. */
  resources: string[];
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Reference values the resource policy requires, beyond an affirming attestation of the TEE. */
export interface PolicyReferenceValues {
  /** The init data's digest (hex) and algorithm: the guest must have booted with exactly this init data. */
  initData?: { algorithm: string; digest: string } | undefined;
  /**
   * Accepted launch measurements (`--measurement`, any one of them): TDX MRTD and SNP MEASUREMENT
   * as 96 hex digits, the IBM SE header tag as 32, the coco-dev sample's launch digest as given.
   */
  measurements?: readonly string[] | undefined;
}

/** Checks `--measurement` values against the TEE's claim format; returns them normalised (lower-case hex). */
export function checkMeasurements(tee: Tee, values: readonly string[]): string[] {
  const want = CLAIMS[tee].measurementHexChars;
  return values.map((v) => {
    const m = v.trim().toLowerCase().replace(/^0x/, '');
    if (want ? !new RegExp(`^[0-9a-f]{${want}}$`).test(m) : !/^[A-Za-z0-9+/=._-]{1,512}$/.test(v)) {
      throw new EnclavifyError('BAD_OPTIONS', `--measurement ${JSON.stringify(v.length > 120 ? v.slice(0, 120) + '…' : v)}: a ${tee} measurement (${CLAIMS[tee].measurement}) is ${want ? `${want} hex digits` : 'a string of letters, digits and +/=._-'}`);
    }
    return want ? m : v;
  });
}

/** A digest zero-padded or truncated to `length` bytes, as Trustee's verifiers compare it with an evidence field (`regularize_data`). */
export function regularizeDigest(digest: Uint8Array, length: number): Buffer {
  return Buffer.concat([digest, Buffer.alloc(Math.max(0, length - digest.length))]).subarray(0, length);
}

/** The digest as the TEE's verifier reports it: zero-padded or truncated to the evidence field, hex and base64. */
function initDataClaimValues(tee: Tee, digestHex: string): string[] {
  const c = CLAIMS[tee];
  const digest = Buffer.from(digestHex, 'hex');
  const bytes = c.initDataBytes ? regularizeDigest(digest, c.initDataBytes) : digest;
  // Current verifiers report hex (TDX, SNP) or base64 (sample); SNP reported base64 in earlier releases.
  return [...new Set(c.initDataFullDigest ? [bytes.toString('base64')] : [bytes.toString('hex'), bytes.toString('base64')])];
}

const regoSet = (xs: readonly string[]) => `{${xs.map((x) => JSON.stringify(x)).join(', ')}}`;

/**
 * The KBS resource policy (Rego, `package policy`): only these resources, only to an affirming
 * attestation of this TEE, and only when the evidence carries the given init-data digest and one
 * of the given measurements. Golden text: no Rego evaluator runs here (docs/coco.md: `opa eval`).
 */
export function resourcePolicy(tee: Tee, resources: readonly string[], image: string, reference: PolicyReferenceValues = {}): string {
  const c = CLAIMS[tee];
  const ev = EVIDENCE[tee];
  const bound = c.initDataBytes !== undefined || c.initDataFullDigest === true;
  const init = reference.initData && bound ? initDataClaimValues(tee, reference.initData.digest) : undefined;
  const measurements = reference.measurements?.length ? checkMeasurements(tee, reference.measurements) : undefined;
  const lines = [
    'data.plugin == "resource"',
    'data["resource-path"] in resources',
    'input.submods.cpu0["ear.status"] == "affirming"',
    'evidence := input.submods.cpu0["ear.veraison.annotated-evidence"]',
    `evidence.${ev}`,
    ...(init ? ['evidence.init_data in init_data'] : []),
    ...(measurements ? [`evidence.${ev}.${c.measurement} in measurements`] : []),
  ];
  const initNote = reference.initData
    ? init
      ? `# init_data: the ${reference.initData.algorithm} digest of trustee/initdata.toml as the ${tee} verifier reports it\n# (${c.initDataFullDigest ? 'the whole digest, base64' : `${c.initDataBytes} bytes, zero-padded or truncated; hex, or base64 as in earlier releases`}).\n`
      : `# init data is NOT checked: Trustee's ${tee} verifier reports no init-data claim (docs/coco.md).\n`
    : '';
  return `# KBS resource policy for ${image}, written by enclavify.
# Releases only the resources below, only to an affirming attestation of a ${tee} guest${init ? ' booted\n# with this image\'s init data' : ''}${measurements ? `${init ? ' and' : ''} with one of the given launch measurements` : ''}.
# Input and data as Trustee passes them to resource policies (confidentialcontainers.org,
# content/en/docs/attestation/policies/_index.md): the EAR token's
# input.submods.cpu0["ear.status"] (affirming | warning | contraindicated | none) and the annotated
# evidence input.submods.cpu0["ear.veraison.annotated-evidence"]; data.plugin and data["resource-path"].
# Claim paths, from Trustee's sources (github.com/confidential-containers/trustee):
#   attestation-service/src/ear_token/broker.rs (transform_claims): the verifier's init_data claim
#     moves to annotated-evidence.init_data, the TEE's other claims sit under annotated-evidence.<tee>;
#   deps/verifier/src/tdx/claims.rs: init_data = hex(MRCONFIGID), tdx.quote.body.mr_td;
#   deps/verifier/src/snp/mod.rs: init_data = hex(HOSTDATA), snp.measurement;
#   deps/verifier/src/se/ibmse.rs: se.tag (no init-data claim);
#   deps/verifier/src/sample/mod.rs: init_data = base64(expected digest), sample.launch_digest.
# Check by hand with: opa eval -d resource-policy.rego -i token.json \\
#   --data data.json 'data.policy.allow'
package policy

import rego.v1

default allow := false

resources := ${regoSet(resources)}
${initNote}${init ? `init_data := ${regoSet(init)}\n` : ''}${measurements ? `measurements := ${regoSet(measurements)}\n` : ''}
allow if {
${lines.map((l) => `\t${l}`).join('\n')}
}
`;
}

/** Builds the bundle's files. */
export function trusteeBundle(o: TrusteeBundleOptions): TrusteeBundle {
  if (!/^[A-Za-z0-9._-]+$/.test(o.name)) throw new EnclavifyError('BAD_OPTIONS', `CoCo resource name ${JSON.stringify(o.name)} must be letters, digits, ".", "_" or "-"`);
  const kekPath = parseKbsId(o.kid, 'CoCo key id');
  const policyPath = `default/security-policy/${o.name}`;
  const securityPolicy = JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: {} }, null, 2) + '\n';
  const init = initData({ kbsUrl: o.kbsUrl, kbsCert: o.kbsCert, imageSecurityPolicyUri: `kbs:///${policyPath}`, algorithm: o.initDataAlgorithm });
  const resources = [kekPath, policyPath];
  const script = `#!/bin/sh
# Loads the resources of ${o.image} into a Trustee KBS (written by enclavify, never run by it).
# KBS_URL: the KBS admin endpoint; KBS_ADMIN_KEY: the admin's Ed25519 private key.
set -eu
cd "$(dirname "$0")"
: "\${KBS_URL:=${o.kbsUrl}}"
: "\${KBS_ADMIN_KEY:?set KBS_ADMIN_KEY to the KBS admin private key}"
kbs-client --url "$KBS_URL" config --auth-private-key "$KBS_ADMIN_KEY" set-resource --path ${shq(kekPath)} --resource-file ${shq('kbs/' + kekPath)}
kbs-client --url "$KBS_URL" config --auth-private-key "$KBS_ADMIN_KEY" set-resource --path ${shq(policyPath)} --resource-file ${shq('kbs/' + policyPath)}
kbs-client --url "$KBS_URL" config --auth-private-key "$KBS_ADMIN_KEY" set-resource-policy --policy-file resource-policy.rego
`;
  const artifacts: Artifact[] = [
    { path: `trustee/kbs/${kekPath}`, data: o.kek, secret: true, description: `the image's key-encryption key, KBS resource ${o.kid}` },
    { path: `trustee/kbs/${policyPath}`, data: securityPolicy, description: 'the image security policy, as a KBS resource' },
    { path: 'trustee/security-policy.json', data: securityPolicy, description: 'image security policy (containers-policy.json): insecureAcceptAnything until signatures exist' },
    { path: 'trustee/resource-policy.rego', data: resourcePolicy(o.tee, resources, o.image, { initData: init, measurements: o.measurements }), description: 'KBS resource policy' },
    { path: 'trustee/set-resources.sh', data: script, description: 'kbs-client commands that load the bundle' },
    { path: 'trustee/initdata.toml', data: init.toml, description: `init data (${init.algorithm} ${init.digest})` },
    { path: 'trustee/initdata.digest', data: `${init.algorithm}:${init.digest}\n`, description: 'digest of the init data' },
    { path: 'trustee/initdata.annotation', data: init.annotation + '\n', description: 'gzip+base64 init data: the cc_init_data pod annotation' },
  ];
  return { artifacts, initData: init, resources };
}
