/**
 * Registry push and pull against skopeo, as whole processes: `enclavify copy` of the converted
 * python image into a fresh local registry against `skopeo copy oci:… docker://…`, and out of it
 * into a new layout against `skopeo copy docker://… oci:…`; runs alternate (ours, skopeo, ours,
 * ...), the median of each is reported with the ratio and our push's peak RSS (from
 * /usr/bin/time). Never asserts: a benchmark is not a test.
 *
 * Alone:  node --import tsx bench/registry.ts [--json] [--runs N] [--source oci:DIR:TAG] [--push-only]
 *         [--baseline CHECKOUT]  (also pushes with another built checkout's CLI, in the same alternation: before/after)
 * From the main bench: `import { registryBench } from './registry.js'`.
 * Needs skopeo, docker-registry (../shared/tools/install-interop-tools) and `npm run build`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { median, timed, type Run } from './process.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const shared = path.resolve(repo, '..', 'shared');
const cli = path.join(repo, 'bin', 'enclavify.cjs');

/** One side's timings: each run's wall seconds, CPU seconds (user + system) and peak RSS (MB), and their medians. */
export interface Side { runs: number[]; medianSeconds: number; cpuSeconds: number[]; medianCpuSeconds: number; peakRssMB: number[]; medianPeakRssMB: number }
export interface RegistryBenchResult {
  image: string;
  compressedMB: number;
  runs: number;
  push: { enclavify: Side; skopeo: Side; ratio: number; baseline?: { enclavify: Side; ratio: number } | undefined };
  pull: { enclavify: Side; skopeo: Side; ratio: number };
  /** `enclavify copy docker://… oci:…` with validation (the default: layers checked in the same pass as the write), against skopeo's pull. */
  validatingPull: { enclavify: Side; ratio: number };
  /** The machine's 1-minute load average before and after the measurements (other jobs share the cores). */
  loadAverage: { before: number; after: number };
  /** Our push's largest peak RSS over the runs, MB (target < 200). */
  pushPeakRssMB: number;
  note: string;
}


async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A fresh registry (its blob store empty, so nothing is skipped or mounted). */
async function registry(): Promise<{ host: string; stop: () => void }> {
  const out = execFileSync(path.join(shared, 'tools', 'start-registry'), ['--port', String(await freePort())], { encoding: 'utf8' });
  const v = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  return {
    host: v.REGISTRY,
    stop: () => {
      try {
        process.kill(Number(v.REGISTRY_PID));
      } catch {
        // gone
      }
      spawnSync('sleep', ['0.3']);
      rmSync(v.REGISTRY_DIR, { recursive: true, force: true });
    },
  };
}

function side(rs: Run[]): Side {
  const runs = rs.map((r) => r.seconds), peak = rs.map((r) => r.peakRssMB), cpu = rs.map((r) => r.cpuSeconds);
  return { runs, medianSeconds: median(runs), cpuSeconds: cpu, medianCpuSeconds: median(cpu), peakRssMB: peak, medianPeakRssMB: median(peak) };
}

