/**
 * Progress events: byte progress is throttled by the emitter (start, at most ~10 a second, done),
 * writes report every layer, pipelines report transforms and warnings, and the CLI renders them
 * (info hidden by --quiet, warnings always, a redrawn status line only on a terminal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteProgress, BYTE_EVENTS_PER_SECOND, type ProgressEvent } from '../../lib/oci/progress.js';
import { ProgressRenderer } from '../../lib/cli/progress.js';
import { fileClassify, openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import { bbOci, scratch } from '../helpers/images.js';

test('ByteProgress: start, at most 10 progress events per second of the clock, done', () => {
  const events: ProgressEvent[] = [];
  let t = 0;
  const p = new ByteProgress((e) => events.push(e), { phase: 'write', message: 'writing x', blob: 'sha256:ab' }, 3000, () => t).start();
  // 3 simulated seconds, one byte a millisecond.
  for (let i = 0; i < 3000; i++) {
    t++;
    p.add(1);
  }
  p.finish();
  p.finish(); // idempotent
  const progress = events.filter((e) => e.status === 'progress');
  assert.equal(events[0].status, 'start');
  assert.equal(events.at(-1)!.status, 'done');
  assert.equal(events.at(-1)!.bytesDone, 3000);
  assert.equal(events.filter((e) => e.status === 'done').length, 1);
  assert.ok(progress.length <= 3 * BYTE_EVENTS_PER_SECOND, `${progress.length} progress events in 3 s`);
  assert.ok(progress.length >= 3 * BYTE_EVENTS_PER_SECOND - 1);
  for (const e of events) assert.equal(e.bytesTotal, 3000);
  const done = events.map((e) => e.bytesDone!);
  assert.deepEqual(done, [...done].sort((a, b) => a - b));
});

test('writeImage reports each layer: start and done with its size, or skipped when present', async () => {
  const s = scratch();
  try {
    const img = await openImage(`oci:${bbOci}:latest`);
    const layers = await img.layers();
    const events: ProgressEvent[] = [];
    await writeImage(img, `oci:${s.dir}/o:x`, { onProgress: (e) => events.push(e) });
    for (const [i, l] of layers.entries()) {
      const mine = events.filter((e) => e.layer === i);
      assert.equal(mine[0].status, 'start');
      assert.equal(mine.at(-1)!.status, 'done');
      assert.equal(mine.at(-1)!.bytesDone, await l.size());
      assert.equal(mine.at(-1)!.bytesTotal, await l.size());
      assert.equal(mine[0].blob, await l.digest());
      assert.ok(mine.every((e) => e.phase === 'write'));
    }
    const again: ProgressEvent[] = [];
    await writeImage(img, `oci:${s.dir}/o:y`, { onProgress: (e) => again.push(e) });
    assert.deepEqual(again.map((e) => e.status), layers.map(() => 'skipped'));
    const archive: ProgressEvent[] = [];
    await writeImage(img, `docker-archive:${s.dir}/a.tar`, { onProgress: (e) => archive.push(e) });
    assert.equal(archive.filter((e) => e.status === 'done').length, layers.length);
  } finally {
    s.done();
  }
});

test('pipeline events: each transform starts, transforms report and warn, new layers report bytes', async () => {
  const img = await openImage(`oci:${bbOci}:latest`);
  const events: ProgressEvent[] = [];
  const mine: Transform = {
    name: 'mine',
    async apply(d) {
      d.progress('hello');
      d.warn('careful');
      d.addLayer(await d.buildLayer([{ entry: { path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 1 }, content: Buffer.from('x') }], 'x layer'), { createdBy: 'x' });
    },
  };
  const out = await pipeline(img, [fileClassify(), mine], { onProgress: (e) => events.push(e) });
  try {
    assert.ok(events.some((e) => e.phase === 'transform' && e.transform === 'fileClassify' && /start/.test(e.message)));
    assert.ok(events.some((e) => e.phase === 'classify' && e.transform === 'fileClassify'));
    assert.ok(events.some((e) => e.transform === 'mine' && e.message === 'hello' && e.level === undefined));
    assert.ok(events.some((e) => e.transform === 'mine' && e.message === 'careful' && e.level === 'warning'));
    const layer = events.filter((e) => e.phase === 'layer' && e.transform === 'mine');
    assert.deepEqual([layer[0].status, layer.at(-1)!.status], ['start', 'done']);
    assert.ok(events.some((e) => e.phase === 'scan' && e.status === 'done'), 'the scan reports bytes per layer');
  } finally {
    await out.dispose();
  }
});

test('the CLI renderer: info unless quiet, warnings always, a status line only on a terminal', () => {
  const render = (quiet: boolean, tty: boolean) => {
    const lines: string[] = [];
    const raw: string[] = [];
    const r = new ProgressRenderer({ line: (t) => lines.push(t), tty: tty ? { write: (s) => raw.push(s), columns: 60 } : undefined }, quiet);
    r.listener({ phase: 'transform', message: 'fileClassify: start' });
    r.listener({ phase: 'sign', message: 'debug enclave', level: 'warning' });
    r.listener({ phase: 'write', message: 'writing layer 0', blob: 'sha256:aa', layer: 0, status: 'start', bytesDone: 0, bytesTotal: 2000 });
    r.listener({ phase: 'write', message: 'writing layer 0', blob: 'sha256:aa', layer: 0, status: 'progress', bytesDone: 1000, bytesTotal: 2000 });
    r.listener({ phase: 'scan', message: 'scanning layer 1', layer: 1, status: 'start', bytesDone: 0 });
    r.listener({ phase: 'write', message: 'writing layer 0', blob: 'sha256:aa', layer: 0, status: 'done', bytesDone: 2000, bytesTotal: 2000 });
    r.listener({ phase: 'scan', message: 'scanning layer 1', layer: 1, status: 'done', bytesDone: 5 });
    r.finish();
    return { lines, raw: raw.join('') };
  };
  const plain = render(false, false);
  assert.deepEqual(plain.lines, ['enclavify: fileClassify: start', 'enclavify: warning: debug enclave', 'enclavify: writing layer 0']);
  assert.equal(plain.raw, '');
  assert.deepEqual(render(true, false).lines, ['enclavify: warning: debug enclave']);
  const term = render(false, true);
  assert.deepEqual(term.lines, plain.lines);
  assert.match(term.raw, /\r\x1b\[Kenclavify: writing layer 0 50% \(1\.00 kB\/2\.00 kB\)/);
  assert.ok(term.raw.endsWith('\r\x1b[K'), 'the status line is cleared at the end');
  assert.equal(render(true, true).raw, '', '--quiet draws no status line');
});
