/**
 * The TypeScript model of the chart's templates: computes the Kubernetes objects Helm renders
 * from given values, without Helm. Every function here mirrors a template in `templates.ts`
 * (named in its comment); the chart-render interop tests check that both agree.
 */
import {
  dflt,
  empty,
  goPrint,
  isMap,
  mapOrEmpty,
  printedScalar,
  quotedScalar,
  toGoString,
  truncName,
  truthy,
  type Value,
  type ValueMap,
} from './go-semantics.js';
import type { Runtime } from './options.js';
import { GRAMINE_LOADER_ENV } from './templates.js';
import { checkValues, type ChartVolumeEntry } from './values.js';

/** A rendered Kubernetes object. */
export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: Value }; [k: string]: Value };

/** What the templates see besides `.Values`. */
export interface RenderContext {
  /** Chart.yaml `name`. */
  chartName: string;
  /** Chart.yaml `version`. */
  chartVersion: string;
  /** Chart.yaml `appVersion` ("" when absent). */
  appVersion: string;
  /** Runtime the chart was generated for (which env helper its templates contain). */
  runtime: Runtime;
  /** The chart's volumes (the table in the workload and PVC templates). */
  volumes: ChartVolumeEntry[];
  /** Release name. Default "release-name", as `helm template` and chart-render use. */
  release?: string;
}

const KINDS: Record<string, string> = { deployment: 'Deployment', statefulset: 'StatefulSet', daemonset: 'DaemonSet', job: 'Job' };

/** `<chart>.name` */
function nameOf(v: ValueMap, ctx: RenderContext): string {
  return truncName(goPrint(dflt(ctx.chartName, v.nameOverride)));
}

/** `<chart>.fullname` */
export function fullnameOf(v: ValueMap, ctx: RenderContext): string {
  const release = ctx.release ?? 'release-name';
  if (truthy(v.fullnameOverride)) return truncName(goPrint(v.fullnameOverride));
  const name = goPrint(dflt(ctx.chartName, v.nameOverride));
  if (release.includes(name)) return truncName(release);
  return truncName(`${release}-${name}`);
}

/** `<chart>.selectorLabels` (values as the YAML parser reads them back). */
function selectorLabels(v: ValueMap, ctx: RenderContext): ValueMap {
  return {
    'app.kubernetes.io/name': printedScalar(nameOf(v, ctx)),
    'app.kubernetes.io/instance': printedScalar(ctx.release ?? 'release-name'),
  };
}

/** `<chart>.labels` */
function labels(v: ValueMap, ctx: RenderContext): ValueMap {
  const l: ValueMap = {
    'helm.sh/chart': printedScalar(truncName(`${ctx.chartName}-${ctx.chartVersion}`.replaceAll('+', '_'))),
    ...selectorLabels(v, ctx),
  };
  if (truthy(ctx.appVersion)) l['app.kubernetes.io/version'] = ctx.appVersion;
  l['app.kubernetes.io/managed-by'] = 'Helm';
  return l;
}

/** `<chart>.claimSpec` */
function claimSpec(p: ValueMap): ValueMap {
  const spec: ValueMap = {
    accessModes: [dflt('ReadWriteOnce', p.accessMode)],
    resources: { requests: { storage: dflt('1Gi', p.size) } },
  };
  if (truthy(p.storageClass)) {
    const sc = toGoString(p.storageClass);
    spec.storageClassName = sc === '-' ? '' : sc;
  }
  return structuredClone(spec);
}

