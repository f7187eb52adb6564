/**
 * `npm run bench -- million [N]`: memory and time of the merged view on one layer of N empty files
 * (default 1,000,000: 1000 directories of N/1000 files), as whole CLI processes. The OCI layout is
 * generated once (streamed: our tar writer into gzip) and cached in $ENCLAVIFY_BENCH_DIR (default
 * /tmp/enclavify-bench)/million-N. Each command runs under /usr/bin/time, which reports the peak
 * RSS (VmHWM) and the wall time; then bench/million-heap.ts measures, in one process, the live
 * memory the view keeps per entry after the scan and after a walk, and bench/million-runtime.ts a
 * runtime conversion's transforms in process. `ENCLAVIFY_BENCH_ONLY=tree,heap,runtime` picks runs. Prints one line per command and a JSON summary; asserts nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import type { FsEntry } from '../lib/fs/entry.js';
import { tarStream, type TarWriteItem } from '../lib/fs/tar-write.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const benchDir = process.env.ENCLAVIFY_BENCH_DIR ?? '/tmp/enclavify-bench';

function* items(files: number, perDir: number): Generator<TarWriteItem> {
  const base = { mode: 0o755, uid: 0, gid: 0, mtime: 1700000000, size: 0 };
  const empty = new Uint8Array(0);
  for (let d = 0; d * perDir < files; d++) {
    const dir = `data/d${String(d).padStart(4, '0')}`;
    yield { entry: { ...base, path: dir, type: 'dir' } };
    for (let f = 0; f < perDir && d * perDir + f < files; f++) {
      const entry: FsEntry = { ...base, path: `${dir}/file-${String(f).padStart(5, '0')}.txt`, type: 'file', mode: 0o644 };
      yield { entry, content: empty };
    }
  }
}

/** Digest and size of what passes through. */
class Count extends Transform {
  readonly h = createHash('sha256');
  size = 0;
  override _transform(c: Buffer, _e: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.h.update(c);
    this.size += c.length;
    cb(null, c);
  }
}

