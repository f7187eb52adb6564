/**
 * The CoCo chart: rendered by chart-render (Go templates, as Helm) equal to our model for every TEE
 * and workload type; the pod gets the TEE's runtime class, the init-data annotation and
 * imagePullPolicy Always, and no SGX device, privilege or host path; every rendered object is a
 * valid Kubernetes object (kubernetes-models).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildChart, WORKLOAD_TYPES } from '../../lib/chart/index.js';
import { RUNTIME_CLASS, TEES } from '../../lib/coco/trustee.js';
import { initData } from '../../lib/coco/initdata.js';
import { assertValidKubernetes } from '../helpers/k8s.js';
import { assertSameObjects, chartRenderTool, chartRender, get, renderOk, tempDir, workloadOf, writeTo } from '../chart/render-helpers.js';

const ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data';

describe('CoCo chart vs. chart-render', { skip: chartRenderTool.skip }, () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => { tmp = tempDir(); });
  after(() => tmp.cleanup());
  const init = initData({ kbsUrl: 'https://kbs.example:8080', imageSecurityPolicyUri: 'kbs:///default/security-policy/web' });

  for (const tee of TEES) {
    for (const workloadType of WORKLOAD_TYPES) {
      test(`${tee} ${workloadType}`, async () => {
        const chart = buildChart({
          serviceName: 'web', image: 'registry.example.com/web:1-coco', runtime: 'coco', workloadType, expose: [8080],
          encryptedVolumes: [{ name: 'DATA', path: '/data' }],
          coco: { tee, runtimeClassName: RUNTIME_CLASS[tee], initData: init.annotation },
        });
        const rendered = renderOk(await writeTo(path.join(tmp.dir, `${tee}-${workloadType}`), chart));
        assertSameObjects(rendered, chart.manifests, `${tee}/${workloadType}`);
        await assertValidKubernetes(rendered, `${tee}/${workloadType}`);
        const w = workloadOf(rendered);
        const pod = get(w, 'spec.template.spec');
        assert.equal(pod.runtimeClassName, RUNTIME_CLASS[tee]);
        const ann = get(w, 'spec.template.metadata.annotations')[ANNOTATION] as string;
        assert.equal(gunzipSync(Buffer.from(ann, 'base64')).toString(), init.toml);
        const c = pod.containers[0];
        assert.equal(c.imagePullPolicy, 'Always');
        assert.equal(JSON.stringify(c.resources ?? {}).includes('sgx'), false, 'no SGX resources');
        assert.equal(c.securityContext?.privileged, undefined);
        assert.equal((pod.volumes ?? []).some((v: { hostPath?: unknown }) => v.hostPath), false, 'no host paths');
        assert.deepEqual(c.env, [{ name: 'ENCLAVIFY_TEE', value: tee }]);
        assert.equal(chart.values.useSGXDevPlugin, undefined);
        assert.match(chart.files.get('Chart.yaml')!, /Confidential Containers guest/);
        assert.match(chart.files.get('templates/NOTES.txt')!, /Kata TEE guests/);
      });
    }
  }

  test('--set runtimeClassName= (empty) fails rendering with the same message as the model', async () => {
    const chart = buildChart({ serviceName: 'web', image: 'w:1', runtime: 'coco', coco: { tee: 'snp', runtimeClassName: 'kata-qemu-snp', initData: init.annotation } });
    const dir = await writeTo(path.join(tmp.dir, 'empty-rc'), chart);
    const r = chartRender(dir, ['--set', 'runtimeClassName=']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /runtimeClassName is required/);
    assert.throws(() => buildChart({ serviceName: 'web', image: 'w:1', runtime: 'coco', coco: { tee: 'snp', runtimeClassName: 'kata-qemu-snp', initData: init.annotation }, set: ['runtimeClassName='] }), /runtimeClassName is required/);
    assert.throws(() => buildChart({ serviceName: 'web', image: 'w:1', runtime: 'coco' }), { code: 'BAD_CHART' });
  });

  test('the Kubernetes validator refuses what the API server would (so the checks above mean something)', async () => {
    const chart = buildChart({ serviceName: 'web', image: 'w:1', runtime: 'coco', coco: { tee: 'snp', runtimeClassName: 'kata-qemu-snp', initData: init.annotation } });
    const w = structuredClone(workloadOf(chart.manifests)) as unknown as { apiVersion: string; kind: string; spec: { replicas?: unknown } };
    await assertValidKubernetes([w], 'model');
    w.spec.replicas = 'two';
    await assert.rejects(assertValidKubernetes([w], 'broken'), /not a valid Kubernetes object/);
    await assert.rejects(assertValidKubernetes([{ apiVersion: 'v1', kind: 'NoSuchKind' }], 'unknown'), /has no v1 NoSuchKind/);
  });
});
