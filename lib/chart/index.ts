/**
 * Helm 3 chart generator (`emitChart`): the open counterpart of sconify_image's `--k8s-helm-*`
 * options. `buildChart` is pure: it returns the chart's files, its values and the Kubernetes
 * objects the chart renders to with those values (computed by a TypeScript model of the
 * templates, since Helm is not available at conversion time); `writeChart` puts it on disk.
 */
import { yaml } from '../oci/lazy-deps.js';
import type { ValueMap } from './go-semantics.js';
import { isDns1123Label, isLabelValue, toDns1123Label } from './names.js';
import type { ChartOptions } from './options.js';
import { chartReadme } from './readme.js';
import { renderManifests, type KubeObject, type RenderContext } from './render.js';
import { applySetOverrides } from './set.js';
import { helpersTpl, notesTemplate, pvcTemplate, serviceTemplate, workloadTemplate } from './templates.js';
import { buildValues, chartVolumes, valuesYaml } from './values.js';
import { EnclavifyError } from '../oci/errors.js';

export type * from './options.js';
export { SGX_DEVICE_MODES, WORKLOAD_TYPES } from './options.js';
export { parseEncryptedVolumeFlag, parseHelmVolumeFlag, isDns1123Label, isLabelValue } from './names.js';
export { applySetOverrides, parseSetExpression, typedSetValue, type SetAssignment } from './set.js';
export { renderManifests, isKubeObject, type KubeObject, type RenderContext } from './render.js';
export { GRAMINE_LOADER_ENV } from './templates.js';
export { writeChart, type WriteChartOptions } from './write.js';
export type { Value, ValueMap } from './go-semantics.js';

/** A generated chart. */
export interface ChartResult {
  /** Chart name (Chart.yaml `name`), e.g. `enclavify-web` or `sconify-web`. */
  name: string;
  /** Files of the chart, by path inside the chart directory (e.g. `templates/workload.yaml`). */
  files: Map<string, string>;
  /** The values of values.yaml (after `--k8s-helm-set` overrides). */
  values: ValueMap;
  /**
   * The Kubernetes objects the chart renders to with its default values and the release name
   * "release-name" (as `helm template` and chart-render use), in Helm's output order.
   */
  manifests: KubeObject[];
  /** `manifests` as a multi-document YAML stream (`--k8s-helm-manifests`). */
  manifestsYaml: string;
  /** What {@link renderManifests} needs to compute the manifests for other values or release names. */
  context: RenderContext;
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** appVersion from an image reference: its tag, else the start of its digest, else "latest". */
export function appVersionFromImage(image: string): string {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const digest = at >= 0 ? image.slice(at + 1) : '';
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : '';
  if (tag && isLabelValue(tag)) return tag;
  const hex = /^[a-z0-9]+:([0-9a-f]{12,})$/.exec(digest);
  if (hex) return hex[1].slice(0, 12);
  return 'latest';
}

/** Chart.yaml text. */
function chartYaml(name: string, version: string, appVersion: string, description: string, runtime: string): string {
  return [
    'apiVersion: v2',
    `name: ${name}`,
    `description: ${JSON.stringify(description)}`,
    'type: application',
    `version: ${version}`,
    `appVersion: ${JSON.stringify(appVersion)}`,
    'keywords:',
    '  - sgx',
    '  - confidential-computing',
    `  - ${runtime}`,
    '',
  ].join('\n');
}

/** The template file that renders an object of this kind (for `# Source:` lines). */
function sourceOf(chart: string, o: KubeObject): string {
  const file = o.kind === 'PersistentVolumeClaim' ? 'pvc.yaml' : o.kind === 'Service' ? 'service.yaml' : 'workload.yaml';
  return `${chart}/templates/${file}`;
}

/** Objects as a YAML stream, with `# Source:` lines like `helm template` (YAML 1.1 quoting, as Kubernetes reads it). */
export function manifestsToYaml(chart: string, objects: KubeObject[]): string {
  return objects.map((o) => `---\n# Source: ${sourceOf(chart, o)}\n${yaml().stringify(o, { version: '1.1', lineWidth: 0 })}`).join('');
}

/**
 * Builds the Helm chart for a confidential image. Throws on invalid options (bad names, ports,
 * volumes, unknown workload type or device mode) or when the `--k8s-helm-set` overrides leave
 * values that the templates would reject (same message as the template's `required`/`fail`).
 */
export function buildChart(options: ChartOptions): ChartResult {
  const prefix = options.namePrefix ?? (options.runtime === 'scone' ? 'sconify' : 'enclavify');
  if (!options.serviceName) throw new EnclavifyError('BAD_CHART', 'chart serviceName is required');
  const name = options.chartName ?? toDns1123Label(`${prefix}-${toDns1123Label(options.serviceName, 'chart serviceName')}`, 'chart name');
  if (!isDns1123Label(name)) throw new EnclavifyError('BAD_CHART', `chart name ${JSON.stringify(name)} is not a DNS-1123 label (lower-case letters, digits and "-", at most 63)`);
  const chartVersion = options.chartVersion ?? '0.1.0';
  if (!SEMVER.test(chartVersion)) throw new EnclavifyError('BAD_CHART', `chart version ${JSON.stringify(chartVersion)} is not a semantic version (Helm requires one)`);
  const appVersion = options.appVersion ?? appVersionFromImage(options.image ?? '');
  if (!isLabelValue(appVersion)) throw new EnclavifyError('BAD_CHART', `chart appVersion ${JSON.stringify(appVersion)} is not a valid label value (app.kubernetes.io/version)`);

  const volumes = chartVolumes(options);
  const built = buildValues(options, volumes);
  const values = applySetOverrides(built.values, options.set ?? []);
  const context: RenderContext = { chartName: name, chartVersion, appVersion, runtime: options.runtime, volumes, release: 'release-name' };
  const manifests = renderManifests(values, context);

  const runtimeName = options.runtime === 'scone' ? 'SCONE' : 'Gramine';
  const description = options.description ?? (options.runtime === 'coco'
    ? `${options.serviceName} in a Confidential Containers guest (${options.coco?.tee ?? 'TEE'}), generated by enclavify`
    : `${options.serviceName} in an Intel SGX enclave (${runtimeName}), generated by enclavify`);
  const files = new Map<string, string>();
  files.set('Chart.yaml', chartYaml(name, chartVersion, appVersion, description, options.runtime));
  files.set('values.yaml', valuesYaml(values, built.descriptions));
  files.set('README.md', chartReadme({ chartName: name, chartVersion, appVersion, runtime: options.runtime, image: options.image, values, descriptions: built.descriptions }));
  files.set('.helmignore', '.git/\n*.tmp\n*.orig\n*~\n');
  files.set('templates/_helpers.tpl', helpersTpl(name, options.runtime));
  files.set('templates/workload.yaml', workloadTemplate(name, options.runtime, volumes));
  if ((options.expose ?? []).length) files.set('templates/service.yaml', serviceTemplate(name));
  if (volumes.length) files.set('templates/pvc.yaml', pvcTemplate(name, volumes));
  files.set('templates/NOTES.txt', notesTemplate(name, options.runtime));

  return { name, files, values, manifests, manifestsYaml: manifestsToYaml(name, manifests), context };
}
