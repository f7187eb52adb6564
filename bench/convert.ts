/**
 * Conversion against skopeo and the hardware floor, as whole processes, alternating (issue 11):
 *
 * - `enclavify convert` of the python image with `/usr/lib/python3.11` (and `/etc/python3.11`, where
 *   its `sitecustomize.py` link points) and `/app` encrypted, the rest authenticated ("full"), and with only `/app` encrypted ("app": base layers unchanged);
 * - `skopeo copy --encryption-key jwe:PUB` of the same layout (ocicrypt, every layer);
 * - the floor: `gzip -dc` of every layer (what any conversion that reads the layers pays);
 * - `enclavify verify` of the full conversion;
 * - the warm reconversion (issue 11), for both: "cold" converts the image with an empty scan cache
 *   (`--cache-dir` fresh), "warm" then converts a variant of it whose top layer (/app) changed and
 *   whose base layers are the same (bench/variant.ts, one variant per run), to a new destination
 *   with the complete image written, through the cache the cold run filled. The other enclavify
 *   cases run with `--no-cache`, as before the cache existed;
 * - crypto throughput of the node:crypto backend next to `openssl speed`.
 *
 * Wall time, CPU time (user + system) and peak RSS come from /usr/bin/time; medians of N runs;
 * the load average is recorded because other jobs share this machine's cores. Sizes: the input's
 * compressed layers, each conversion's, and the ciphertext overhead of the encrypted files.
 * Never asserts: a benchmark is not a test.
 *
 * Alone:  node --import tsx bench/convert.ts [--json] [--runs N] [--source oci:DIR:TAG] [--warm-only]
 * Needs `npm run build` (the CLI runs from dist/), skopeo, openssl, gzip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { median, timed, type Run } from './process.js';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeVariant } from './variant.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const cli = path.join(repo, 'bin', 'enclavify.cjs');

export type { Run };
/** A case's runs and medians. */
export interface Case { runs: Run[]; medianSeconds: number; medianCpuSeconds: number; maxPeakRssMB: number }
export interface ConvertBenchResult {
  image: string;
  inputCompressedMB: number;
  runs: number;
  cases: Partial<Record<CaseName, Case>>;
  ratios: Partial<{ fullToFloor: number; appToFloor: number; fullToSkopeo: number; appToSkopeo: number; fullCpuToFloorCpu: number; fullWarmToCold: number; appWarmToCold: number; fullWarmCpuToCold: number; appWarmCpuToCold: number }>;
  sizes: { inputMB: number; fullMB: number; appMB: number; skopeoMB: number };
  crypto: { nodeAesGcmMBps: number; nodeSha256MBps: number; opensslAesGcmMBps: number | null; opensslSha256MBps: number | null };
  loadAverage: { before: number; after: number };
  note: string;
}

type CaseName = 'full' | 'app' | 'skopeo' | 'floor' | 'verify' | 'fullCold' | 'fullWarm' | 'appCold' | 'appWarm';

function caseOf(runs: Run[]): Case {
  return { runs, medianSeconds: median(runs.map((r) => r.seconds)), medianCpuSeconds: median(runs.map((r) => r.cpuSeconds)), maxPeakRssMB: Math.max(...runs.map((r) => r.peakRssMB)) };
}