/** `<chart>.runtimeEnv` for SCONE. */
function sconeEnv(v: ValueMap): ValueMap[] {
  const s = mapOrEmpty(v.scone);
  const env: ValueMap[] = [];
  if (truthy(s.cas)) env.push({ name: 'SCONE_CAS_ADDR', value: quotedScalar(s.cas) });
  if (truthy(s.las)) env.push({ name: 'SCONE_LAS_ADDR', value: quotedScalar(s.las) });
  else env.push({ name: 'SCONE_LAS_ADDR', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
  if (truthy(s.configID)) env.push({ name: 'SCONE_CONFIG_ID', value: quotedScalar(s.configID) });
  const settings: [string, string][] = [
    ['SCONE_ALLOW_DLOPEN', 'allowDlOpen'],
    ['SCONE_HEAP', 'heap'],
    ['SCONE_STACK', 'stack'],
    ['SCONE_FORK', 'fork'],
    ['SCONE_LOG', 'log'],
  ];
  for (const [name, key] of settings) {
    const x = s[key];
    if (x === undefined || x === null || goPrint(x) === '') continue;
    env.push({ name, value: quotedScalar(x) });
  }
  if (truthy(s.printVersion)) env.push({ name: 'SCONE_VERSION', value: '1' });
  return env;
}

/** `<chart>.runtimeEnv` for Gramine. */
function gramineEnv(v: ValueMap): ValueMap[] {
  const g = mapOrEmpty(v.gramine);
  const env: ValueMap[] = [{ name: GRAMINE_LOADER_ENV, value: quotedScalar(g.loader) }];
  const sp = mapOrEmpty(g.secretProvision);
  if (truthy(sp.servers)) env.push({ name: 'SECRET_PROVISION_SERVERS', value: quotedScalar(sp.servers) });
  if (truthy(sp.setKey)) env.push({ name: 'SECRET_PROVISION_SET_KEY', value: quotedScalar(sp.setKey) });
  if (truthy(sp.caChainPath)) env.push({ name: 'SECRET_PROVISION_CA_CHAIN_PATH', value: quotedScalar(sp.caChainPath) });
  return env;
}

/** `<chart>.needsSGX` */
function needsSgx(v: ValueMap, runtime: Runtime): boolean {
  if (runtime === 'coco') return false;
  return runtime === 'scone' || toGoString(mapOrEmpty(v.gramine).loader) === 'sgx';
}

/** Sorted the way Go ranges over a map (byte order of the keys). */
function sortedVolumes(volumes: ChartVolumeEntry[]): ChartVolumeEntry[] {
  return [...volumes].sort((a, b) => (a.volumeName < b.volumeName ? -1 : a.volumeName > b.volumeName ? 1 : 0));
}

function claimName(fullname: string, volumeName: string): string {
  return truncName(`${fullname}-${volumeName}`);
}

/** templates/workload.yaml */
function workload(v: ValueMap, ctx: RenderContext): KubeObject {
  const type = toGoString(v.workloadType);
  const mode = toGoString(v.useSGXDevPlugin);
  const sgx = needsSgx(v, ctx.runtime);
  const fullname = fullnameOf(v, ctx);
  const image = v.image;

  const resources = structuredClone(mapOrEmpty(v.resources));
  const limits = structuredClone(mapOrEmpty(resources.limits));
  const securityContext = structuredClone(mapOrEmpty(v.securityContext));
  const volumes: ValueMap[] = [];
  const mounts: ValueMap[] = [];
  const claims: ValueMap[] = [];
  if (sgx) {
    if (mode === 'scone') limits['sgx.k8s.io/sgx'] = 1;
    else if (mode === 'intel') {
      limits['sgx.intel.com/epc'] = `${goPrint(v.sgxEpcMem)}Mi`;
      limits['sgx.intel.com/enclave'] = 1;
      if (truthy(v.sgxProvision)) limits['sgx.intel.com/provision'] = 1;
    } else if (mode === 'azure') {
      limits['kubernetes.azure.com/sgx_epc_mem_in_MiB'] = v.sgxEpcMem ?? null;
    } else if (mode === 'disabled') {
      securityContext.privileged = true;
      volumes.push({ name: 'sgx-enclave', hostPath: { path: '/dev/sgx_enclave', type: 'CharDevice' } });
      volumes.push({ name: 'sgx-provision', hostPath: { path: '/dev/sgx_provision', type: 'CharDevice' } });
      mounts.push({ name: 'sgx-enclave', mountPath: '/dev/sgx_enclave' });
      mounts.push({ name: 'sgx-provision', mountPath: '/dev/sgx_provision' });
    }
  }
  if (!empty(limits)) resources.limits = limits;
  if (ctx.runtime === 'gramine') {
    const dir = mapOrEmpty(v.gramine).aesmdSocketDir;
    if (truthy(dir)) {
      volumes.push({ name: 'aesmd-socket', hostPath: { path: dir as Value, type: 'Directory' } });
      mounts.push({ name: 'aesmd-socket', mountPath: '/var/run/aesmd' });
    }
  }
  for (const vol of sortedVolumes(ctx.volumes)) {
    const entry = mapOrEmpty(v[vol.valuesKey]);
    const p = mapOrEmpty(entry.persistence);
    mounts.push({ name: vol.volumeName, mountPath: entry.mountPath as Value });
    if (truthy(p.enabled) && !truthy(p.existingClaim) && type === 'statefulset') {
      claims.push({ metadata: { name: vol.volumeName }, spec: claimSpec(p) });
    } else if (truthy(p.enabled)) {
      volumes.push({ name: vol.volumeName, persistentVolumeClaim: { claimName: dflt(claimName(fullname, vol.volumeName), p.existingClaim) } });
    } else {
      volumes.push({ name: vol.volumeName, emptyDir: {} });
    }
  }
  const ports: Value[] = [];
  if (truthy(v.service)) {
    const svc = v.service as ValueMap;
    if (truthy(svc.targetPort)) ports.push(svc.targetPort);
    if (Array.isArray(svc.extraPorts)) ports.push(...svc.extraPorts);
  }

  const env: ValueMap[] = ctx.runtime === 'scone' ? sconeEnv(v) : ctx.runtime === 'coco' ? [{ name: 'ENCLAVIFY_TEE', value: quotedScalar(mapOrEmpty(v.coco).tee) }] : gramineEnv(v);
  for (const k of Object.keys(mapOrEmpty(v.env)).sort()) {
    env.push({ name: k, value: quotedScalar((v.env as ValueMap)[k]) });
  }
  if (truthy(v.extraEnv) && Array.isArray(v.extraEnv)) env.push(...(structuredClone(v.extraEnv) as ValueMap[]));

  const container: ValueMap = { name: printedScalar(nameOf(v, ctx)), image: quotedScalar(image) };
  if (truthy(v.imagePullPolicy)) container.imagePullPolicy = printedScalar(v.imagePullPolicy);
  if (truthy(v.command)) container.command = structuredClone(v.command as Value);
  if (truthy(v.args)) container.args = structuredClone(v.args as Value);
  container.env = env;
  if (ports.length) container.ports = ports.map((p) => ({ name: printedScalar(`port-${goPrint(p)}`), containerPort: printedScalar(p), protocol: 'TCP' }));
  if (!empty(securityContext)) container.securityContext = securityContext;
  if (!empty(resources)) container.resources = resources;
  if (mounts.length) container.volumeMounts = mounts;

  const podSpec: ValueMap = {};
  if (ctx.runtime === 'coco') podSpec.runtimeClassName = printedScalar(v.runtimeClassName);
  if (type === 'job') podSpec.restartPolicy = printedScalar(dflt('Never', mapOrEmpty(v.job).restartPolicy));
  if (truthy(v.imagePullSecrets)) podSpec.imagePullSecrets = structuredClone(v.imagePullSecrets as Value);
  if (truthy(v.podSecurityContext)) podSpec.securityContext = structuredClone(v.podSecurityContext as Value);
  podSpec.containers = [container];
  if (volumes.length) podSpec.volumes = volumes;
  if (truthy(v.nodeSelector)) podSpec.nodeSelector = structuredClone(v.nodeSelector as Value);
  if (truthy(v.affinity)) podSpec.affinity = structuredClone(v.affinity as Value);
  if (truthy(v.tolerations)) podSpec.tolerations = structuredClone(v.tolerations as Value);

  const podMeta: ValueMap = {};
  if (truthy(v.podAnnotations)) podMeta.annotations = structuredClone(v.podAnnotations as Value);
  podMeta.labels = selectorLabels(v, ctx);

  const spec: ValueMap = {};
  if (type === 'deployment' || type === 'statefulset') spec.replicas = printedScalar(v.replicaCount);
  if (type === 'statefulset') spec.serviceName = printedScalar(fullname);
  if (type === 'job') {
    const job = mapOrEmpty(v.job);
    if (Object.hasOwn(job, 'backoffLimit')) spec.backoffLimit = printedScalar(job.backoffLimit);
  } else {
    spec.selector = { matchLabels: selectorLabels(v, ctx) };
  }
  spec.template = { metadata: podMeta, spec: podSpec };
  if (claims.length) spec.volumeClaimTemplates = claims;

  return {
    apiVersion: type === 'job' ? 'batch/v1' : 'apps/v1',
    kind: KINDS[type],
    metadata: { name: printedScalar(fullname) as string, labels: labels(v, ctx) },
    spec,
  };
}

/** templates/service.yaml */
function service(v: ValueMap, ctx: RenderContext): KubeObject | undefined {
  if (!truthy(v.service)) return undefined;
  const s = v.service as ValueMap;
  if (!truthy(s.enabled)) return undefined;
  const ports: ValueMap[] = [{ name: printedScalar(`port-${goPrint(s.targetPort)}`), port: printedScalar(s.port), targetPort: printedScalar(s.targetPort), protocol: 'TCP' }];
  if (Array.isArray(s.extraPorts)) {
    for (const p of s.extraPorts) ports.push({ name: printedScalar(`port-${goPrint(p)}`), port: printedScalar(p), targetPort: printedScalar(p), protocol: 'TCP' });
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: printedScalar(fullnameOf(v, ctx)) as string, labels: labels(v, ctx) },
    spec: { type: printedScalar(s.type), selector: selectorLabels(v, ctx), ports },
  };
}

/** templates/pvc.yaml */
function pvcs(v: ValueMap, ctx: RenderContext): KubeObject[] {
  const fullname = fullnameOf(v, ctx);
  const out: KubeObject[] = [];
  for (const vol of sortedVolumes(ctx.volumes)) {
    const p = mapOrEmpty(mapOrEmpty(v[vol.valuesKey]).persistence);
    if (truthy(p.enabled) && !truthy(p.existingClaim) && toGoString(v.workloadType) !== 'statefulset') {
      out.push({
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: printedScalar(claimName(fullname, vol.volumeName)) as string, labels: labels(v, ctx) },
        spec: claimSpec(p),
      });
    }
  }
  return out;
}

/**
 * The Kubernetes objects the chart renders to with `values` (as after Helm's merging), in the
 * order Helm emits them (template files sorted by name). Throws the templates' `required` /
 * `fail` message when the values are invalid.
 */
export function renderManifests(values: ValueMap, ctx: RenderContext): KubeObject[] {
  checkValues(values, ctx.runtime, ctx.volumes);
  const objects: KubeObject[] = [];
  if (ctx.volumes.length) objects.push(...pvcs(values, ctx));
  const svc = service(values, ctx);
  if (svc) objects.push(svc);
  objects.push(workload(values, ctx));
  return objects;
}

/** Whether `v` is a rendered object (apiVersion, kind and metadata.name present). */
export function isKubeObject(v: unknown): v is KubeObject {
  return isMap(v) && typeof v.apiVersion === 'string' && typeof v.kind === 'string' && isMap(v.metadata) && truthy(v.metadata.name);
}
