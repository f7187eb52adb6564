/**
 * The options of the Helm chart generator: the open counterpart of sconify_image's
 * `--k8s-helm-*` flags, plus the SCONE and Gramine run-time settings the chart passes on.
 */

/** Kubernetes workload kinds the chart can render (`--k8s-helm-workload-type`). */
export const WORKLOAD_TYPES = ['deployment', 'statefulset', 'daemonset', 'job'] as const;
/** Kubernetes workload kind selector, the `workloadType` value. */
export type WorkloadType = (typeof WORKLOAD_TYPES)[number];

/**
 * How pods get the SGX device (the `useSGXDevPlugin` value):
 * - `scone`: SCONE's device plugin, resource `sgx.k8s.io/sgx: 1`;
 * - `intel`: Intel's device plugin, `sgx.intel.com/epc`, `sgx.intel.com/enclave` and, with DCAP,
 *   `sgx.intel.com/provision`;
 * - `azure`: AKS confidential-computing add-on, `kubernetes.azure.com/sgx_epc_mem_in_MiB`;
 * - `disabled`: no plugin; `/dev/sgx_enclave` and `/dev/sgx_provision` are mounted by hostPath
 *   into a privileged container (development only).
 */
export const SGX_DEVICE_MODES = ['scone', 'intel', 'azure', 'disabled'] as const;
/** One of {@link SGX_DEVICE_MODES}. */
export type SgxDeviceMode = (typeof SGX_DEVICE_MODES)[number];

/** The confidential runtime the image was converted for. */
export type Runtime = 'gramine' | 'scone' | 'coco';

/** Confidential Containers settings (runtime "coco"): the pod runs in a Kata TEE guest. */
export interface CocoChartSettings {
  /** The TEE (`--tee`), also given to the container as ENCLAVIFY_TEE. */
  tee: string;
  /** Kata runtime class (e.g. kata-qemu-tdx). */
  runtimeClassName: string;
  /** gzip+base64 init data, the `io.katacontainers.config.hypervisor.cc_init_data` pod annotation. */
  initData: string;
}

/** Ways Gramine starts the application: in an SGX enclave, or natively (no SGX, no protection). */
export type GramineLoader = 'sgx' | 'direct';

/** A plain volume (`--k8s-helm-volume=NAME:PATH`): emptyDir, or a PVC when persistence is on. */
export interface ChartVolume {
  /** Volume name as given by the user; the values key is `volume<name-lowercase>`. */
  name: string;
  /** Absolute mount path in the container. */
  path: string;
  /** Initial persistence settings (all off by default). */
  persistence?: VolumePersistence;
}

/**
 * An encrypted volume (`--volume=NAME:PATH[:FROM_SESSION][:TO_SESSION...]`): the runtime encrypts
 * what the application writes under PATH; the chart only provides the storage behind it. The
 * session import/export parts do not concern the chart and are ignored here.
 */
export interface ChartEncryptedVolume extends ChartVolume {
  /** Session the volume is imported from (policy only; kept for documentation). */
  fromSession?: string;
  /** Sessions the volume is exported to (policy only; kept for documentation). */
  toSessions?: string[];
}

/** Persistence of a volume, the `volume<name>.persistence` values. */
export interface VolumePersistence {
  /** Back the volume by a PersistentVolumeClaim instead of an emptyDir. Default false. */
  enabled?: boolean;
  /** Use this existing claim instead of creating one. Default "". */
  existingClaim?: string;
  /** Storage class of the created claim; "-" means `storageClassName: ""`. Default "" (cluster default). */
  storageClass?: string;
  /** Requested size. Default "1Gi". */
  size?: string;
  /** Access mode of the created claim. Default "ReadWriteOnce". */
  accessMode?: string;
}

/** SCONE run-time settings (the `scone` values, passed as SCONE_* environment variables). */
export interface SconeChartSettings {
  /** SCONE_CAS_ADDR: the CAS address. Default "scone-cas.cf". */
  cas?: string;
  /** SCONE_LAS_ADDR; empty (default) means the node's IP (fieldRef status.hostIP), where the LAS DaemonSet listens. */
  las?: string;
  /** SCONE_CONFIG_ID: `<namespace>/<session>/<service>`. Default "" (not set; the image's value applies). */
  configID?: string;
  /** SCONE_ALLOW_DLOPEN (0|1|2). Default 1. Changes MRENCLAVE: must match the policy. */
  allowDlOpen?: number;
  /** SCONE_HEAP. Default "1G". Changes MRENCLAVE: must match the policy. */
  heap?: string;
  /** SCONE_STACK. Default "1M". */
  stack?: string;
  /** SCONE_FORK (0|1). Default 0. */
  fork?: number;
  /** SCONE_LOG. Default "ERROR". */
  log?: string;
  /** SCONE_VERSION=1 (print the configuration and enclave hash at start). Default false. */
  printVersion?: boolean;
}

