/**
 * The chart's values: built from {@link ChartOptions}, documented key by key (the descriptions
 * feed the values.yaml comments and the README table), and checked the way the templates check
 * them (`required` / `fail`), with the same messages.
 */
import { yaml } from '../oci/lazy-deps.js';
import { isMap, toGoString, type Value, type ValueMap } from './go-semantics.js';
import { toDns1123Label, volumeValuesKey } from './names.js';
import {
  SGX_DEVICE_MODES,
  WORKLOAD_TYPES,
  type ChartOptions,
  type ChartVolume,
  type SgxDeviceMode,
} from './options.js';
import { EnclavifyError } from '../oci/errors.js';

/** A volume as the chart sees it: Kubernetes volume name, values key, and whether it is encrypted. */
export interface ChartVolumeEntry {
  /** DNS-1123 name of the pod volume (and volumeClaimTemplate). */
  volumeName: string;
  /** Top-level values key, `volume<name-lowercase>`. */
  valuesKey: string;
  /** Mount path in the container. */
  path: string;
  /** From `--volume` (encrypted by the runtime) rather than `--k8s-helm-volume`. */
  encrypted: boolean;
}

/** Descriptions of values keys (dotted paths), in the order they appear in values.yaml. */
export type ValueDescriptions = Map<string, string>;

/** Port numbers must be integers in 1..65535. */
function checkPort(p: unknown, what: string): number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
    throw new EnclavifyError('BAD_CHART', `${what}: ${JSON.stringify(p)} is not a TCP port (1-65535)`);
  }
  return p;
}

/** Lists the volumes of the options with their Kubernetes names; throws on duplicates. */
export function chartVolumes(options: ChartOptions): ChartVolumeEntry[] {
  const all: [ChartVolume, boolean][] = [
    ...(options.volumes ?? []).map((v): [ChartVolume, boolean] => [v, false]),
    ...(options.encryptedVolumes ?? []).map((v): [ChartVolume, boolean] => [v, true]),
  ];
  const byName = new Map<string, ChartVolumeEntry>();
  const byKey = new Set<string>();
  for (const [v, encrypted] of all) {
    const flag = encrypted ? '--volume' : '--k8s-helm-volume';
    if (!v.path || !v.path.startsWith('/')) throw new EnclavifyError('BAD_CHART', `${flag} ${v.name}: mount path ${JSON.stringify(v.path)} is not absolute`);
    const volumeName = toDns1123Label(v.name, `${flag} name`);
    // the sgx-*/aesmd-* names are used by the chart's own hostPath volumes
    if (/^(sgx-enclave|sgx-provision|aesmd-socket)$/.test(volumeName)) throw new EnclavifyError('BAD_CHART', `${flag} ${v.name}: the name ${volumeName} is reserved by the chart`);
    const valuesKey = volumeValuesKey(v.name);
    if (byName.has(volumeName) || byKey.has(valuesKey)) {
      throw new EnclavifyError('BAD_CHART', `${flag} ${v.name}: another volume already uses the name ${volumeName} (or values key ${valuesKey})`);
    }
    byKey.add(valuesKey);
    byName.set(volumeName, { volumeName, valuesKey, path: v.path, encrypted });
  }
  return [...byName.values()];
}

/** The default SGX device mode of a runtime. */
export function defaultSgxDevice(runtime: ChartOptions['runtime']): SgxDeviceMode {
  return runtime === 'scone' ? 'scone' : 'intel';
}

/**
 * Builds the default values (before `--k8s-helm-set` overrides) and their descriptions.
 * Key order is the order of values.yaml.
 */
