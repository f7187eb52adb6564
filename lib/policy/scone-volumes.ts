/**
 * `--volume=NAME:PATH[:FROM_SESSION][:TO_SESSION...]`: encrypted SCONE volumes, optionally imported
 * from another session or exported to other sessions, and the session entries they become.
 *
 * Examples: `data:/data` (a volume CAS initialises on first use), `in:/in:producer-session`
 * (import volume `in` of session `producer-session`), `out:/out::consumer-1:consumer-2` (export to
 * two sessions).
 */
import type { SconeImageVolume, SconeVolume } from './scone-types.js';
import { EnclavifyError } from '../oci/errors.js';

/** A parsed `--volume` spec. */
export interface VolumeSpec {
  /** Volume name in the session (also the name imported from FROM_SESSION). */
  name: string;
  /** Absolute mount path in the image. */
  path: string;
  /** Session the volume is imported from, if any. */
  importFrom?: string;
  /** Sessions the volume is exported to (empty: not exported). */
  exportTo: string[];
}

const NAME = /^[A-Za-z0-9_.~-]{1,128}$/;
const SESSION_REF = /^(?:\.{1,2}\/)*[A-Za-z0-9_.~-]{1,128}(?:\/[A-Za-z0-9_.~-]{1,128})*$/;

/**
 * Parses `NAME:PATH[:FROM_SESSION][:TO_SESSION...]`. Throws `--volume "<spec>": <reason>` for a
 * missing or malformed name or path, a bad session name, or a volume that is both imported and
 * exported (CAS forbids exporting an imported volume).
 */
export function parseVolumeSpec(spec: string): VolumeSpec {
  const bad = (why: string): never => {
    throw new EnclavifyError('BAD_POLICY', `--volume ${JSON.stringify(spec)}: ${why} (expected NAME:PATH[:FROM_SESSION][:TO_SESSION...])`);
  };
  if (typeof spec !== 'string') bad('not a string');
  const [name = '', path = '', from = '', ...to] = spec.split(':');
  if (!NAME.test(name)) bad(`volume name ${JSON.stringify(name)} must be 1-128 of A-Z a-z 0-9 _ . ~ -`);
  if (!path.startsWith('/')) bad(`mount path ${JSON.stringify(path)} must be absolute`);
  const segments = path.split('/').filter(Boolean);
  if (segments.length === 0) bad('mount path must not be the root directory');
  if (segments.some((s) => s === '.' || s === '..')) bad(`mount path ${JSON.stringify(path)} must not contain . or .. segments`);
  if (path.includes('\0')) bad('mount path contains a NUL byte');
  const normalised = '/' + segments.join('/');
  if (from && !SESSION_REF.test(from)) bad(`FROM_SESSION ${JSON.stringify(from)} is not a valid session name`);
  const exportTo = to.filter((t) => t !== '');
  for (const t of exportTo) {
    if (!SESSION_REF.test(t)) bad(`TO_SESSION ${JSON.stringify(t)} is not a valid session name`);
  }
  if (new Set(exportTo).size !== exportTo.length) bad('a TO_SESSION is listed twice');
  if (from && exportTo.length) bad('a volume imported from another session cannot be exported');
  return { name, path: normalised, ...(from ? { importFrom: from } : {}), exportTo };
}

/**
 * Turns volume specs into the session's `volumes` and the image's `volumes`. Throws naming
 * `--volume` on a duplicate name or mount path, or a mount path inside another.
 */
export function volumeEntries(specs: VolumeSpec[]): { volumes: SconeVolume[]; imageVolumes: SconeImageVolume[] } {
  const volumes: SconeVolume[] = [];
  const imageVolumes: SconeImageVolume[] = [];
  const byName = new Set<string>();
  const paths: string[] = [];
  for (const v of specs) {
    if (byName.has(v.name)) throw new EnclavifyError('BAD_POLICY', `--volume: duplicate volume name ${JSON.stringify(v.name)}`);
    byName.add(v.name);
    for (const p of paths) {
      if (p === v.path || v.path.startsWith(p + '/') || p.startsWith(v.path + '/')) {
        throw new EnclavifyError('BAD_POLICY', `--volume: mount path ${JSON.stringify(v.path)} overlaps ${JSON.stringify(p)}`);
      }
    }
    paths.push(v.path);
    const entry: SconeVolume = { name: v.name };
    if (v.importFrom) entry.import = { session: v.importFrom, volume: v.name };
    if (v.exportTo.length) entry.export = v.exportTo.map((session) => ({ session }));
    volumes.push(entry);
    imageVolumes.push({ name: v.name, path: v.path });
  }
  return { volumes, imageVolumes };
}
