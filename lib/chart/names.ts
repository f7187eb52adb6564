/**
 * Kubernetes naming rules the chart relies on, and parsing of the volume flags
 * (`--k8s-helm-volume=NAME:PATH`, `--volume=NAME:PATH[:FROM][:TO...]`).
 */
import type { ChartEncryptedVolume, ChartVolume } from './options.js';
import { EnclavifyError } from '../oci/errors.js';

/** RFC 1123 label as Kubernetes checks it (most object names, container and volume names). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A label value (e.g. app.kubernetes.io/version): empty, or up to 63 chars of [A-Za-z0-9._-] starting and ending alphanumeric. */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** True when `s` is a DNS-1123 label of at most 63 characters. */
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** True when `s` is a valid Kubernetes label value. */
export function isLabelValue(s: string): boolean {
  return s.length <= 63 && LABEL_VALUE.test(s);
}

/**
 * Turns a user-given name into a DNS-1123 label: lower case, runs of other characters become '-',
 * leading/trailing '-' removed, at most `max` characters. Throws when nothing usable remains.
 */
export function toDns1123Label(name: string, what: string, max = 63): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, max)
    .replace(/-+$/, '');
  if (!s) throw new EnclavifyError('BAD_CHART', `${what} ${JSON.stringify(name)}: no letters or digits to build a Kubernetes name from`);
  return s;
}

/** The values.yaml key of a volume: `volume<name-lowercase>` (sconify_image's convention). */
export function volumeValuesKey(name: string): string {
  return `volume${name.toLowerCase()}`;
}

function splitNamePath(flag: string, spec: string): [string, string, string[]] {
  const parts = spec.split(':');
  const [name, path, ...rest] = parts;
  if (!name || !path) throw new EnclavifyError('BAD_CHART', `${flag}=${spec}: want NAME:PATH`);
  if (!path.startsWith('/')) throw new EnclavifyError('BAD_CHART', `${flag}=${spec}: mount path ${JSON.stringify(path)} is not absolute`);
  return [name, path, rest];
}

/** Parses `--k8s-helm-volume=NAME:PATH`. */
export function parseHelmVolumeFlag(spec: string): ChartVolume {
  const [name, path, rest] = splitNamePath('--k8s-helm-volume', spec);
  if (rest.length) throw new EnclavifyError('BAD_CHART', `--k8s-helm-volume=${spec}: want NAME:PATH`);
  return { name, path };
}

/** Parses `--volume=NAME:PATH[:FROM_SESSION][:TO_SESSION...]` (e.g. `out:/out::consumer-1:consumer-2`). */
export function parseEncryptedVolumeFlag(spec: string): ChartEncryptedVolume {
  const [name, path, rest] = splitNamePath('--volume', spec);
  const [from, ...to] = rest;
  const v: ChartEncryptedVolume = { name, path };
  if (from) v.fromSession = from;
  const sessions = to.filter((s) => s !== '');
  if (sessions.length) v.toSessions = sessions;
  return v;
}
