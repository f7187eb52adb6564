/**
 * emitChart: the transform that adds a Helm 3 chart for the converted image to the pipeline's
 * artifacts (`chart/<name>/...`), and optionally the manifests it renders to with its default
 * values (`--k8s-helm-manifests`). The chart is built by `buildChart` (lib/chart); this transform
 * fills its options from the pipeline: the runtime and its SCONE settings from injectRuntime's
 * RuntimeInfo, the image reference from the caller.
 */
import { EnclavifyError } from '../oci/errors.js';
import type {
  ChartEncryptedVolume,
  CocoChartSettings,
  ChartOptions,
  ChartVolume,
  GramineChartSettings,
  SconeChartSettings,
  SgxDeviceMode,
  WorkloadType,
} from '../chart/index.js';
import type { Transform } from './pipeline.js';
import { RUNTIME, stateKey, type RuntimeInfo } from './state.js';

/** State key under which emitChart leaves what it emitted. */
export const CHART = stateKey<ChartInfo>('enclavify.chart');

/** What emitChart records under {@link CHART}. */
export interface ChartInfo {
  /** Chart name, e.g. `sconify-hello`. */
  name: string;
  /** Artifact directory of the chart, e.g. `chart/sconify-hello`. */
  dir: string;
  /** Artifact paths of the chart's files. */
  files: string[];
  /** Artifact path of the rendered manifests, when asked for. */
  manifestsPath?: string;
}

/** Options of {@link emitChart}; CLI equivalents in brackets. */
export interface EmitChartOptions {
  /** The image reference Kubernetes pulls (the conversion's destination, in registry form). */
  image: string;
  /** Runtime. Default: the one injectRuntime used. [--runtime] */
  runtime?: 'scone' | 'gramine' | 'coco';
  /** CoCo settings (runtime coco): TEE, runtime class, init data. */
  coco?: CocoChartSettings;
  /** Service name (chart `<prefix>-<service>`). Default: SCONE's service name, else the image's repository name. [--service-name] */
  serviceName?: string;
  chartName?: string;
  chartVersion?: string;
  appVersion?: string;
  /** [--k8s-helm-workload-type] */
  workloadType?: WorkloadType;
  replicaCount?: number;
  /** Ports to expose with a Service. [--k8s-helm-expose] */
  expose?: number[];
  /** Plain volumes, `NAME:PATH` or parsed. [--k8s-helm-volume] */
  volumes?: (string | ChartVolume)[];
  /** Encrypted volumes, `NAME:PATH[:FROM][:TO...]` or parsed; the chart provides their storage. [--volume] */
  encryptedVolumes?: (string | ChartEncryptedVolume)[];
  /** Helm `--set` overrides written into values.yaml. [--k8s-helm-set] */
  set?: string[];
  /** SGX device mode. Default `scone` for SCONE, `intel` for Gramine. [--sgx-device-mode] */
  sgxDevice?: SgxDeviceMode;
  sgxEpcMemMiB?: number;
  /** SCONE settings; by default those injectRuntime(scone) baked into the image. */
  scone?: SconeChartSettings;
  /** Gramine settings (secret provisioning, loader, AESM socket). */
  gramine?: GramineChartSettings;
  env?: Record<string, string>;
  /** Any further chart options, applied last. */
  chart?: Partial<ChartOptions>;
  /** Artifact directory holding the chart directory. Default `chart`; the chart goes to `<parentDir>/<name>/`. [--k8s-helm-output-dir] */
  parentDir?: string;
  /** Artifact path for the manifests rendered with default values. [--k8s-helm-manifests] */
  manifestsPath?: string;
}