/** The converted python image (built once into `dir` by `enclavify convert`), or the given source. */
function convertedSource(source: string, dir: string, log: (s: string) => void): string {
  const out = `oci:${dir}:conf`;
  if (existsSync(path.join(dir, 'index.json'))) return out;
  log(`registry bench: converting ${source} into ${dir} (once)...`);
  const art = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-art-'));
  try {
    execFileSync(process.execPath, [cli, 'convert', '-q', '--from', source, '--to', out, '--dir', '/usr/share/doc', '--output-dir', art], { stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    rmSync(art, { recursive: true, force: true });
  }
  return out;
}

/**
 * Measures push and pull, ours against skopeo's, `runs` times each, alternating.
 * `source` defaults to the python image ($ENCLAVIFY_PYTHON_IMAGE, tag py).
 */
export async function registryBench(opts: { source?: string | undefined; runs?: number | undefined; workDir?: string | undefined; log?: ((s: string) => void) | undefined; baseline?: string | undefined; pushOnly?: boolean | undefined } = {}): Promise<RegistryBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  if (!existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) throw new Error('registry bench: run `npm run build` first (the CLI runs from dist/)');
  const runs = opts.runs ?? 3;
  const py = process.env.ENCLAVIFY_PYTHON_IMAGE ?? '/tmp/enclavify-tools/python-image';
  const source = opts.source ?? `oci:${py}:py`;
  const work = opts.workDir ?? path.join(process.env.ENCLAVIFY_BENCH_DIR ?? '/tmp/enclavify-bench', 'registry');
  const image = convertedSource(source, path.join(work, 'py-conf'), log);
  const layoutDir = image.slice(4, image.lastIndexOf(':'));
  const idx = JSON.parse(readFileSync(path.join(layoutDir, 'index.json'), 'utf8'));
  const man = JSON.parse(readFileSync(path.join(layoutDir, 'blobs', 'sha256', idx.manifests.find((d: { annotations?: Record<string, string> }) => d.annotations?.['org.opencontainers.image.ref.name'] === 'conf').digest.slice(7)), 'utf8'));
  const compressedMB = +(man.layers.reduce((a: number, l: { size: number }) => a + l.size, 0) / 1e6).toFixed(1);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-reg-'));
  const loadBefore = +os.loadavg()[0].toFixed(2);
  try {
    const push = { ours: [] as Run[], skopeo: [] as Run[], base: [] as Run[] };
    const baseCli = opts.baseline ? path.join(path.resolve(opts.baseline), 'bin', 'enclavify.cjs') : undefined;
    for (let i = 0; i < runs; i++) {
      for (const who of baseCli ? ['ours', 'skopeo', 'base'] as const : ['ours', 'skopeo'] as const) {
        const reg = await registry();
        try {
          const dst = `docker://${reg.host}/bench/py:${who}`;
          const r = who === 'skopeo'
            ? timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', image, dst], tmp)
            : timed(who === 'ours' ? cli : baseCli!, ['copy', '-q', '--no-validate', image, dst], tmp);
          push[who].push(r);
          log(`push ${who.padEnd(6)} run ${i + 1}: ${r.seconds.toFixed(2)} s (CPU ${r.cpuSeconds.toFixed(2)} s), ${r.peakRssMB.toFixed(0)} MB, load ${os.loadavg()[0].toFixed(1)}`);
        } finally {
          reg.stop();
        }
      }
    }
    const pull = { ours: [] as Run[], skopeo: [] as Run[], validating: [] as Run[] };
    const reg = opts.pushOnly ? undefined : await registry();
    if (reg) try {
      execFileSync('skopeo', ['copy', '-q', '--dest-tls-verify=false', image, `docker://${reg.host}/bench/py:1`], { stdio: 'ignore' });
      for (let i = 0; i < runs; i++) {
        for (const who of ['ours', 'skopeo', 'validating'] as const) {
          const out = path.join(tmp, `pull-${who}-${i}`);
          const src = `docker://${reg.host}/bench/py:1`;
          const r = who === 'ours'
            ? timed(cli, ['copy', '-q', '--no-validate', src, `oci:${out}:x`], tmp)
            : who === 'validating'
              ? timed(cli, ['copy', '-q', src, `oci:${out}:x`], tmp)
              : timed('skopeo', ['copy', '-q', '--src-tls-verify=false', src, `oci:${out}:x`], tmp);
          rmSync(out, { recursive: true, force: true });
          pull[who].push(r);
          log(`pull ${who.padEnd(10)} run ${i + 1}: ${r.seconds.toFixed(2)} s (CPU ${r.cpuSeconds.toFixed(2)} s), ${r.peakRssMB.toFixed(0)} MB, load ${os.loadavg()[0].toFixed(1)}`);
        }
      }
    } finally {
      reg.stop();
    }
    const ps = { enclavify: side(push.ours), skopeo: side(push.skopeo) };
    const bs = push.base.length ? side(push.base) : undefined;
    const none = { runs: [], medianSeconds: NaN, cpuSeconds: [], medianCpuSeconds: NaN, peakRssMB: [], medianPeakRssMB: NaN };
    const pl = opts.pushOnly ? { enclavify: none, skopeo: none } : { enclavify: side(pull.ours), skopeo: side(pull.skopeo) };
    const vp = opts.pushOnly ? none : side(pull.validating);
    return {
      image: `${image} (${compressedMB} MB compressed)`,
      compressedMB,
      runs,
      push: { ...ps, ratio: +(ps.enclavify.medianSeconds / ps.skopeo.medianSeconds).toFixed(2), ...(bs ? { baseline: { enclavify: bs, ratio: +(bs.medianSeconds / ps.skopeo.medianSeconds).toFixed(2) } } : {}) },
      pull: { ...pl, ratio: +(pl.enclavify.medianSeconds / pl.skopeo.medianSeconds).toFixed(2) },
      validatingPull: { enclavify: vp, ratio: +(vp.medianSeconds / pl.skopeo.medianSeconds).toFixed(2) },
      loadAverage: { before: loadBefore, after: +os.loadavg()[0].toFixed(2) },
      pushPeakRssMB: Math.max(...push.ours.map((r) => r.peakRssMB)),
      note: `${os.availableParallelism()} cores, node ${process.version}; medians of ${runs} alternating runs, whole processes (enclavify from dist/, run as an installed command is: bin/enclavify.cjs executed; copy --no-validate as skopeo does not check layer contents)`,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The result as text: the image, then one line per measurement. */
export function registryLines(r: RegistryBenchResult, pushOnly = false): string {
  const lines = [`${r.image}; ${r.note}`];
  for (const k of pushOnly ? ['push'] as const : ['push', 'pull'] as const) {
    lines.push(`${k}: enclavify ${r[k].enclavify.medianSeconds.toFixed(2)} s (CPU ${r[k].enclavify.medianCpuSeconds.toFixed(2)} s), skopeo ${r[k].skopeo.medianSeconds.toFixed(2)} s (CPU ${r[k].skopeo.medianCpuSeconds.toFixed(2)} s), ratio ${r[k].ratio}`);
  }
  const b = r.push.baseline;
  if (b) lines.push(`push, baseline checkout: ${b.enclavify.medianSeconds.toFixed(2)} s (CPU ${b.enclavify.medianCpuSeconds.toFixed(2)} s, peak RSS ${b.enclavify.medianPeakRssMB} MB), ratio ${b.ratio}`);
  if (!pushOnly) lines.push(`pull with validation: enclavify ${r.validatingPull.enclavify.medianSeconds.toFixed(2)} s, ratio to skopeo's pull ${r.validatingPull.ratio}`);
  lines.push(`push peak RSS: ${r.pushPeakRssMB} MB; load average ${r.loadAverage.before} before, ${r.loadAverage.after} after`);
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const arg = (n: string) => {
    const i = argv.indexOf(n);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const pushOnly = argv.includes('--push-only');
  const r = await registryBench({ runs: arg('--runs') ? Number(arg('--runs')) : undefined, source: arg('--source'), baseline: arg('--baseline'), pushOnly });
  console.log(argv.includes('--json') ? JSON.stringify(r) : registryLines(r, pushOnly));
}
