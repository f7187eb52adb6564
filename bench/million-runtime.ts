/**
 * In process, what a runtime conversion of the million-file image costs (issue 10: under 600 MB and
 * 60 s): `node --expose-gc --import tsx bench/million-runtime.ts REF [DIR]` runs fileClassify,
 * encryptFS (`--dir DIR`, default /data/d0000) and a runtime's refreshProtectionManifest in one
 * pipeline, and prints (one JSON line on stdout) after each step the live memory (heap plus typed
 * arrays, after a full GC), the peak RSS so far and the time. `npm run bench -- million` runs it
 * on the image it generated. Asserts nothing.
 */
import { liveBytes, peakRssMB } from './memory.js';
import { encryptFS, fileClassify, openImage, pipeline, refreshProtectionManifest, type Transform } from '../lib/index.js';

const hwmMB = peakRssMB;
const liveMB = () => Math.round(liveBytes('bench/million-runtime.ts') / 1048576);
liveMB(); // fails at once without --expose-gc
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