/** The layer blobs of a layout's (first or tagged) manifest: paths and total compressed size. */
function layersOf(dir: string, tag?: string): { files: string[]; bytes: number } {
  const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const d = (tag ? idx.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) : undefined) ?? idx.manifests[0];
  const blob = (digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice(7));
  const m = JSON.parse(readFileSync(blob(d.digest), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
  return { files: m.layers.map((l) => blob(l.digest)), bytes: m.layers.reduce((a, l) => a + l.size, 0) };
}

function throughput(fn: (buf: Buffer) => void, mb = 256): number {
  const buf = randomBytes(1 << 20);
  fn(buf);
  const t = performance.now();
  for (let i = 0; i < mb; i++) fn(buf);
  return +(mb / ((performance.now() - t) / 1000)).toFixed(0);
}

function opensslSpeed(alg: string): number | null {
  const r = spawnSync('openssl', ['speed', '-evp', alg, '-bytes', '16384', '-seconds', '1'], { encoding: 'utf8' });
  // The last line: "<alg>  <kB/s for 16384-byte blocks>k"
  const line = r.stdout?.trim().split('\n').pop() ?? '';
  const m = /([\d.]+)k\s*$/.exec(line);
  return m ? +(Number(m[1]) / 1000).toFixed(0) : null;
}

export async function convertBench(opts: { source?: string | undefined; runs?: number | undefined; log?: ((s: string) => void) | undefined; warmOnly?: boolean | undefined } = {}): Promise<ConvertBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  if (!existsSync(path.join(repo, 'dist', 'cli', 'main.js'))) throw new Error('convert bench: run `npm run build` first (the CLI runs from dist/)');
  const runs = opts.runs ?? 3;
  const py = process.env.ENCLAVIFY_PYTHON_IMAGE ?? '/tmp/enclavify-tools/python-image';
  const source = opts.source ?? `oci:${py}:py`;
  const srcDir = source.slice(4, source.lastIndexOf(':'));
  const srcTag = source.slice(source.lastIndexOf(':') + 1);
  if (!existsSync(path.join(srcDir, 'index.json'))) throw new Error(`convert bench: no image at ${srcDir} (build it with ../shared/tools/make-python-image ${srcDir})`);
  const input = layersOf(srcDir, srcTag);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-conv-'));
  const loadBefore = +os.loadavg()[0].toFixed(2);
  try {
    execFileSync('openssl', ['genrsa', '-out', path.join(tmp, 'priv.pem'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', path.join(tmp, 'priv.pem'), '-pubout', '-out', path.join(tmp, 'pub.pem')], { stdio: 'ignore' });
    const rs: Record<CaseName, Run[]> = { full: [], app: [], skopeo: [], floor: [], verify: [], fullCold: [], fullWarm: [], appCold: [], appWarm: [] };
    const sizes = { fullMB: 0, appMB: 0, skopeoMB: 0 };
    // The warm runs' sources: the image with a changed /app, one per run (so the top layer is new each time).
    const variants: string[] = [];
    for (let i = 0; i < runs; i++) {
      const v = `oci:${path.join(tmp, `variant-${i}`)}:py`;
      await writeVariant(source, v, 'app/app.py', `print("variant ${i}")\n`);
      variants.push(v);
    }
    // /etc/python3.11 too: /usr/lib/python3.11/sitecustomize.py is a symlink to it, and a link out of
    // an encrypted region is refused (Gramine's encrypted mounts cannot hold links; issue 12).
    const dirsOf = { full: ['/usr/lib/python3.11', '/etc/python3.11', '/app'], app: ['/app'] } as const;
    for (let i = 0; i < runs; i++) {
      const order = opts.warmOnly ? (['fullCold', 'fullWarm', 'appCold', 'appWarm'] as const) : (['full', 'app', 'skopeo', 'floor', 'fullCold', 'fullWarm', 'appCold', 'appWarm'] as const);
      for (const who of order) {
        const out = path.join(tmp, `out-${who}`);
        const art = path.join(tmp, `art-${who}`);
        rmSync(out, { recursive: true, force: true });
        rmSync(art, { recursive: true, force: true });
        let r: Run;
        if (who === 'fullCold' || who === 'appCold' || who === 'fullWarm' || who === 'appWarm') {
          const kind = who.startsWith('full') ? 'full' : 'app';
          const cache = path.join(tmp, `cache-${kind}`);
          const warm = who.endsWith('Warm');
          if (!warm) rmSync(cache, { recursive: true, force: true }); // cold: an empty cache
          mkdirSync(art);
          r = timed(cli, ['convert', '-q', '--cache-dir', cache, '--from', warm ? variants[i]! : source, '--to', `oci:${out}:c`, ...dirsOf[kind].flatMap((d) => ['--dir', d]), '--output-dir', art], tmp);
        } else if (who === 'full' || who === 'app') {
          mkdirSync(art);
          r = timed(cli, ['convert', '-q', '--no-cache', '--from', source, '--to', `oci:${out}:c`, ...dirsOf[who].flatMap((d) => ['--dir', d]), '--output-dir', art], tmp);
          sizes[`${who}MB`] = +(layersOf(out, 'c').bytes / 1e6).toFixed(1);
          if (who === 'full') {
            const v = timed(cli, ['verify', '-q', '--keys', path.join(art, 'keys.json'), `oci:${out}:c`], tmp);
            rs.verify.push(v);
          }
        } else if (who === 'skopeo') {
          r = timed('skopeo', ['copy', '-q', '--encryption-key', `jwe:${path.join(tmp, 'pub.pem')}`, source, `oci:${out}:c`], tmp);
          sizes.skopeoMB = +(layersOf(out, 'c').bytes / 1e6).toFixed(1);
        } else {
          r = timed('sh', ['-c', 'for f in "$@"; do gzip -dc "$f" > /dev/null || exit 1; done', 'floor', ...input.files], tmp);
        }
        rs[who].push(r);
        log(`${who.padEnd(7)} run ${i + 1}: ${r.seconds.toFixed(2)} s (CPU ${r.cpuSeconds.toFixed(2)} s), ${r.peakRssMB.toFixed(0)} MB, load ${os.loadavg()[0].toFixed(1)}`);
      }
    }
    const cases = Object.fromEntries(Object.entries(rs).filter(([, v]) => v.length).map(([k, v]) => [k, caseOf(v)])) as ConvertBenchResult['cases'];
    const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? NaN : +(a / b).toFixed(2));
    const c = cases as Record<CaseName, Case | undefined>;
    const key = randomBytes(32), iv = randomBytes(12);
    const crypto = {
      nodeAesGcmMBps: throughput((b) => { const c = createCipheriv('aes-256-gcm', key, iv); c.update(b); c.final(); }),
      nodeSha256MBps: throughput((b) => { createHash('sha256').update(b).digest(); }, 1024),
      opensslAesGcmMBps: opensslSpeed('aes-256-gcm'),
      opensslSha256MBps: opensslSpeed('sha256'),
    };
    return {
      image: source,
      inputCompressedMB: +(input.bytes / 1e6).toFixed(1),
      runs,
      cases,
      ratios: {
        fullToFloor: ratio(c.full?.medianSeconds, c.floor?.medianSeconds),
        appToFloor: ratio(c.app?.medianSeconds, c.floor?.medianSeconds),
        fullToSkopeo: ratio(c.full?.medianSeconds, c.skopeo?.medianSeconds),
        appToSkopeo: ratio(c.app?.medianSeconds, c.skopeo?.medianSeconds),
        fullCpuToFloorCpu: ratio(c.full?.medianCpuSeconds, c.floor?.medianCpuSeconds),
        fullWarmToCold: ratio(c.fullWarm?.medianSeconds, c.fullCold?.medianSeconds),
        appWarmToCold: ratio(c.appWarm?.medianSeconds, c.appCold?.medianSeconds),
        fullWarmCpuToCold: ratio(c.fullWarm?.medianCpuSeconds, c.fullCold?.medianCpuSeconds),
        appWarmCpuToCold: ratio(c.appWarm?.medianCpuSeconds, c.appCold?.medianCpuSeconds),
      },
      sizes: { inputMB: +(input.bytes / 1e6).toFixed(1), ...sizes },
      crypto,
      loadAverage: { before: loadBefore, after: +os.loadavg()[0].toFixed(2) },
      note: `${os.availableParallelism()} cores, node ${process.version}; medians of ${runs} alternating runs, whole processes (enclavify from dist/, run as an installed command is: bin/enclavify.cjs executed); floor = gzip -dc of every layer, one after the other`,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The result as a table. */
export function convertTable(r: ConvertBenchResult): string {
  const row = (name: string, c: Case | undefined, extra = '') => (c ? `| ${name} | ${c.medianSeconds.toFixed(2)} s | ${c.medianCpuSeconds.toFixed(2)} s | ${c.maxPeakRssMB.toFixed(0)} MB | ${extra} |` : undefined);
  const q = r.ratios;
  return [
    `${r.image} (${r.inputCompressedMB} MB compressed); ${r.note}; load ${r.loadAverage.before} → ${r.loadAverage.after}`,
    '',
    '| case | wall | CPU | peak RSS | |',
    '|---|---|---|---|---|',
    row('convert python3.11 + /app', r.cases.full, `${r.ratios.fullToFloor}x floor, ${r.ratios.fullToSkopeo}x skopeo; ${r.sizes.fullMB} MB`),
    row('convert /app only', r.cases.app, `${r.ratios.appToFloor}x floor, ${r.ratios.appToSkopeo}x skopeo; ${r.sizes.appMB} MB`),
    row('skopeo copy --encryption-key jwe:', r.cases.skopeo, `${r.sizes.skopeoMB} MB`),
    row('floor (gzip -dc of every layer)', r.cases.floor),
    row('verify (full conversion)', r.cases.verify),
    row('cold: python3.11 + /app, empty cache', r.cases.fullCold),
    row('warm: python3.11 + /app, changed /app', r.cases.fullWarm, `${q.fullWarmToCold}x cold (CPU ${q.fullWarmCpuToCold}x)`),
    row('cold: /app only, empty cache', r.cases.appCold),
    row('warm: /app only, changed /app', r.cases.appWarm, `${q.appWarmToCold}x cold (CPU ${q.appWarmCpuToCold}x)`),
    '',
    `crypto: node:crypto AES-256-GCM ${r.crypto.nodeAesGcmMBps} MB/s (openssl speed ${r.crypto.opensslAesGcmMBps ?? '?'} MB/s), SHA-256 ${r.crypto.nodeSha256MBps} MB/s (openssl ${r.crypto.opensslSha256MBps ?? '?'} MB/s)`,
  ].filter((l) => l !== undefined).join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const arg = (n: string) => {
    const i = argv.indexOf(n);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const r = await convertBench({ runs: arg('--runs') ? Number(arg('--runs')) : undefined, source: arg('--source'), warmOnly: argv.includes('--warm-only') });
  console.log(argv.includes('--json') ? JSON.stringify(r) : convertTable(r));
}
