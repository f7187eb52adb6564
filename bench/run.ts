/**
 * `npm run bench`: end-to-end throughput on a realistic image (Debian 12 + python3, built once by
 * ../shared/tools/make-python-image into $ENCLAVIFY_BENCH_DIR, default /tmp/enclavify-bench), or
 * on the small bb fixture when that image cannot be built. Prints one line per measurement and a
 * JSON summary; never asserts on time (benchmarks are not tests). `npm run bench -- million [N]`
 * runs bench/million.ts instead: peak RSS and time of tree/copy/convert on a layer of N empty files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as lib from '../lib/index.js';
import { RootFs } from '../lib/fs/merged.js';
import { convertBench, convertTable } from './convert.js';
import { syntheticBench } from './synthetic.js';
import { registryBench, registryLines } from './registry.js';
import { readFile } from '../lib/fs/read-file.js';
import { printStartup, startupBench } from './startup.js';

if (process.argv[2] === 'million') {
  // `npm run bench -- million [N]`: the memory bench of a layer of N empty files (bench/million.ts).
  await import('./million.js');
  process.exit(0);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(here, '..', '..', 'shared');
const benchDir = process.env.ENCLAVIFY_BENCH_DIR ?? '/tmp/enclavify-bench';
const results: Record<string, unknown> = { cpus: os.availableParallelism(), node: process.version };

function source(): { ref: string; label: string } {
  const py = path.join(benchDir, 'py');
  if (!existsSync(path.join(py, 'index.json')) && process.getuid?.() === 0) {
    console.error(`bench: building the python image into ${py} (about a minute)...`);
    const r = spawnSync(path.join(shared, 'tools', 'make-python-image'), [py], { stdio: 'inherit' });
    if (r.status !== 0) console.error('bench: could not build the python image; using the bb fixture');
  }
  if (existsSync(path.join(py, 'index.json'))) return { ref: `oci:${py}:py`, label: 'python image' };
  return { ref: `oci:${path.join(shared, 'fixtures', 'images', 'bb-oci')}:latest`, label: 'bb fixture' };
}

async function time<T>(label: string, fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  console.log(`${label.padEnd(48)} ${ms.toFixed(0).padStart(7)} ms`);
  return { ms, value };
}

const { ref, label } = source();
results.image = label;
const out = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-'));
try {
  const img = await lib.openImage(ref);
  const layers = await img.layers();
  const compressed = (await Promise.all(layers.map((l) => l.size()))).reduce((a, b) => a + b, 0);
  console.log(`${label}: ${layers.length} layers, ${(compressed / 1e6).toFixed(1)} MB compressed`);
  const scan = await time('scan (merged view, SHA-256 of every file)', () => RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() }))));
  const files = scan.value.entries().filter((e) => e.type === 'file');
  const bytes = files.reduce((a, e) => a + e.size, 0);
  results.files = files.length;
  results.scan = { ms: Math.round(scan.ms), MBps: +(bytes / 1e3 / scan.ms).toFixed(1) };
  // One file without the merged view: the layers are read top down until one decides the path.
  const one = scan.value.stat('etc/os-release') ? '/etc/os-release' : `/${files[0]!.path}`;
  const rf = await time(`readFile ${one} (top down, no merged view)`, () => readFile(img, one));
  results.readFile = { path: one, ms: Math.round(rf.ms), bytes: rf.value.length };
  const copy = await time('copy to a new OCI layout (verify + write)', () => lib.copyImage(ref, `oci:${out}/copy:x`));
  results.copy = { ms: Math.round(copy.ms), MBps: +(compressed / 1e3 / copy.ms).toFixed(1) };
  const anyLib = lib as Record<string, unknown>;
  if (typeof anyLib.fileClassify === 'function' && typeof anyLib.encryptFS === 'function') {
    const fc = anyLib.fileClassify as (o: object) => lib.Transform;
    const ef = anyLib.encryptFS as (o?: object) => lib.Transform;
    // /etc/python3.11 with /usr/lib/python3.11: its sitecustomize.py links there, and a link out of an
    // encrypted region is refused (issue 12).
    for (const dirs of label === 'python image' ? [['/app/data'], ['/usr/lib/python3.11', '/etc/python3.11']] : [['/app/data']]) {
      const dir = dirs.join(' --dir ');
      const conv = await time(`convert --dir ${dir}`, async () => {
        const p = await lib.pipeline(await lib.openImage(ref), [fc({ dirs }), ef({})], { tmpDir: out });
        try {
          return await lib.writeImage(p.image, `oci:${out}/conv:d${dir.replace(/\W/g, '_')}`);
        } finally {
          await p.dispose();
        }
      });
      results[`convert ${dir}`] = { ms: Math.round(conv.ms) };
    }
  }
  console.log('\nGramine encrypted files (64 MiB):');
  const pf = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'pf.ts'), '64'], { encoding: 'utf8' });
  console.log(pf.trim());
  results.pf = pf.trim().split('\n');
} finally {
  rmSync(out, { recursive: true, force: true });
}
// Whole-process conversion against skopeo and the floor (bench/convert.ts; needs `npm run build`).
if (label === 'python image') {
  console.log('\nconvert, whole processes, against skopeo and the floor:');
  const conv = await convertBench({ source: ref, runs: Number(process.env.ENCLAVIFY_BENCH_RUNS ?? 3) });
  console.log(convertTable(conv));
  results.convert = conv;
  // The synthetic 2 GB image: peak RSS must not grow with the image (bench/synthetic.ts).
  console.log('\nsynthetic 2 GB image, convert --dir /app/data (whole process):');
  const synth = await syntheticBench();
  const fullRss = conv.cases.full!.maxPeakRssMB; // run unless warmOnly
  console.log(`  ${synth.inputMB} MB of blobs: ${synth.convert.seconds} s wall, ${synth.convert.cpuSeconds} s CPU, ${synth.convert.peakRssMB} MB peak RSS (python image full conversion: ${fullRss} MB; bound +10%); verify ${synth.verify.seconds} s, ${synth.verify.peakRssMB} MB`);
  results.synthetic = { ...synth, rssToPythonFull: +(synth.convert.peakRssMB / fullRss).toFixed(2) };
  // Registry push and pull against skopeo (bench/registry.ts), when skopeo and the registry are installed.
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (has('skopeo') && has('docker-registry')) {
    console.log('\nregistry push and pull, whole processes, against skopeo:');
    const reg = await registryBench({ source: ref, runs: Number(process.env.ENCLAVIFY_BENCH_RUNS ?? 3) });
    console.log(registryLines(reg));
    results.registry = reg;
  } else console.log('\nregistry push and pull: skipped (needs skopeo and docker-registry: ../shared/tools/install-interop-tools)');
}
console.log('\nPackaging and start-up:');
const startup = await startupBench();
printStartup(startup);
results.startup = startup;
console.log('\nCLI start-up (enclavify --help, ... against node -e 0, bench/cli-startup.ts):');
execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'cli-startup.ts'), '10'], { stdio: 'inherit' });
console.log('\n' + JSON.stringify(results));
