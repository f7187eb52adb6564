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
}

/** The bundle: artifacts under `trustee/`, and the init data for the chart. */
export interface TrusteeBundle {
  artifacts: Artifact[];
  initData: InitData;
  /** KBS resource paths the policy releases. */
  resources: string[];
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The KBS resource policy (Rego, `package policy`). */
export function resourcePolicy(tee: Tee, resources: readonly string[], image: string): string {
  return `# KBS resource policy for ${image}, written by enclavify.
# Releases only the resources below, only to an affirming attestation of a ${tee} guest.
# Input and data as Trustee passes them to resource policies (confidentialcontainers.org,
# content/en/docs/attestation/policies/_index.md): the EAR token's
# input.submods.cpu0["ear.status"] (affirming | warning | contraindicated | none) and the parsed
# evidence under input.submods.cpu0["ear.veraison.annotated-evidence"].<tee>; data.plugin and
# data["resource-path"]. Check by hand with: opa eval -d resource-policy.rego -i token.json \\
#   --data data.json 'data.policy.allow'
package policy

import rego.v1

default allow := false

resources := {${resources.map((r) => JSON.stringify(r)).join(', ')}}

allow if {
	data.plugin == "resource"
	data["resource-path"] in resources
	input.submods.cpu0["ear.status"] == "affirming"
	input.submods.cpu0["ear.veraison.annotated-evidence"].${EVIDENCE[tee]}
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
    { path: 'trustee/resource-policy.rego', data: resourcePolicy(o.tee, resources, o.image), description: 'KBS resource policy' },
    { path: 'trustee/set-resources.sh', data: script, description: 'kbs-client commands that load the bundle' },
    { path: 'trustee/initdata.toml', data: init.toml, description: `init data (${init.algorithm} ${init.digest})` },
    { path: 'trustee/initdata.digest', data: `${init.algorithm}:${init.digest}\n`, description: 'digest of the init data' },
    { path: 'trustee/initdata.annotation', data: init.annotation + '\n', description: 'gzip+base64 init data: the cc_init_data pod annotation' },
  ];
  return { artifacts, initData: init, resources };
}
