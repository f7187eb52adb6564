/**
 * Interop: the chart's templates, rendered by chart-render (Go text/template + Sprig + Helm
 * functions), must give exactly the objects our TypeScript model computes, for every workload
 * type and SGX device mode, and must follow --set overrides.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assertValidKubernetes } from '../helpers/k8s.js';
import {
  applySetOverrides,
  buildChart,
  GRAMINE_LOADER_ENV,
  isDns1123Label,
  isLabelValue,
  renderManifests,
  SGX_DEVICE_MODES,
  WORKLOAD_TYPES,
  type ChartOptions,
  type ChartResult,
  type KubeObject,
  type Runtime,
  type SgxDeviceMode,
  type WorkloadType,
} from '../../lib/chart/index.js';
import {
  assertSameObjects,
  chartRender,
  chartRenderTool,
  get,
  keyOf,
  only,
  renderOk,
  tempDir,
  workloadOf,
  writeTo,
} from './render-helpers.js';

const skip = chartRenderTool.skip;

/** A chart with every feature on: ports, a plain and a persistent encrypted volume, env, scheduling. */
function fullOptions(runtime: Runtime, workloadType: WorkloadType, sgxDevice: SgxDeviceMode): ChartOptions {
  return {
    serviceName: 'web',
    image: 'registry.example.com/team/web-confidential:1.4.2',
    runtime,
    workloadType,
    sgxDevice,
    expose: [8080, 9443],
    volumes: [{ name: 'cache', path: '/var/cache/web' }],
    encryptedVolumes: [{ name: 'DATA', path: '/data', persistence: { enabled: true, size: '5Gi', storageClass: 'fast' } }],
    env: { LOG_LEVEL: 'debug', WORKERS: '4' },
    imagePullSecrets: ['regcred'],
    nodeSelector: { 'sgx.intel.com/capable': 'true' },
    tolerations: [{ key: 'sgx', operator: 'Exists', effect: 'NoSchedule' }],
    resources: { requests: { cpu: '100m' }, limits: { memory: '1Gi' } },
    command: ['/entrypoint'],
    args: ['--port', '8080'],
    scone: { configID: 'my-ns/web-session/web', heap: '2G', printVersion: true },
    gramine: { secretProvision: { servers: 'kbs.example.com:4433', setKey: 'default', caChainPath: '/ca.crt' }, aesmdSocketDir: '/var/run/aesmd' },
  };
}

