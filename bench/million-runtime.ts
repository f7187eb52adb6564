/**
 * In process, what a runtime conversion of the million-file image costs (issue 10: under 600 MB and
 * 60 s): `node --expose-gc --import tsx bench/million-runtime.ts REF [DIR]` runs fileClassify,
 * encryptFS (`--dir DIR`, default /data/d0000) and a runtime's refreshProtectionManifest in one
 * pipeline, and prints (one JSON line on stdout) after each step the live memory (heap plus typed
 * arrays, after a full GC), the peak RSS so far and the time. `npm run bench -- million` runs it
 * on the image it generated. Asserts nothing.
 */
import { readFileSync } from 'node:fs';
import { encryptFS, fileClassify, openImage, pipeline, refreshProtectionManifest, type Transform } from '../lib/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('bench/million-runtime.ts: run node with --expose-gc');
const hwmMB = () => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024);
const liveMB = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return Math.round((m.heapUsed + m.external) / 1048576);
};
const t0 = performance.now();
const steps: Array<{ after: string; s: number; liveMB: number; peakRssMB: number }> = [];
const mark = (after: string): Transform => ({
  name: `mark ${after}`,
  async apply() {
    steps.push({ after, s: +((performance.now() - t0) / 1000).toFixed(1), liveMB: liveMB(), peakRssMB: hwmMB() });
  },
});
const refresh: Transform = {
  name: 'refresh',
  async apply(draft) {
    await refreshProtectionManifest(draft);
  },
};
const image = await openImage(process.argv[2]!);
const result = await pipeline(image, [fileClassify({ dirs: [process.argv[3] ?? '/data/d0000'] }), mark('fileClassify'), encryptFS(), mark('encryptFS'), refresh, mark('refresh')], { cache: false });
steps.push({ after: 'pipeline', s: +((performance.now() - t0) / 1000).toFixed(1), liveMB: liveMB(), peakRssMB: hwmMB() });
await result.dispose();
console.log(JSON.stringify({ steps, seconds: +((performance.now() - t0) / 1000).toFixed(1), peakRssMB: hwmMB() }));
