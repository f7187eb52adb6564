/**
 * Test helpers for the chart: write a chart to a temp dir, render it with chart-render (the Go
 * text/template + Sprig renderer we check our templates against), parse its output, and compare
 * objects independently of their order.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { writeChart, type ChartResult, type KubeObject } from '../../lib/chart/index.js';
import { tool } from '../helpers/tools.js';

/** chart-render, or a skip reason. */
export const chartRenderTool = tool('chart-render');

/** A temp directory removed by the returned cleanup function. */
export function tempDir(prefix = 'enclavify-chart-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `chart` under `parent` (as `<parent>/<chart name>`) and returns the chart directory. */
export async function writeTo(parent: string, chart: ChartResult): Promise<string> {
  const dir = path.join(parent, chart.name);
  await writeChart({ dir, chart });
  return dir;
}

/** Result of one chart-render run. */
export interface RenderRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs chart-render on a chart directory with extra arguments (`--set`, `--name`, `-f`). */
export function chartRender(dir: string, args: string[] = []): RenderRun {
  const r = spawnSync(chartRenderTool.path!, [...args, dir], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Renders and requires success; returns the parsed objects. */
export function renderOk(dir: string, args: string[] = []): KubeObject[] {
  const r = chartRender(dir, args);
  assert.equal(r.status, 0, `chart-render ${args.join(' ')} failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

/** Parses a YAML stream as Kubernetes reads it (YAML 1.1), skipping empty documents. */
export function parseManifests(text: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(text, { version: '1.1' })) {
    assert.deepEqual(doc.errors, [], `YAML errors in rendered output`);
    const v = doc.toJS();
    if (v !== null && v !== undefined) out.push(v as KubeObject);
  }
  return out;
}

/** `Kind/name` of an object. */
export function keyOf(o: KubeObject): string {
  return `${o.kind}/${o.metadata.name}`;
}

/** Requires the same objects (deep equal), in any order, matched by kind and name. */
export function assertSameObjects(actual: KubeObject[], expected: KubeObject[], what = ''): void {
  const a = new Map(actual.map((o) => [keyOf(o), o]));
  const e = new Map(expected.map((o) => [keyOf(o), o]));
  assert.equal(a.size, actual.length, `${what}: duplicate kind/name in rendered objects`);
  assert.deepEqual([...a.keys()].sort(), [...e.keys()].sort(), `${what}: objects differ`);
  for (const [k, o] of e) assert.deepEqual(a.get(k), o, `${what}: ${k} differs`);
}

/** The one object of a kind (fails when there is not exactly one). */
export function only(objects: KubeObject[], kind: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0];
}

/** The workload (Deployment, StatefulSet, DaemonSet or Job). */
export function workloadOf(objects: KubeObject[]): KubeObject {
  const found = objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind));
  assert.equal(found.length, 1, `expected one workload, found ${found.map(keyOf).join(', ')}`);
  return found[0];
}

/** `any`-typed access into an object, for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function get(o: unknown, dotted: string): any {
  let cur: any = o;
  for (const k of dotted.split('.')) {
    if (cur === null || cur === undefined) return undefined;
    cur = /^\d+$/.test(k) && Array.isArray(cur) ? cur[Number(k)] : cur[k];
  }
  return cur;
}