/** The repository name of an image reference: `registry:5000/team/web:1.0@sha256:...` -> `web`. */
export function repositoryName(image: string): string {
  const noDigest = image.split('@')[0];
  const last = noDigest.slice(noDigest.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  return colon >= 0 ? last.slice(0, colon) : last;
}

function cleanRelative(p: string, what: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (p.startsWith('/') || parts.some((x) => x === '..') || p.includes('\0')) {
    throw new EnclavifyError('BAD_OPTIONS', `emitChart: ${what} ${JSON.stringify(p)} must be a relative path inside the output directory`);
  }
  return parts.join('/');
}

/** SCONE chart settings from what injectRuntime(scone) recorded. */
function sconeSettingsFrom(info: RuntimeInfo | undefined): SconeChartSettings {
  const d = (info?.details ?? {}) as Record<string, unknown>;
  const s: SconeChartSettings = {};
  if (typeof d.cas === 'string') s.cas = d.cas;
  if (typeof d.las === 'string' && d.lasGiven === true) s.las = d.las;
  if (info?.sconeConfigId) s.configID = info.sconeConfigId;
  if (typeof d.dlopen === 'number') s.allowDlOpen = d.dlopen;
  if (typeof d.heap === 'string') s.heap = d.heap;
  if (typeof d.stack === 'string') s.stack = d.stack;
  if (typeof d.fork === 'number') s.fork = d.fork;
  if (typeof d.log === 'string') s.log = d.log;
  return s;
}

/**
 * The emitChart transform. Throws (naming the option) on invalid chart options or `--set`
 * overrides the templates would reject.
 */
export function emitChart(options: EmitChartOptions): Transform {
  if (!options || typeof options.image !== 'string' || !options.image) throw new EnclavifyError('BAD_OPTIONS', 'emitChart: image (the reference Kubernetes pulls) is required');
  return {
    name: 'emitChart',
    async apply(draft) {
      // lib/chart (and yaml) load when the transform runs, not with the library.
      const { buildChart, parseEncryptedVolumeFlag, parseHelmVolumeFlag } = await import('../chart/index.js');
      const info = draft.state.get(RUNTIME);
      const runtime = options.runtime ?? info?.runtime;
      if (runtime !== 'scone' && runtime !== 'gramine' && runtime !== 'coco') {
        throw new EnclavifyError('BAD_OPTIONS', runtime ? `emitChart: unknown runtime ${JSON.stringify(runtime)} (scone, gramine or coco)` : 'emitChart: no runtime: run injectRuntime before it, or give runtime');
      }
      const d = (info?.details ?? {}) as Record<string, unknown>;
      const serviceName = options.serviceName ?? (typeof d.serviceName === 'string' ? d.serviceName : repositoryName(options.image));
      const gramine: GramineChartSettings = { ...options.gramine };
      if (runtime === 'gramine' && gramine.loader === undefined && (d.loader === 'direct' || d.loader === 'sgx')) gramine.loader = d.loader;

      const chartOptions: ChartOptions = {
        serviceName,
        image: options.image,
        runtime,
        ...(options.chartName ? { chartName: options.chartName } : {}),
        ...(options.chartVersion ? { chartVersion: options.chartVersion } : {}),
        ...(options.appVersion ? { appVersion: options.appVersion } : {}),
        ...(options.workloadType ? { workloadType: options.workloadType } : {}),
        ...(options.replicaCount !== undefined ? { replicaCount: options.replicaCount } : {}),
        ...(options.expose?.length ? { expose: options.expose } : {}),
        volumes: (options.volumes ?? []).map((v) => (typeof v === 'string' ? parseHelmVolumeFlag(v) : v)),
        encryptedVolumes: (options.encryptedVolumes ?? []).map((v) => (typeof v === 'string' ? parseEncryptedVolumeFlag(v) : v)),
        ...(options.sgxDevice ? { sgxDevice: options.sgxDevice } : {}),
        ...(options.sgxEpcMemMiB !== undefined ? { sgxEpcMemMiB: options.sgxEpcMemMiB } : {}),
        ...(runtime === 'scone' ? { scone: { ...sconeSettingsFrom(info), ...options.scone } } : {}),
        ...(runtime === 'gramine' && Object.keys(gramine).length ? { gramine } : {}),
        ...(runtime === 'coco' && options.coco ? { coco: options.coco } : {}),
        ...(options.env ? { env: options.env } : {}),
        ...(options.set?.length ? { set: options.set } : {}),
        ...options.chart,
      };
      let chart;
      try {
        chart = buildChart(chartOptions);
      } catch (e) {
        throw new EnclavifyError(e instanceof EnclavifyError ? e.code : 'BAD_CHART', `emitChart: ${(e as Error).message}`, { cause: e });
      }
      const parent = cleanRelative(options.parentDir ?? 'chart', 'parentDir');
      const dir = parent ? `${parent}/${chart.name}` : chart.name;
      const files: string[] = [];
      for (const [rel, text] of chart.files) {
        const p = `${dir}/${rel}`;
        files.push(p);
        draft.addArtifact({ path: p, data: text, description: rel === 'Chart.yaml' ? `Helm chart ${chart.name}` : undefined });
      }
      const result: ChartInfo = { name: chart.name, dir, files };
      if (options.manifestsPath !== undefined) {
        const mp = cleanRelative(options.manifestsPath, 'manifestsPath');
        if (!mp) throw new EnclavifyError('BAD_OPTIONS', 'emitChart: manifestsPath is empty');
        draft.addArtifact({ path: mp, data: chart.manifestsYaml, description: `Kubernetes manifests of ${chart.name} (default values)` });
        result.manifestsPath = mp;
      }
      draft.state.set(CHART, result);
      draft.report.emitChart = {
        name: chart.name,
        dir,
        workloadType: chart.values.workloadType,
        ...(runtime === 'coco' ? { runtimeClassName: chart.values.runtimeClassName } : { sgxDevice: chart.values.useSGXDevPlugin }),
        objects: chart.manifests.map((o) => `${o.kind}/${o.metadata.name}`),
        ...(result.manifestsPath ? { manifests: result.manifestsPath } : {}),
      };
      draft.progress(`emitChart: Helm chart ${chart.name} -> ${dir}/`);
    },
  };
}