/** Every rendered name must be valid for Kubernetes. */
function assertValidNames(objects: KubeObject[]): void {
  for (const o of objects) {
    assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${keyOf(o)}: apiVersion, kind and metadata.name`);
    assert.ok(isDns1123Label(o.metadata.name), `${keyOf(o)}: name is not a DNS-1123 label`);
    for (const [k, v] of Object.entries((o.metadata.labels ?? {}) as Record<string, unknown>)) {
      assert.ok(typeof v === 'string' && isLabelValue(v), `${keyOf(o)}: label ${k}=${String(v)} is not a valid label value`);
    }
    const pod = get(o, 'spec.template.spec');
    if (!pod) continue;
    for (const c of pod.containers) {
      assert.ok(isDns1123Label(c.name), `container name ${c.name}`);
      for (const p of c.ports ?? []) assert.ok(p.name.length <= 15 && /^[a-z0-9-]*[a-z][a-z0-9-]*$/.test(p.name), `port name ${p.name}`);
      for (const m of c.volumeMounts ?? []) assert.ok(isDns1123Label(m.name), `mount ${m.name}`);
      for (const e of c.env) assert.equal(typeof e.name, 'string');
    }
    for (const v of pod.volumes ?? []) assert.ok(isDns1123Label(v.name), `volume ${v.name}`);
    for (const c of get(o, 'spec.volumeClaimTemplates') ?? []) assert.ok(isDns1123Label(c.metadata.name), `claim template ${c.metadata.name}`);
  }
}

/** Independent expectations on the SGX device part (not derived from our model). */
function assertSgxDevice(workload: KubeObject, runtime: Runtime, mode: SgxDeviceMode): void {
  const c = get(workload, 'spec.template.spec.containers.0');
  const limits = c.resources?.limits ?? {};
  const sgxKeys = Object.keys(limits).filter((k) => k.includes('sgx'));
  const volumes = (get(workload, 'spec.template.spec.volumes') ?? []) as { name: string; hostPath?: { path: string } }[];
  const hostDevs = volumes.filter((v) => v.hostPath?.path.startsWith('/dev/')).map((v) => v.hostPath!.path).sort();
  switch (mode) {
    case 'scone':
      assert.deepEqual(sgxKeys, ['sgx.k8s.io/sgx']);
      assert.equal(limits['sgx.k8s.io/sgx'], 1);
      break;
    case 'intel':
      assert.equal(limits['sgx.intel.com/epc'], '8Mi');
      assert.equal(limits['sgx.intel.com/enclave'], 1);
      // DCAP is on by default for Gramine (the enclave quotes), off for SCONE (the LAS quotes)
      assert.equal(limits['sgx.intel.com/provision'], runtime === 'gramine' ? 1 : undefined);
      break;
    case 'azure':
      assert.deepEqual(sgxKeys, ['kubernetes.azure.com/sgx_epc_mem_in_MiB']);
      assert.equal(limits['kubernetes.azure.com/sgx_epc_mem_in_MiB'], 8);
      break;
    case 'disabled':
      assert.deepEqual(sgxKeys, []);
      assert.equal(c.securityContext?.privileged, true);
      assert.deepEqual(hostDevs, ['/dev/sgx_enclave', '/dev/sgx_provision']);
      assert.deepEqual(c.volumeMounts.filter((m: { mountPath: string }) => m.mountPath.startsWith('/dev/')).map((m: { mountPath: string }) => m.mountPath).sort(), ['/dev/sgx_enclave', '/dev/sgx_provision']);
      break;
  }
  if (mode !== 'disabled') {
    assert.deepEqual(hostDevs, []);
    assert.equal(c.securityContext, undefined);
  }
  assert.equal(limits.memory, '1Gi', 'user limits are kept');
  assert.deepEqual(c.resources.requests, { cpu: '100m' });
}

function envOf(workload: KubeObject): Record<string, { value?: string; valueFrom?: unknown }> {
  const out: Record<string, { value?: string; valueFrom?: unknown }> = {};
  for (const e of get(workload, 'spec.template.spec.containers.0.env')) out[e.name] = e;
  return out;
}

describe('chart templates vs. TypeScript model (chart-render)', { skip }, () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp.cleanup());

  for (const runtime of ['gramine', 'scone'] as const) {
    for (const workloadType of WORKLOAD_TYPES) {
      for (const mode of SGX_DEVICE_MODES) {
        test(`${runtime} ${workloadType} ${mode}: rendered objects equal the model`, async () => {
          const chart = buildChart(fullOptions(runtime, workloadType, mode));
          const dir = await writeTo(path.join(tmp.dir, `${runtime}-${workloadType}-${mode}`), chart);
          const rendered = renderOk(dir);
          assertSameObjects(rendered, chart.manifests, `${runtime}/${workloadType}/${mode}`);
          assertValidNames(rendered);
          await assertValidKubernetes(rendered, `${runtime}/${workloadType}/${mode}`);

          const w = workloadOf(rendered);
          const kinds = { deployment: 'Deployment', statefulset: 'StatefulSet', daemonset: 'DaemonSet', job: 'Job' };
          assert.equal(w.kind, kinds[workloadType]);
          assert.equal(w.apiVersion, workloadType === 'job' ? 'batch/v1' : 'apps/v1');
          assert.equal(w.metadata.name, `release-name-${chart.name}`);
          assert.equal(chart.name, `${runtime === 'scone' ? 'sconify' : 'enclavify'}-web`);
          assertSgxDevice(w, runtime, mode);

          const svc = only(rendered, 'Service');
          assert.deepEqual(get(svc, 'spec.ports').map((p: { port: number }) => p.port), [8080, 9443]);
          assert.deepEqual(get(w, 'spec.template.spec.containers.0.ports').map((p: { containerPort: number }) => p.containerPort), [8080, 9443]);
          assert.deepEqual(get(svc, 'spec.selector'), get(w, 'spec.template.metadata.labels'));

          // the encrypted volume is persistent: a PVC, or a volumeClaimTemplate for a statefulset
          const pvcs = rendered.filter((o) => o.kind === 'PersistentVolumeClaim');
          const podVolumes = get(w, 'spec.template.spec.volumes') as { name: string; emptyDir?: object; persistentVolumeClaim?: { claimName: string } }[];
          if (workloadType === 'statefulset') {
            assert.equal(pvcs.length, 0);
            const vct = get(w, 'spec.volumeClaimTemplates');
            assert.deepEqual(vct, [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'fast' } }]);
            assert.equal(podVolumes.find((v) => v.name === 'data'), undefined);
          } else {
            assert.deepEqual(pvcs.map((p) => p.metadata.name), [`release-name-${chart.name}-data`]);
            assert.deepEqual(get(pvcs[0], 'spec.resources.requests.storage'), '5Gi');
            assert.deepEqual(podVolumes.find((v) => v.name === 'data')?.persistentVolumeClaim, { claimName: `release-name-${chart.name}-data` });
          }
          assert.deepEqual(podVolumes.find((v) => v.name === 'cache')?.emptyDir, {});
          const mounts = get(w, 'spec.template.spec.containers.0.volumeMounts') as { name: string; mountPath: string }[];
          assert.equal(mounts.find((m) => m.name === 'data')?.mountPath, '/data');
          assert.equal(mounts.find((m) => m.name === 'cache')?.mountPath, '/var/cache/web');

          const env = envOf(w);
          assert.equal(env.LOG_LEVEL.value, 'debug');
          assert.equal(env.WORKERS.value, '4', 'env values are strings');
          if (runtime === 'scone') {
            assert.deepEqual(env.SCONE_LAS_ADDR.valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } });
            assert.equal(env.SCONE_CAS_ADDR.value, 'scone-cas.cf');
            assert.equal(env.SCONE_CONFIG_ID.value, 'my-ns/web-session/web');
            assert.equal(env.SCONE_HEAP.value, '2G');
            assert.equal(env.SCONE_ALLOW_DLOPEN.value, '1');
            assert.equal(env.SCONE_FORK.value, '0');
            assert.equal(env.SCONE_VERSION.value, '1');
          } else {
            assert.equal(env[GRAMINE_LOADER_ENV].value, 'sgx');
            assert.equal(env.SECRET_PROVISION_SERVERS.value, 'kbs.example.com:4433');
            assert.equal(env.SECRET_PROVISION_SET_KEY.value, 'default');
            assert.equal(env.SECRET_PROVISION_CA_CHAIN_PATH.value, '/ca.crt');
            assert.ok(podVolumes.some((v) => v.name === 'aesmd-socket'));
          }
          if (workloadType === 'job') {
            assert.equal(get(w, 'spec.template.spec.restartPolicy'), 'Never');
            assert.equal(get(w, 'spec.backoffLimit'), 6);
            assert.equal(get(w, 'spec.selector'), undefined);
          } else {
            assert.deepEqual(get(w, 'spec.selector.matchLabels'), get(w, 'spec.template.metadata.labels'));
          }
          assert.equal(get(w, 'spec.replicas'), workloadType === 'deployment' || workloadType === 'statefulset' ? 1 : undefined);
        });
      }
    }
  }

  test('a minimal chart (no ports, no volumes) renders and matches', async () => {
    for (const runtime of ['gramine', 'scone'] as const) {
      const chart = buildChart({ serviceName: 'app', image: 'app:latest', runtime });
      assert.equal(chart.files.has('templates/service.yaml'), false);
      assert.equal(chart.files.has('templates/pvc.yaml'), false);
      const dir = await writeTo(path.join(tmp.dir, `minimal-${runtime}`), chart);
      const rendered = renderOk(dir);
      assertSameObjects(rendered, chart.manifests, runtime);
      assert.deepEqual(rendered.map((o) => o.kind), ['Deployment']);
      assert.equal(get(rendered[0], 'spec.template.spec.containers.0.ports'), undefined);
    }
  });

  describe('--set overrides change what the templates render', () => {
    const charts = new Map<Runtime, { chart: ChartResult; dir: string }>();
    before(async () => {
      for (const runtime of ['gramine', 'scone'] as const) {
        const chart = buildChart({
          serviceName: 'api',
          image: 'registry.example.com/api:2.0',
          runtime,
          expose: [8443],
          volumes: [{ name: 'cache', path: '/cache' }],
          encryptedVolumes: [{ name: 'V1', path: '/V1' }],
        });
        charts.set(runtime, { chart, dir: await writeTo(path.join(tmp.dir, `set-${runtime}`), chart) });
      }
    });

    /** Renders with `--set` (and optionally `--name`), checks it equals the model with the same overrides, returns the objects. */
    function renderSet(runtime: Runtime, sets: string[], release?: string): KubeObject[] {
      const { chart, dir } = charts.get(runtime)!;
      const args = sets.flatMap((s) => ['--set', s]);
      if (release) args.push('--name', release);
      const rendered = renderOk(dir, args);
      const expected = renderManifests(applySetOverrides(chart.values, sets), { ...chart.context, release: release ?? 'release-name' });
      assertSameObjects(rendered, expected, `${runtime} --set ${sets.join(' ')}`);
      assertValidNames(rendered);
      return rendered;
    }

    for (const runtime of ['gramine', 'scone'] as const) {
      test(`${runtime}: defaults`, () => {
        const objs = renderSet(runtime, []);
        assert.deepEqual(objs.map((o) => o.kind), ['Service', 'Deployment']);
      });

      test(`${runtime}: workloadType switches the kind`, () => {
        for (const [type, kind] of [['job', 'Job'], ['daemonset', 'DaemonSet'], ['statefulset', 'StatefulSet']]) {
          const w = workloadOf(renderSet(runtime, [`workloadType=${type}`]));
          assert.equal(w.kind, kind);
        }
      });

      test(`${runtime}: useSGXDevPlugin switches the device resources`, () => {
        const limits = (mode: string): Record<string, unknown> => get(workloadOf(renderSet(runtime, [`useSGXDevPlugin=${mode}`])), 'spec.template.spec.containers.0.resources.limits') ?? {};
        assert.deepEqual(limits('scone'), { 'sgx.k8s.io/sgx': 1 });
        assert.deepEqual(limits('azure'), { 'kubernetes.azure.com/sgx_epc_mem_in_MiB': 8 });
        assert.equal(limits('intel')['sgx.intel.com/enclave'], 1);
        assert.deepEqual(limits('disabled'), {});
        const azure16 = get(workloadOf(renderSet(runtime, ['useSGXDevPlugin=azure', 'sgxEpcMem=16'])), 'spec.template.spec.containers.0.resources.limits');
        assert.deepEqual(azure16, { 'kubernetes.azure.com/sgx_epc_mem_in_MiB': 16 });
        const intel = get(workloadOf(renderSet(runtime, ['useSGXDevPlugin=intel', 'sgxEpcMem=64', 'sgxProvision=true'])), 'spec.template.spec.containers.0.resources.limits');
        assert.deepEqual(intel, { 'sgx.intel.com/epc': '64Mi', 'sgx.intel.com/enclave': 1, 'sgx.intel.com/provision': 1 });
        const noProv = get(workloadOf(renderSet(runtime, ['useSGXDevPlugin=intel', 'sgxProvision=false'])), 'spec.template.spec.containers.0.resources.limits');
        assert.equal(noProv['sgx.intel.com/provision'], undefined);
      });

      test(`${runtime}: replicaCount and service.enabled`, () => {
        assert.equal(get(workloadOf(renderSet(runtime, ['replicaCount=3'])), 'spec.replicas'), 3);
        const noSvc = renderSet(runtime, ['service.enabled=false']);
        assert.equal(noSvc.filter((o) => o.kind === 'Service').length, 0);
        assert.deepEqual(get(workloadOf(noSvc), 'spec.template.spec.containers.0.ports.0.containerPort'), 8443, 'the container still declares its port');
        const nodePort = only(renderSet(runtime, ['service.type=NodePort', 'service.port=443']), 'Service');
        assert.equal(get(nodePort, 'spec.type'), 'NodePort');
        assert.deepEqual(get(nodePort, 'spec.ports.0'), { name: 'port-8443', port: 443, targetPort: 8443, protocol: 'TCP' });
      });

      test(`${runtime}: persistence of plain and encrypted volumes`, () => {
        const fullname = `release-name-${charts.get(runtime)!.chart.name}`;
        const dep = renderSet(runtime, ['volumev1.persistence.enabled=true', 'volumev1.persistence.size=20Gi', 'volumev1.persistence.storageClass=-']);
        const pvc = only(dep, 'PersistentVolumeClaim');
        assert.equal(pvc.metadata.name, `${fullname}-v1`);
        assert.deepEqual(pvc.spec, { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } }, storageClassName: '' });
        const vols = get(workloadOf(dep), 'spec.template.spec.volumes');
        assert.deepEqual(vols.find((v: { name: string }) => v.name === 'v1'), { name: 'v1', persistentVolumeClaim: { claimName: `${fullname}-v1` } });

        const plain = renderSet(runtime, ['volumecache.persistence.enabled=true']);
        assert.equal(only(plain, 'PersistentVolumeClaim').metadata.name, `${fullname}-cache`);

        const sts = renderSet(runtime, ['workloadType=statefulset', 'volumev1.persistence.enabled=true']);
        assert.equal(sts.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
        assert.deepEqual(get(workloadOf(sts), 'spec.volumeClaimTemplates'), [{ metadata: { name: 'v1' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }]);

        for (const type of ['deployment', 'statefulset']) {
          const existing = renderSet(runtime, [`workloadType=${type}`, 'volumev1.persistence.enabled=true', 'volumev1.persistence.existingClaim=shared-data']);
          assert.equal(existing.filter((o) => o.kind === 'PersistentVolumeClaim').length, 0);
          assert.equal(get(workloadOf(existing), 'spec.volumeClaimTemplates'), undefined);
          const v = get(workloadOf(existing), 'spec.template.spec.volumes').find((x: { name: string }) => x.name === 'v1');
          assert.deepEqual(v, { name: 'v1', persistentVolumeClaim: { claimName: 'shared-data' } });
        }
      });

      test(`${runtime}: names follow nameOverride, fullnameOverride and long release names`, () => {
        const chartName = charts.get(runtime)!.chart.name;
        assert.equal(workloadOf(renderSet(runtime, ['fullnameOverride=my-api'])).metadata.name, 'my-api');
        assert.equal(workloadOf(renderSet(runtime, ['nameOverride=svc'])).metadata.name, 'release-name-svc');
        assert.equal(workloadOf(renderSet(runtime, [], `prod-${chartName}`)).metadata.name, `prod-${chartName}`, 'release containing the chart name');
        const long = 'a-very-long-release-name-that-goes-on-and-on-and-on-x';
        const objs = renderSet(runtime, ['volumev1.persistence.enabled=true'], long);
        for (const o of objs) assert.ok(o.metadata.name.length <= 63 && !o.metadata.name.endsWith('-'), o.metadata.name);
      });
    }

    test('scone: settings become SCONE_* variables, empty ones are left out', () => {
      const env = envOf(workloadOf(renderSet('scone', ['scone.las=10.0.0.7:18766', 'scone.heap=', 'scone.configID=ns/s/api', 'scone.allowDlOpen=2', 'scone.printVersion=true', 'scone.cas='])));
      assert.equal(env.SCONE_LAS_ADDR.value, '10.0.0.7:18766');
      assert.equal(env.SCONE_LAS_ADDR.valueFrom, undefined);
      assert.equal(env.SCONE_HEAP, undefined);
      assert.equal(env.SCONE_CAS_ADDR, undefined);
      assert.equal(env.SCONE_CONFIG_ID.value, 'ns/s/api');
      assert.equal(env.SCONE_ALLOW_DLOPEN.value, '2');
      assert.equal(env.SCONE_FORK.value, '0', 'zero is a value, not "empty"');
      assert.equal(env.SCONE_VERSION.value, '1');
      // without any scone values, only the LAS (node IP) remains
      const bare = get(workloadOf(renderSet('scone', ['scone=null'])), 'spec.template.spec.containers.0.env');
      assert.deepEqual(bare, [{ name: 'SCONE_LAS_ADDR', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }]);
    });

    test('gramine: loader=direct requests no SGX at all', () => {
      for (const mode of SGX_DEVICE_MODES) {
        const w = workloadOf(renderSet('gramine', ['gramine.loader=direct', `useSGXDevPlugin=${mode}`]));
        const c = get(w, 'spec.template.spec.containers.0');
        assert.equal(c.resources, undefined, mode);
        assert.equal(c.securityContext, undefined, mode);
        assert.equal(get(w, 'spec.template.spec.volumes').some((v: { hostPath?: unknown }) => v.hostPath), false, mode);
        assert.equal(envOf(w)[GRAMINE_LOADER_ENV].value, 'direct');
      }
    });

    test('invalid values fail rendering with a clear message, and the model throws the same', () => {
      const cases: [Runtime, string, RegExp][] = [
        ['gramine', 'image=', /image is required/],
        ['scone', 'image=', /image is required/],
        ['scone', 'workloadType=cronjob', /workloadType must be one of deployment, statefulset, daemonset, job \(got "cronjob"\)/],
        ['gramine', 'useSGXDevPlugin=nvidia', /useSGXDevPlugin must be one of scone, intel, azure, disabled \(got "nvidia"\)/],
        ['gramine', 'gramine.loader=native', /gramine\.loader must be sgx or direct \(got "native"\)/],
        ['gramine', 'gramine=null', /gramine\.loader must be sgx or direct \(got "<nil>"\)/],
        ['gramine', 'volumev1.mountPath=', /volumev1\.mountPath is required/],
      ];
      for (const [runtime, set, message] of cases) {
        const { chart, dir } = charts.get(runtime)!;
        const r = chartRender(dir, ['--set', set]);
        assert.notEqual(r.status, 0, `${runtime} --set ${set} should fail`);
        assert.match(r.stderr, message, `${runtime} --set ${set}`);
        assert.throws(() => renderManifests(applySetOverrides(chart.values, [set]), chart.context), message);
      }
    });
  });

  test('--k8s-helm-set overrides are written to values.yaml and rendered', async () => {
    const sets = ['replicaCount=2', 'scone.heap=4G', 'service.type=NodePort', 'nodeSelector.kubernetes\\.io/arch=amd64', 'volumedata.persistence.enabled=true', 'podAnnotations.team=blue,env.MODE=prod'];
    const chart = buildChart({ serviceName: 'db', image: 'db:5', runtime: 'scone', workloadType: 'statefulset', expose: [5432], encryptedVolumes: [{ name: 'data', path: '/var/lib/db' }], set: sets });
    assert.equal(chart.values.replicaCount, 2);
    assert.equal(get(chart.values, 'scone.heap'), '4G');
    assert.deepEqual(chart.values.nodeSelector, { 'kubernetes.io/arch': 'amd64' });
    const valuesText = chart.files.get('values.yaml')!;
    assert.match(valuesText, /^replicaCount: 2$/m);
    assert.match(valuesText, /^ {2}heap: 4G$/m);
    const dir = await writeTo(path.join(tmp.dir, 'helm-set'), chart);
    const rendered = renderOk(dir);
    assertSameObjects(rendered, chart.manifests, 'k8s-helm-set');
    const w = workloadOf(rendered);
    assert.equal(get(w, 'spec.replicas'), 2);
    assert.deepEqual(get(w, 'spec.template.spec.nodeSelector'), { 'kubernetes.io/arch': 'amd64' });
    assert.deepEqual(get(w, 'spec.template.metadata.annotations'), { team: 'blue' });
    assert.equal(envOf(w).SCONE_HEAP.value, '4G');
    assert.equal(envOf(w).MODE.value, 'prod');
    assert.equal(get(only(rendered, 'Service'), 'spec.type'), 'NodePort');
    assert.equal(get(w, 'spec.volumeClaimTemplates.0.metadata.name'), 'data');
  });

  test('NOTES.txt renders for both runtimes', async () => {
    for (const runtime of ['gramine', 'scone'] as const) {
      const chart = buildChart({ serviceName: 'notes', image: 'n:1', runtime, expose: [80], sgxDevice: 'disabled' });
      const dir = await writeTo(path.join(tmp.dir, `notes-${runtime}`), chart);
      // chart-render only parses NOTES.txt; render it through a helper template to execute it
      writeFileSync(
        path.join(dir, 'templates', 'zz-notes.yaml'),
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "${chart.name}/templates/NOTES.txt" . | quote }}\n`,
      );
      const notes = String(get(only(renderOk(dir), 'ConfigMap'), 'data.notes'));
      assert.match(notes, new RegExp(`Workload: deployment release-name-${chart.name}`));
      assert.match(notes, /kubectl port-forward/);
      assert.match(notes, /WARNING: the SGX devices are mounted from the host/);
      assert.match(notes, runtime === 'scone' ? /LAS on each node's IP/ : /Gramine loader: sgx/);
    }
  });
});