/** The cached layout with one gzip layer of `files` empty files; returns its directory. */
async function layout(files: number): Promise<string> {
  const dir = path.join(benchDir, `million-${files}`);
  if (existsSync(path.join(dir, 'index.json'))) return dir;
  console.error(`bench: generating ${files} files into ${dir}...`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'blobs', 'sha256'), { recursive: true });
  const layerTmp = path.join(tmp, 'layer.tmp');
  const plain = new Count(), packed = new Count();
  await pipeline(tarStream(items(files, 1000)), plain, createGzip({ level: 6 }), packed, createWriteStream(layerTmp));
  const layerDigest = packed.h.digest('hex');
  renameSync(layerTmp, path.join(tmp, 'blobs', 'sha256', layerDigest));
  const blob = (json: object) => {
    const b = Buffer.from(JSON.stringify(json));
    const d = createHash('sha256').update(b).digest('hex');
    writeFileSync(path.join(tmp, 'blobs', 'sha256', d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const config = blob({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${plain.h.digest('hex')}`] }, history: [{ created_by: 'bench/million.ts' }],
  });
  const manifest = blob({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: packed.size }],
  });
  writeFileSync(path.join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(path.join(tmp, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'm' } }],
  }));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

interface Measure { command: string; code: number | null; s: number; MB: number; stderr: string }

/** Runs the CLI under /usr/bin/time; stdout goes to `stdout` (a file path) or is discarded. */
async function measure(label: string, args: string[], timeoutS: number): Promise<Measure> {
  const node = process.execPath;
  const argv = ['-f', '%e %M', '--', node, '--import', 'tsx', path.join(here, 'cli.ts'), ...args];
  return await new Promise((resolve) => {
    const child = spawn('/usr/bin/time', argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' }, detached: true });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    // The whole process group: killing time alone would leave the CLI running.
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const lines = err.trim().split('\n');
      const m = /^([0-9.]+) ([0-9]+)$/.exec(lines[lines.length - 1] ?? '');
      const r: Measure = { command: label, code, s: m ? +m[1] : NaN, MB: m ? Math.round(+m[2] / 1024) : NaN, stderr: lines.slice(0, -1).slice(-3).join('\n') };
      console.log(`${label.padEnd(40)} ${m ? `${r.s.toFixed(1).padStart(6)} s ${String(r.MB).padStart(6)} MB peak RSS` : `did not finish (${timeoutS} s limit)`}${code ? `  exit ${code}: ${r.stderr}` : ''}`);
      resolve(r);
    });
  });
}

if (!existsSync('/usr/bin/time')) {
  console.error('bench million: needs /usr/bin/time (GNU time) for the peak RSS');
  process.exit(1);
}
const files = Number(process.argv.slice(2).find((a) => a !== 'million') ?? 1_000_000);
const timeout = Number(process.env.ENCLAVIFY_BENCH_TIMEOUT ?? 600);
const dir = await layout(files);
const gz = statSync(path.join(dir, 'blobs', 'sha256', (JSON.parse(readFileSync(path.join(dir, 'blobs', 'sha256', (JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0].digest.slice(7)), 'utf8')) as { layers: Array<{ digest: string }> }).layers[0].digest.slice(7))).size;
console.log(`one gzip layer of ${files} empty files (${(gz / 1e6).toFixed(1)} MB compressed), ${os.availableParallelism()} CPUs, node ${process.version}`);
const out = mkdtempSync(path.join(os.tmpdir(), 'enclavify-bench-million-'));
const ref = `oci:${dir}:m`;
const results: Record<string, unknown> = { files, gzipMB: +(gz / 1e6).toFixed(1) };
try {
  const runs: Array<[string, string[]]> = [
    ['baseline (enclavify --version)', ['--version']],
    ['tree', ['tree', '-q', ref]],
    ['copy', ['copy', '-q', ref, `oci:${out}/copy:m`]],
    ["convert (no --dir)", ["convert", "-q", "--from", ref, "--to", `oci:${out}/conv:m`]],
  ];
  const only = process.env.ENCLAVIFY_BENCH_ONLY?.split(',');
  for (const [label, args] of runs) {
    if (only && !only.some((o) => label.startsWith(o))) continue;
    const m = await measure(label, [...args, ...(label.startsWith('baseline') ? [] : (process.env.ENCLAVIFY_BENCH_ARGS ?? '').split(' ').filter(Boolean))], timeout);
    results[label.split(' ')[0]] = { s: m.s, MB: m.MB, ...(m.code ? { exit: m.code } : {}) };
  }
  if (!only || only.includes('heap')) {
    // Live memory of the view per entry, in process (bench/million-heap.ts), after each phase.
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'million-heap.ts'), ref], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: timeout * 1000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      const h = JSON.parse(line) as { scan: { liveMB: number; bytesPerEntry: number; s: number }; walk: { liveMB: number; bytesPerEntry: number; s: number; peakRssMB: number } };
      console.log(`${'heap in process: scan + merge'.padEnd(40)} ${h.scan.s.toFixed(1).padStart(6)} s ${String(h.scan.liveMB).padStart(6)} MB live (${h.scan.bytesPerEntry} B per entry)`);
      console.log(`${'heap in process: + walk, tree lines'.padEnd(40)} ${h.walk.s.toFixed(1).padStart(6)} s ${String(h.walk.liveMB).padStart(6)} MB live (${h.walk.bytesPerEntry} B per entry), ${h.walk.peakRssMB} MB peak RSS`);
      results.heap = h;
    } catch {
      console.log(`heap in process: failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
  if (!only || only.includes('runtime')) {
    // A runtime conversion's transforms in process (bench/million-runtime.ts): classify, encryptFS, refresh.
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(here, 'million-runtime.ts'), ref, '/data/d0000'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: timeout * 1000 });
    try {
      const h = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { steps: Array<{ after: string; s: number; liveMB: number; peakRssMB: number }>; seconds: number; peakRssMB: number };
      for (const st of h.steps) console.log(`${`runtime in process: ${st.after}`.padEnd(40)} ${st.s.toFixed(1).padStart(6)} s ${String(st.liveMB).padStart(6)} MB live, ${st.peakRssMB} MB peak RSS`);
      results.runtime = h;
    } catch {
      console.log(`runtime in process: failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
console.log('\n' + JSON.stringify(results));
