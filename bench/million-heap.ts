/**
 * The in-process half of `npm run bench -- million`: `node --expose-gc --import tsx
 * bench/million-heap.ts REF` scans the image into a merged view, then walks it formatting every
 * tree line, and prints (one JSON line on stdout) the live memory after each phase (heap plus
 * typed arrays, after a full GC) per merged entry, and the process's peak RSS so far. What the
 * view keeps per entry, not what the garbage collector lets pile up between collections.
 */
import { liveBytes, peakRssMB } from './memory.js';
import { layersRootFs } from '../lib/oci/rootfs.js';
import { formatTreeLine } from '../lib/fs/tree.js';
import { openImage } from '../lib/store/index.js';

const live = () => liveBytes('bench/million-heap.ts');
const hwmMB = peakRssMB;
const t0 = performance.now();
const base = live();
const image = await openImage(process.argv[2]!);
const fs = await layersRootFs(await image.layers(), { image: image.name });
const scanS = (performance.now() - t0) / 1000;
const scanned = live() - base;
const scanHwm = hwmMB();
let n = 0;
let chars = 0;
const t1 = performance.now();
for (const e of fs.walk()) {
  chars += formatTreeLine(e).length;
  n++;
}
const walkS = (performance.now() - t1) / 1000;
const walked = live() - base;
console.log(JSON.stringify({
  entries: n,
  scan: { s: +scanS.toFixed(1), liveMB: Math.round(scanned / 1048576), bytesPerEntry: Math.round(scanned / n), peakRssMB: scanHwm },
  walk: { s: +walkS.toFixed(1), liveMB: Math.round(walked / 1048576), bytesPerEntry: Math.round(walked / n), peakRssMB: hwmMB(), chars },
}));