export function buildValues(options: ChartOptions, volumes: ChartVolumeEntry[]): { values: ValueMap; descriptions: ValueDescriptions } {
  const d: ValueDescriptions = new Map();
  const v: ValueMap = {};
  const put = (path: string, value: Value | undefined, description: string): void => {
    d.set(path, description);
    if (value === undefined) return;
    const keys = path.split('.');
    let cur = v;
    for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as ValueMap;
    cur[keys[keys.length - 1]] = value;
  };
  const runtime = options.runtime;
  if (runtime !== 'scone' && runtime !== 'gramine' && runtime !== 'coco') throw new EnclavifyError('BAD_CHART', `chart runtime must be "gramine", "scone" or "coco", got ${JSON.stringify(runtime)}`);
  if (runtime === 'coco' && !options.coco) throw new EnclavifyError('BAD_CHART', 'a CoCo chart needs its settings (TEE, runtime class, init data)');
  if (!options.image) throw new EnclavifyError('BAD_CHART', 'chart image is required (the confidential image reference)');
  const workloadType = options.workloadType ?? 'deployment';
  if (!WORKLOAD_TYPES.includes(workloadType)) throw new EnclavifyError('BAD_CHART', `--k8s-helm-workload-type must be one of ${WORKLOAD_TYPES.join(', ')}, got ${JSON.stringify(workloadType)}`);
  const device = options.sgxDevice ?? defaultSgxDevice(runtime);
  if (runtime !== 'coco' && !SGX_DEVICE_MODES.includes(device)) throw new EnclavifyError('BAD_CHART', `SGX device mode must be one of ${SGX_DEVICE_MODES.join(', ')}, got ${JSON.stringify(device)}`);

  put('image', options.image, 'Confidential image to run (required).');
  // CoCo: the guest pulls and decrypts the image itself; a node's cached copy must never stand in.
  put('imagePullPolicy', options.imagePullPolicy ?? (runtime === 'coco' ? 'Always' : 'IfNotPresent'), runtime === 'coco' ? 'Image pull policy (Always, as CoCo recommends for encrypted images).' : 'Image pull policy.');
  put('imagePullSecrets', (options.imagePullSecrets ?? []).map((name) => ({ name })), 'Secrets for pulling the image, as `[{name: SECRET}]`.');
  put('workloadType', workloadType, 'Workload kind: `deployment`, `statefulset`, `daemonset` or `job`.');
  put('replicaCount', options.replicaCount ?? 1, 'Number of pods (deployment and statefulset).');
  put('nameOverride', '', 'Replaces the chart name in resource names and the `app.kubernetes.io/name` label.');
  put('fullnameOverride', '', 'Replaces the full resource name (`<release>-<chart>`).');
  put('command', options.command ?? [], 'Container command; empty keeps the image entrypoint (the enclave loader).');
  put('args', options.args ?? [], 'Container arguments; empty keeps the image default.');
  put('env', { ...(options.env ?? {}) }, 'Extra environment variables (`NAME: value`), after the runtime variables (so they override them).');
  put('extraEnv', [], 'Extra environment entries in Kubernetes form (e.g. `valueFrom` a Secret).');
  if (runtime === 'coco') {
    const c = options.coco!;
    put('runtimeClassName', c.runtimeClassName, 'Kata runtime class of the TEE (required).');
    put('coco', undefined, 'Confidential Containers settings.');
    put('coco.tee', c.tee, 'The TEE, given to the container as ENCLAVIFY_TEE.');
  }
  if (runtime !== 'coco') put('useSGXDevPlugin', device, 'How pods get SGX: `scone` (SCONE device plugin), `intel` (Intel device plugin), `azure` (AKS add-on) or `disabled` (hostPath devices, privileged; development only).');
  if (runtime !== 'coco') put('sgxEpcMem', options.sgxEpcMemMiB ?? 8, 'EPC to request in MiB (`azure`: `kubernetes.azure.com/sgx_epc_mem_in_MiB`; `intel`: `sgx.intel.com/epc`).');
  if (runtime !== 'coco') put('sgxProvision', options.dcap ?? runtime === 'gramine', 'With `intel`: also request `sgx.intel.com/provision` (`/dev/sgx_provision`, needed for DCAP quotes).');

  if (runtime === 'scone') {
    const s = options.scone ?? {};
    put('scone', undefined, 'SCONE run-time settings, passed as `SCONE_*` environment variables.');
    put('scone.cas', s.cas ?? 'scone-cas.cf', 'CAS address (`SCONE_CAS_ADDR`); empty: not set.');
    put('scone.las', s.las ?? '', 'LAS address (`SCONE_LAS_ADDR`); empty: the node IP (`status.hostIP`), where the LAS DaemonSet listens.');
    put('scone.configID', s.configID ?? '', 'Policy to run, `<namespace>/<session>/<service>` (`SCONE_CONFIG_ID`); empty: not set.');
    put('scone.allowDlOpen', s.allowDlOpen ?? 1, '`SCONE_ALLOW_DLOPEN` (0, 1 or 2); changes MRENCLAVE, must match the policy; empty: not set.');
    put('scone.heap', s.heap ?? '1G', '`SCONE_HEAP`; changes MRENCLAVE, must match the policy; empty: not set.');
    put('scone.stack', s.stack ?? '1M', '`SCONE_STACK`; empty: not set.');
    put('scone.fork', s.fork ?? 0, '`SCONE_FORK` (0 or 1); empty: not set.');
    put('scone.log', s.log ?? 'ERROR', '`SCONE_LOG`; empty: not set.');
    put('scone.printVersion', s.printVersion ?? false, 'Set `SCONE_VERSION=1` (print configuration and enclave hash at start).');
  } else if (runtime === 'gramine') {
    const g = options.gramine ?? {};
    const sp = g.secretProvision ?? {};
    put('gramine', undefined, 'Gramine run-time settings.');
    put('gramine.loader', g.loader ?? 'sgx', '`sgx` runs in an enclave; `direct` runs without SGX (no protection, testing only; no SGX resources are requested).');
    put('gramine.secretProvision', undefined, 'Secret provisioning after attestation (Gramine RA-TLS `secret_prov`); the manifest must pass these variables through.');
    put('gramine.secretProvision.servers', sp.servers ?? '', 'Secret provisioning servers, `host:port[;host:port]` (`SECRET_PROVISION_SERVERS`); empty: not set.');
    put('gramine.secretProvision.setKey', sp.setKey ?? '', 'Encrypted-mount key to set from the secret (`SECRET_PROVISION_SET_KEY`); empty: not set.');
    put('gramine.secretProvision.caChainPath', sp.caChainPath ?? '', 'CA certificate of the servers, inside the image (`SECRET_PROVISION_CA_CHAIN_PATH`); empty: not set.');
    put('gramine.aesmdSocketDir', g.aesmdSocketDir ?? '', 'Host directory with the AESM socket (e.g. `/var/run/aesmd`), mounted at `/var/run/aesmd` for quotes; empty: not mounted.');
  }

  const ports = (options.expose ?? []).map((p) => checkPort(p, '--k8s-helm-expose'));
  if (new Set(ports).size !== ports.length) throw new EnclavifyError('BAD_CHART', `--k8s-helm-expose: port listed twice in ${ports.join(', ')}`);
  if (ports.length) {
    const [first, ...rest] = ports;
    put('service', undefined, 'Kubernetes Service for the exposed ports.');
    put('service.enabled', true, 'Create the Service.');
    put('service.type', options.serviceSettings?.type ?? 'ClusterIP', 'Service type.');
    put('service.port', checkPort(options.serviceSettings?.port ?? first, 'service port'), 'Service port forwarded to `targetPort`.');
    put('service.targetPort', first, 'Port the application listens on (`--k8s-helm-expose`).');
    put('service.extraPorts', rest, 'Further exposed ports (same number on the Service and the container).');
  }

  for (const vol of volumes) {
    const opt = [...(options.volumes ?? []), ...(options.encryptedVolumes ?? [])].find((o) => volumeValuesKey(o.name) === vol.valuesKey);
    const p = opt?.persistence ?? {};
    const k = vol.valuesKey;
    put(k, undefined, `${vol.encrypted ? 'Encrypted' : 'Plain'} volume \`${vol.volumeName}\`${vol.encrypted ? ' (contents are encrypted by the runtime)' : ''}.`);
    put(`${k}.mountPath`, vol.path, 'Mount path in the container (required).');
    put(`${k}.persistence.enabled`, p.enabled ?? false, 'Back the volume by a PersistentVolumeClaim (statefulset: a volumeClaimTemplate); false: an emptyDir.');
    put(`${k}.persistence.existingClaim`, p.existingClaim ?? '', 'Use this existing claim instead of creating one.');
    put(`${k}.persistence.storageClass`, p.storageClass ?? '', 'Storage class of the created claim; `-` sets `storageClassName: ""`; empty: cluster default.');
    put(`${k}.persistence.size`, p.size ?? '1Gi', 'Size of the created claim.');
    put(`${k}.persistence.accessMode`, p.accessMode ?? 'ReadWriteOnce', 'Access mode of the created claim.');
  }

  put('job', undefined, 'Job settings (workloadType `job`).');
  put('job.backoffLimit', 6, 'Retries before the Job is marked failed.');
  put('job.restartPolicy', 'Never', 'Pod restart policy of the Job (`Never` or `OnFailure`).');
  put('podAnnotations', runtime === 'coco' ? { 'io.katacontainers.config.hypervisor.cc_init_data': options.coco!.initData } : {}, runtime === 'coco' ? 'Annotations of the pods; `io.katacontainers.config.hypervisor.cc_init_data` carries the init data (KBS address, image security policy) whose digest the TEE evidence binds.' : 'Annotations of the pods.');
  put('podSecurityContext', {}, 'Pod security context.');
  put('securityContext', {}, 'Container security context (`disabled` mode adds `privileged: true`).');
  put('resources', structuredClone(options.resources ?? {}) as ValueMap, 'Container resources; the SGX device resources are added to `limits`.');
  put('nodeSelector', { ...(options.nodeSelector ?? {}) }, 'Node selector (e.g. SGX-capable nodes).');
  put('tolerations', structuredClone(options.tolerations ?? []) as Value[], 'Tolerations.');
  put('affinity', structuredClone(options.affinity ?? {}) as ValueMap, 'Affinity.');
  return { values: v, descriptions: d };
}

