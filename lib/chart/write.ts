/**
 * Writing a generated chart to disk: into a temporary directory beside the target, then renamed
 * into place, so readers see either the old chart or the complete new one.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ChartResult } from './index.js';
import { asEnclavifyError, EnclavifyError } from '../oci/errors.js';

/** Options of {@link writeChart}. */
export interface WriteChartOptions {
  /** The chart directory to create or replace (it will contain Chart.yaml). */
  dir: string;
  /** The chart from `buildChart`. */
  chart: Pick<ChartResult, 'files'>;
}

async function writeFileSynced(file: string, data: string): Promise<void> {
  const fh = await open(file, 'wx', 0o644);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A chart file path must stay inside the chart directory. */
function safeRelative(rel: string): string {
  const norm = path.posix.normalize(rel);
  if (!rel || path.posix.isAbsolute(rel) || norm.startsWith('../') || norm === '..' || norm === '.' || rel.includes('\\') || rel.includes('\0')) {
    throw new EnclavifyError('BAD_CHART', `chart file path ${JSON.stringify(rel)} is not a relative path inside the chart`);
  }
  return norm;
}

/**
 * An existing target may be replaced only if it is a chart directory (it has Chart.yaml) or
 * empty: a mistaken `dir` such as a home directory must never be deleted.
 */
async function checkReplaceable(dir: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  if (!st.isDirectory()) throw new EnclavifyError('CHART_OUTPUT_CONFLICT', `chart output ${dir}: exists and is not a directory`);
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes('Chart.yaml')) {
    throw new EnclavifyError('CHART_OUTPUT_CONFLICT', `chart output ${dir}: exists, is not empty and has no Chart.yaml; refusing to replace it`);
  }
  return true;
}

/**
 * Writes the chart's files to `dir`, replacing an existing chart there. The files are written and
 * synced in a temporary sibling directory, which is then renamed to `dir`; an existing chart is
 * first renamed aside and removed after the swap (POSIX cannot rename onto a non-empty directory,
 * so there is a moment between the two renames when `dir` is absent, never a half-written chart).
 * On failure the temporary directory is removed and an existing chart is put back.
 */
export async function writeChart(options: WriteChartOptions): Promise<void> {
  const dir = path.resolve(options.dir);
  try {
    await writeChartTo(dir, options.chart);
  } catch (e) {
    throw asEnclavifyError(e, `writing chart to ${dir}`, 'WRITE_FAILED');
  }
}

async function writeChartTo(dir: string, chart: WriteChartOptions['chart']): Promise<void> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  await mkdir(parent, { recursive: true });
  const exists = await checkReplaceable(dir);
  const suffix = randomBytes(6).toString('hex');
  const tmp = path.join(parent, `.${base}.tmp-${suffix}`);
  const old = path.join(parent, `.${base}.old-${suffix}`);
  await mkdir(tmp, { mode: 0o755 });
  try {
    for (const [rel, text] of chart.files) {
      const file = path.join(tmp, safeRelative(rel));
      await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
      await writeFileSynced(file, text);
    }
    if (exists) await rename(dir, old);
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (exists) await rename(old, dir).catch(() => undefined);
      throw e;
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  if (exists) await rm(old, { recursive: true, force: true });
  // make the renames durable
  const d = await open(parent, 'r').catch(() => undefined);
  if (d) {
    await d.sync().catch(() => undefined);
    await d.close();
  }
}
