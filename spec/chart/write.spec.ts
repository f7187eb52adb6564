/** writeChart: atomic replacement, no leftovers, and refusal to delete what is not a chart. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { buildChart, writeChart } from '../../lib/chart/index.js';
import { tempDir } from './render-helpers.js';

const chartA = buildChart({ serviceName: 'a', image: 'a:1', runtime: 'gramine', expose: [80] });
const chartB = buildChart({ serviceName: 'a', image: 'a:2', runtime: 'gramine' });

test('writes all files; replaces an existing chart; leaves no temp dirs', async () => {
  const t = tempDir();
  try {
    const dir = path.join(t.dir, 'out', 'chart');
    await writeChart({ dir, chart: chartA });
    for (const [rel, text] of chartA.files) assert.equal(readFileSync(path.join(dir, rel), 'utf8'), text, rel);
    writeFileSync(path.join(dir, 'stale.txt'), 'old');
    await writeChart({ dir, chart: chartB });
    assert.equal(existsSync(path.join(dir, 'stale.txt')), false, 'old chart fully replaced');
    assert.equal(existsSync(path.join(dir, 'templates', 'service.yaml')), false, 'file absent from the new chart is gone');
    assert.equal(readFileSync(path.join(dir, 'values.yaml'), 'utf8'), chartB.files.get('values.yaml'));
    assert.deepEqual(readdirSync(path.dirname(dir)), ['chart'], 'no .tmp/.old directories left');
  } finally {
    t.cleanup();
  }
});

test('a failed write leaves the existing chart intact and no temp dir', async () => {
  const t = tempDir();
  try {
    const dir = path.join(t.dir, 'chart');
    await writeChart({ dir, chart: chartA });
    const bad = { files: new Map([...chartB.files, ['../escape.txt', 'x']]) };
    await assert.rejects(writeChart({ dir, chart: bad }), /not a relative path inside the chart/);
    assert.equal(readFileSync(path.join(dir, 'values.yaml'), 'utf8'), chartA.files.get('values.yaml'));
    assert.deepEqual(readdirSync(t.dir), ['chart']);
    assert.equal(existsSync(path.join(t.dir, 'escape.txt')), false);
  } finally {
    t.cleanup();
  }
});

test('attack: refuses to replace a non-empty directory that is not a chart, or a file', async () => {
  const t = tempDir();
  try {
    const home = path.join(t.dir, 'home');
    mkdirSync(home);
    writeFileSync(path.join(home, 'precious.txt'), 'keep me');
    await assert.rejects(writeChart({ dir: home, chart: chartA }), /not empty and has no Chart\.yaml; refusing/);
    assert.equal(readFileSync(path.join(home, 'precious.txt'), 'utf8'), 'keep me');
    const file = path.join(t.dir, 'file');
    writeFileSync(file, 'x');
    await assert.rejects(writeChart({ dir: file, chart: chartA }), /not a directory/);
    const empty = path.join(t.dir, 'empty');
    mkdirSync(empty);
    await writeChart({ dir: empty, chart: chartA });
    assert.ok(existsSync(path.join(empty, 'Chart.yaml')));
    assert.deepEqual(readdirSync(t.dir).sort(), ['empty', 'file', 'home']);
  } finally {
    t.cleanup();
  }
});