/**
 * Checks values the way the templates do and throws the message their `required` / `fail`
 * would print. Called before computing manifests, so a value rejected by Helm is also rejected
 * at generation time.
 */
export function checkValues(values: ValueMap, runtime: ChartOptions['runtime'], volumes: ChartVolumeEntry[]): void {
  if (!truthyRequired(values.image)) throw new EnclavifyError('BAD_CHART', IMAGE_REQUIRED);
  const type = toGoString(values.workloadType);
  if (!(WORKLOAD_TYPES as readonly string[]).includes(type)) throw new EnclavifyError('BAD_CHART', workloadTypeError(type));
  if (runtime === 'coco') {
    if (!truthyRequired(values.runtimeClassName)) throw new EnclavifyError('BAD_CHART', RUNTIME_CLASS_REQUIRED);
  } else {
    const mode = toGoString(values.useSGXDevPlugin);
    if (!(SGX_DEVICE_MODES as readonly string[]).includes(mode)) throw new EnclavifyError('BAD_CHART', sgxModeError(mode));
  }
  if (runtime === 'gramine') {
    const loader = toGoString(isMap(values.gramine) ? values.gramine.loader : undefined);
    if (loader !== 'sgx' && loader !== 'direct') throw new EnclavifyError('BAD_CHART', loaderError(loader));
  }
  for (const vol of volumes) {
    const v = values[vol.valuesKey];
    if (!truthyRequired(isMap(v) ? v.mountPath : undefined)) throw new EnclavifyError('BAD_CHART', mountPathRequired(vol.valuesKey));
  }
}