/** Gramine run-time settings (the `gramine` values). */
export interface GramineChartSettings {
  /** `sgx` (default) runs in an enclave; `direct` runs without SGX (testing only, no protection). */
  loader?: GramineLoader;
  /**
   * Secret provisioning (Gramine's RA-TLS secret_prov library): where the attested enclave fetches
   * the keys of its encrypted mounts. Each non-empty field becomes an environment variable, which
   * the image's manifest must pass through.
   */
  secretProvision?: {
    /** SECRET_PROVISION_SERVERS, e.g. "kbs.example.com:4433". */
    servers?: string;
    /** SECRET_PROVISION_SET_KEY: the encrypted-mount key name to set, e.g. "default". */
    setKey?: string;
    /** SECRET_PROVISION_CA_CHAIN_PATH: CA certificate of the server, inside the image. */
    caChainPath?: string;
  };
  /**
   * Host directory holding the AESM socket (e.g. /var/run/aesmd), mounted at /var/run/aesmd so
   * Gramine can obtain quotes; "" (default) mounts nothing (AESM in the image or a sidecar).
   */
  aesmdSocketDir?: string;
}

/** Settings of the Kubernetes Service created for exposed ports. */
export interface ChartServiceSettings {
  /** Service type. Default "ClusterIP". */
  type?: string;
  /** Service port of the first exposed port. Default: the port itself. */
  port?: number;
}

/** Everything {@link buildChart} needs; only `serviceName`, `image` and `runtime` are required. */
export interface ChartOptions {
  /** Service name (e.g. sconify's `--service-name`); chart name is `<namePrefix>-<serviceName>`. */
  serviceName: string;
  /** Chart name prefix. Default "sconify" for SCONE (as sconify_image users expect), "enclavify" for Gramine. */
  namePrefix?: string;
  /** Full chart name, overriding `<namePrefix>-<serviceName>`. Must be a DNS-1123 label. */
  chartName?: string;
  /** Chart description for Chart.yaml. */
  description?: string;
  /** Chart version. Default "0.1.0". */
  chartVersion?: string;
  /** Chart appVersion. Default: the image tag (or digest prefix) when it is a valid label value, else "latest". */
  appVersion?: string;
  /** The confidential image reference (the `image` value). */
  image: string;
  /** imagePullPolicy. Default "IfNotPresent". */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Names of Secrets used to pull the image. */
  imagePullSecrets?: string[];
  /** Runtime the image was converted for: decides the env block and the defaults. */
  runtime: Runtime;
  /** Workload kind (`--k8s-helm-workload-type`). Default "deployment". */
  workloadType?: WorkloadType;
  /** Replicas for deployment and statefulset. Default 1. */
  replicaCount?: number;
  /** Ports the application listens on (`--k8s-helm-expose=PORT`, repeatable): a Service is generated. */
  expose?: number[];
  /** Kubernetes Service settings for exposed ports. */
  serviceSettings?: ChartServiceSettings;
  /** Plain volumes (`--k8s-helm-volume=NAME:PATH`). */
  volumes?: ChartVolume[];
  /** Encrypted volumes (`--volume=NAME:PATH[...]`). */
  encryptedVolumes?: ChartEncryptedVolume[];
  /** SGX device mode. Default "scone" for SCONE, "intel" for Gramine. */
  sgxDevice?: SgxDeviceMode;
  /** EPC to request, in MiB (azure: `sgx_epc_mem_in_MiB`; intel: `sgx.intel.com/epc: <n>Mi`). Default 8. */
  sgxEpcMemMiB?: number;
  /**
   * The workload makes DCAP quotes itself: with the intel plugin, also request
   * `sgx.intel.com/provision`. Default true for Gramine, false for SCONE (the LAS quotes).
   */
  dcap?: boolean;
  /** SCONE settings (runtime "scone"). */
  scone?: SconeChartSettings;
  /** Gramine settings (runtime "gramine"). */
  gramine?: GramineChartSettings;
  /** CoCo settings (runtime "coco"; required there). */
  coco?: CocoChartSettings;
  /** Extra environment variables (the `env` value), after the runtime's. */
  env?: Record<string, string>;
  /** Container command (overrides the image entrypoint). Default none. */
  command?: string[];
  /** Container args. Default none. */
  args?: string[];
  /** Container resources (requests/limits); SGX resources are added to `limits`. */
  resources?: Record<string, unknown>;
  /** Pod nodeSelector. */
  nodeSelector?: Record<string, string>;
  /** Pod tolerations. */
  tolerations?: Record<string, unknown>[];
  /** Pod affinity. */
  affinity?: Record<string, unknown>;
  /** `--k8s-helm-set=PATH=VALUE` overrides, applied to values.yaml last, with Helm's --set syntax. */
  set?: string[];
}
