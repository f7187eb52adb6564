/**
 * README.md of the generated chart: what it deploys, how to install it, and a table of every
 * value with its default and description.
 */
import { isMap, type Value, type ValueMap } from './go-semantics.js';
import type { Runtime } from './options.js';
import type { ValueDescriptions } from './values.js';

/** One row of the values table. */
export interface ValueRow {
  key: string;
  default: Value;
  description: string;
}

/**
 * Rows of the values table: one per described key whose value is not a mapping of further
 * described keys, one per undocumented leaf (e.g. added by `--k8s-helm-set`).
 */
export function valueRows(values: ValueMap, descriptions: ValueDescriptions): ValueRow[] {
  const rows: ValueRow[] = [];
  const walk = (v: Value, path: string): void => {
    const describedChildren = isMap(v) && Object.keys(v).some((k) => hasDescribedPrefix(descriptions, `${path}.${k}`));
    if (isMap(v) && Object.keys(v).length > 0 && (describedChildren || !descriptions.has(path))) {
      for (const k of Object.keys(v)) walk(v[k], `${path}.${k}`);
      return;
    }
    rows.push({ key: path, default: v, description: descriptions.get(path) ?? '' });
  };
  for (const k of Object.keys(values)) walk(values[k], k);
  return rows;
}

function hasDescribedPrefix(d: ValueDescriptions, path: string): boolean {
  for (const k of d.keys()) if (k === path || k.startsWith(path + '.')) return true;
  return false;
}

function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The chart's README.md text. */
export function chartReadme(args: {
  chartName: string;
  chartVersion: string;
  appVersion: string;
  runtime: Runtime;
  image: string;
  values: ValueMap;
  descriptions: ValueDescriptions;
}): string {
  const { chartName, runtime } = args;
  const runtimeName = runtime === 'scone' ? 'SCONE' : 'Gramine';
  const prereq =
    runtime === 'scone'
      ? `- An SGX device plugin matching \`useSGXDevPlugin\` (\`scone\` by default: SCONE's plugin, resource \`sgx.k8s.io/sgx\`).
- SCONE's local attestation service (LAS) as a DaemonSet on port 18766 of every SGX node (or set \`scone.las\`).
- The CAS named by \`scone.cas\`, holding the policy \`scone.configID\`.`
      : `- An SGX device plugin matching \`useSGXDevPlugin\` (\`intel\` by default: Intel's SGX device plugin).
- For DCAP remote attestation: an AESM service able to produce quotes (on the host, see \`gramine.aesmdSocketDir\`) and a quote provider configured to reach a PCCS.
- The secret-provisioning service (\`gramine.secretProvision.servers\`) when encrypted mounts get their keys after attestation.`;
  const rows = valueRows(args.values, args.descriptions)
    .map((r) => `| \`${cell(r.key)}\` | \`${cell(JSON.stringify(r.default))}\` | ${cell(r.description)} |`)
    .join('\n');
  return `# ${chartName}

Helm chart for the confidential image \`${args.image}\`, converted by enclavify to run in an
Intel SGX enclave with ${runtimeName}. Chart version ${args.chartVersion}, app version ${args.appVersion || '(none)'}.

## Prerequisites

${prereq}

## Install

\`\`\`sh
helm install my-release ./${chartName}
helm install my-release ./${chartName} --set workloadType=statefulset --set replicaCount=2
helm template my-release ./${chartName}   # print the manifests
\`\`\`

Resources are named \`<release>-${chartName}\` (\`fullnameOverride\` replaces it).

## Values

| Key | Default | Description |
|---|---|---|
${rows}
`;
}