/** Helm's `required` fails on nil and "" only. */
function truthyRequired(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

/** Message of the `required` check on `runtimeClassName` (CoCo charts). */
export const RUNTIME_CLASS_REQUIRED = 'runtimeClassName is required: the Kata runtime class of the TEE (e.g. kata-qemu-tdx)';
/** Message of the `required` check on `image` (the templates print the same text). */
export const IMAGE_REQUIRED = 'image is required: set image=<registry>/<repository>:<tag> (the confidential image)';
/** Message of the workloadType check, as the workload template's `fail`. */
export function workloadTypeError(got: string): string {
  return `workloadType must be one of deployment, statefulset, daemonset, job (got ${JSON.stringify(got)})`;
}
/** Message of the useSGXDevPlugin check. */
export function sgxModeError(got: string): string {
  return `useSGXDevPlugin must be one of scone, intel, azure, disabled (got ${JSON.stringify(got)})`;
}
/** Message of the gramine.loader check. */
export function loaderError(got: string): string {
  return `gramine.loader must be sgx or direct (got ${JSON.stringify(got)})`;
}
/** Message of the `required` check on a volume's mountPath. */
export function mountPathRequired(key: string): string {
  return `${key}.mountPath is required`;
}

/** values.yaml text: the values with each described key preceded by its description as a comment. */
export function valuesYaml(values: ValueMap, descriptions: ValueDescriptions): string {
  // YAML 1.1 so that strings such as "yes" or "0755" are quoted: Helm reads values with a 1.1 parser.
  const { Document, isMap: isYamlMap, isScalar } = yaml();
  const doc = new Document(values, { version: '1.1' });
  const walk = (node: unknown, prefix: string): void => {
    if (!isYamlMap(node)) return;
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const path = prefix + String(pair.key.value);
      const text = descriptions.get(path);
      if (text) pair.key.commentBefore = ' ' + text;
      walk(pair.value, path + '.');
    }
  };
  walk(doc.contents, '');
  return `# Default values of the chart; override with -f FILE or --set KEY=VALUE.\n\n${doc.toString({ lineWidth: 0 })}`;
}
