import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { emitChart, injectRuntime, openImage, pipeline, scone, type PipelineResult } from '../../lib/index.js';
import { CHART, type ChartInfo } from '../../lib/transforms/emit-chart.js';
import { assertSameObjects, chartRenderTool, get, only, parseManifests, renderOk, tempDir, workloadOf } from '../chart/render-helpers.js';
import { bbOci } from '../helpers/images.js';

const bb = () => openImage(`oci:${bbOci}:latest`);

/** Writes the chart artifacts of a pipeline result under `dir`; returns the chart directory. */
function writeChartArtifacts(out: PipelineResult, dir: string): string {
  const info = out.state.get(CHART) as ChartInfo;
  for (const p of info.files) {
    const a = out.artifacts.get(p)!;
    const file = path.join(dir, p);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, a.data);
  }
  return path.join(dir, info.dir);
}

const text = (d: Uint8Array | string) => (typeof d === 'string' ? d : Buffer.from(d).toString('utf8'));

test('emitChart(scone): the chart renders with chart-render to exactly the manifests artifact', { skip: chartRenderTool.skip }, async () => {
  const t = tempDir();
  try {
    const out = await pipeline(
      await bb(),
      [
        injectRuntime(scone({ namespace: 'acme', name: 'bb', serviceName: 'web', binary: '/bin/sh', heap: '512M', cas: 'cas.acme:8081' })),
        emitChart({ image: 'registry.example/bb-confidential:1.0', expose: [8080], encryptedVolumes: ['data:/data'], volumes: ['cache:/var/cache'], set: ['replicaCount=2'], manifestsPath: 'manifests.yaml' }),
      ],
    );
    try {
      const info = out.state.get(CHART) as ChartInfo;
      assert.equal(info.name, 'sconify-web');
      assert.equal(info.dir, 'chart/sconify-web');
      for (const f of ['Chart.yaml', 'values.yaml', 'README.md', 'templates/workload.yaml', 'templates/service.yaml', 'templates/NOTES.txt', 'templates/_helpers.tpl']) {
        assert.ok(out.artifacts.has(`chart/sconify-web/${f}`), f);
      }
      const chartDir = writeChartArtifacts(out, t.dir);
      const rendered = renderOk(chartDir);
      const manifests = parseManifests(text(out.artifacts.get('manifests.yaml')!.data));
      assertSameObjects(rendered, manifests, 'chart-render vs --k8s-helm-manifests');
      const w = workloadOf(rendered);
      assert.equal(w.kind, 'Deployment');
      assert.equal(get(w, 'spec.replicas'), 2);
      const c = get(w, 'spec.template.spec.containers.0');
      assert.equal(c.image, 'registry.example/bb-confidential:1.0');
      const env = Object.fromEntries((c.env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]));
      assert.equal(env.SCONE_CONFIG_ID, 'acme/bb/web');
      assert.equal(env.SCONE_CAS_ADDR, 'cas.acme:8081');
      assert.equal(env.SCONE_HEAP, '512M');
      // LAS not given: pods use their node's IP, not the image's localhost default
      const las = (c.env as Array<{ name: string; valueFrom?: unknown }>).find((e) => e.name === 'SCONE_LAS_ADDR');
      assert.equal(get(las, 'valueFrom.fieldRef.fieldPath'), 'status.hostIP');
      assert.equal(get(c, 'resources.limits')['sgx.k8s.io/sgx'], 1);
      assert.equal(get(only(rendered, 'Service'), 'spec.ports.0.port'), 8080);
      // the values follow --set overrides at install time too
      const job = renderOk(chartDir, ['--set', 'workloadType=job', '--set', 'useSGXDevPlugin=azure']);
      assert.equal(workloadOf(job).kind, 'Job');
      assert.ok('kubernetes.azure.com/sgx_epc_mem_in_MiB' in get(workloadOf(job), 'spec.template.spec.containers.0.resources.limits'));
    } finally {
      await out.dispose();
    }
  } finally {
    t.cleanup();
  }
});

test('emitChart(gramine) without injectRuntime: runtime from the options, name from the image, device mode and parent dir', { skip: chartRenderTool.skip }, async () => {
  const t = tempDir();
  try {
    const out = await pipeline(await bb(), [emitChart({ image: 'registry.example/team/bb-conf:2.1', runtime: 'gramine', workloadType: 'statefulset', sgxDevice: 'disabled', parentDir: 'k8s', manifestsPath: 'k8s/manifests.yaml' })]);
    try {
      const info = out.state.get(CHART) as ChartInfo;
      assert.equal(info.dir, 'k8s/enclavify-bb-conf');
      const rendered = renderOk(writeChartArtifacts(out, t.dir));
      assertSameObjects(rendered, parseManifests(text(out.artifacts.get('k8s/manifests.yaml')!.data)));
      const w = workloadOf(rendered);
      assert.equal(w.kind, 'StatefulSet');
      assert.equal(get(w, 'spec.template.spec.containers.0.securityContext.privileged'), true);
      for (const o of rendered) {
        assert.ok(o.apiVersion && o.kind && o.metadata.name, JSON.stringify(o).slice(0, 80));
      }
    } finally {
      await out.dispose();
    }
  } finally {
    t.cleanup();
  }
});

test('emitChart: bad options fail with the option named', async () => {
  assert.throws(() => emitChart({ image: '' }), /image/);
  await assert.rejects(pipeline(await bb(), [emitChart({ image: 'x:1' })]), /no runtime/);
  await assert.rejects(pipeline(await bb(), [emitChart({ image: 'x:1', runtime: 'gramine', workloadType: 'pod' as 'job' })]), (e: Error & { code?: string }) => e.code === 'BAD_CHART' && /pod/.test(e.message));
  await assert.rejects(pipeline(await bb(), [emitChart({ image: 'x:1', runtime: 'gramine', volumes: ['v:relative'] })]), /not absolute/);
  await assert.rejects(pipeline(await bb(), [emitChart({ image: 'x:1', runtime: 'gramine', manifestsPath: '../escape.yaml' })]), /inside the output directory/);
  await assert.rejects(pipeline(await bb(), [emitChart({ image: 'x:1', runtime: 'gramine', parentDir: '/abs' })]), /inside the output directory/);
});
