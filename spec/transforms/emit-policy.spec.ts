import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { emitPolicy, injectRuntime, openImage, pipeline, scone, type Transform } from '../../lib/index.js';
import { POLICY, type PolicyInfo } from '../../lib/transforms/emit-policy.js';
import { CLASSIFICATION, PROTECTION, RUNTIME, type Classification, type Protection, type RuntimeInfo } from '../../lib/transforms/state.js';
import { bbOci } from '../helpers/images.js';
import { fixtures, repoRoot } from '../helpers/tools.js';

const bb = () => openImage(`oci:${bbOci}:latest`);
const MR = '0123456789abcdef'.repeat(4);
const sigFile = path.join(fixtures, 'sgx-sigstruct', 'gramine-echo.sig');
const sigExpected = JSON.parse(readFileSync(path.join(fixtures, 'sgx-sigstruct', 'gramine-echo.expected.json'), 'utf8')) as {
  mr_signer: string; mr_enclave: string; isv_prod_id: number; isv_svn: number; debug_enclave: boolean;
};

/** Validators compiled here from the schema files, independently of lib/policy/validate.ts. */
function schemaValidator(file: string): { (doc: unknown): boolean; errors?: unknown } {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const v = ajv.compile(JSON.parse(readFileSync(path.join(repoRoot, 'schemas', file), 'utf8')));
  const check = (doc: unknown): boolean => {
    const ok = v(doc);
    check.errors = v.errors;
    return ok;
  };
  check.errors = undefined as unknown;
  return check;
}
const sessionSchema = schemaValidator('scone-session.schema.json');
const gramineSchema = schemaValidator('gramine-policy.schema.json');

function text(a: { data: Uint8Array | string } | undefined): string {
  assert.ok(a, 'artifact missing');
  return typeof a.data === 'string' ? a.data : Buffer.from(a.data).toString('utf8');
}

test('emitPolicy(scone): the session validates against the schema and carries command, env, pwd and volumes from bb-fixture', async () => {
  const out = await pipeline(await bb(), [emitPolicy({
    runtime: 'scone',
    mrenclaves: [MR],
    scone: { namespace: 'acme', name: 'bb', volumes: ['data:/data', 'results:/results::acme/consumer-1:acme/consumer-2', 'in:/in:acme/producer'], env: ['EXTRA=1'] },
  })]);
  try {
    const a = out.artifacts.get('policy/session.yaml')!;
    assert.equal(a.secret, false, 'no key material, no secret values');
    const session = parse(text(a));
    assert.ok(sessionSchema(session), JSON.stringify(sessionSchema.errors));
    assert.equal(session.name, 'acme/bb');
    assert.equal(session.version, '0.3.10');
    const svc = session.services[0];
    assert.equal(svc.name, 'service');
    assert.deepEqual(svc.mrenclaves, [MR]);
    assert.equal(svc.command, '/app/server.sh');
    assert.deepEqual(svc.environment, { SCONE_MODE: 'hw', APP_MODE: 'production', EXTRA: '1' });
    assert.equal(svc.pwd, '/app');
    assert.deepEqual(session.volumes, [
      { name: 'data' },
      { name: 'results', export: [{ session: 'acme/consumer-1' }, { session: 'acme/consumer-2' }] },
      { name: 'in', import: { session: 'acme/producer', volume: 'in' } },
    ]);
    assert.deepEqual(session.images[0].volumes, [{ name: 'data', path: '/data' }, { name: 'results', path: '/results' }, { name: 'in', path: '/in' }]);
    const info = out.state.get(POLICY) as PolicyInfo;
    assert.equal(info.sessionId, 'acme/bb');
    assert.equal((out.report.emitPolicy as PolicyInfo).sessionId, 'acme/bb');
    // the image itself is unchanged
    assert.equal(await out.image.digest(), await (await bb()).digest());
  } finally {
    await out.dispose();
  }
});

test('emitPolicy(scone) after injectRuntime(scone): names from SCONE_CONFIG_ID, command = the new entrypoint, SCONE plumbing kept out', async () => {
  const out = await pipeline(
    await bb(),
    [
      injectRuntime(scone({ namespace: 'acme/prod', name: 'bb', serviceName: 'web', binary: '/bin/sh', mrenclaves: [MR] })),
      emitPolicy({ allowDebugMode: true, allowTcbVulnerabilities: true, scone: { createNamespace: true } }),
    ],
  );
  try {
    const session = parse(text(out.artifacts.get('policy/session.yaml')));
    assert.ok(sessionSchema(session), JSON.stringify(sessionSchema.errors));
    assert.equal(session.name, 'acme/prod/bb');
    const svc = session.services[0];
    assert.equal(svc.name, 'web');
    assert.equal(svc.command, '/bin/sh /app/server.sh');
    assert.deepEqual(svc.environment, { SCONE_MODE: 'hw', APP_MODE: 'production' });
    assert.deepEqual(svc.mrenclaves, [MR]);
    assert.deepEqual(session.security.attestation.tolerate.slice(0, 2), ['debug-mode', 'hyperthreading']);
    assert.equal(session.security.attestation.ignore_advisories, '*');
    const ns = parse(text(out.artifacts.get('policy/namespace.yaml')));
    assert.equal(ns.name, 'acme/prod');
    assert.ok(sessionSchema(ns));
    assert.equal((out.state.get(POLICY) as PolicyInfo).configId, 'acme/prod/bb/web');
  } finally {
    await out.dispose();
  }
});

test('emitPolicy(scone): an FSPF key or secret values make the artifact secret', async () => {
  const secretsYaml = 'secrets:\n  - name: api_token\n    kind: ascii\n    value: "s3cr3t-value"\n';
  const out = await pipeline(await bb(), [emitPolicy({
    runtime: 'scone',
    mrenclaves: [MR],
    scone: { namespace: 'n', name: 's', secrets: [{ source: 'secrets.yaml', text: secretsYaml }], env: ['TOKEN=$$SCONE::api_token$$'] },
  })]);
  try {
    const a = out.artifacts.get('policy/session.yaml')!;
    assert.equal(a.secret, true);
    assert.equal(parse(text(a)).services[0].environment.TOKEN, '$$SCONE::api_token$$');
  } finally {
    await out.dispose();
  }
  const fspf = await pipeline(await bb(), [emitPolicy({ runtime: 'scone', mrenclaves: [MR], scone: { namespace: 'n', name: 's', fspf: { path: '/fspf/fs.fspf', key: 'aa'.repeat(32), tag: 'bb'.repeat(16) } } })]);
  try {
    const a = fspf.artifacts.get('policy/session.yaml')!;
    assert.equal(a.secret, true);
    assert.equal(parse(text(a)).services[0].fspf_key, 'aa'.repeat(32));
  } finally {
    await fspf.dispose();
  }
});

test('emitPolicy(scone): refuses a missing MRENCLAVE, a session that is not the image\'s config id, and bad fragments', async () => {
  await assert.rejects(pipeline(await bb(), [emitPolicy({ runtime: 'scone', scone: { namespace: 'n', name: 's' } })]), (e: Error & { code?: string }) => e.code === 'NO_MRENCLAVE' && /--mrenclave/.test(e.message));
  await assert.rejects(pipeline(await bb(), [emitPolicy({ runtime: 'scone', mrenclaves: [MR] })]), /namespace and name/);
  await assert.rejects(
    pipeline(await bb(), [injectRuntime(scone({ namespace: 'a', name: 'b' })), emitPolicy({ mrenclaves: [MR], scone: { name: 'other' } })]),
    (e: Error & { code?: string }) => e.code === 'SCONE_CONFIG_MISMATCH',
  );
  await assert.rejects(pipeline(await bb(), [emitPolicy({ runtime: 'scone', mrenclaves: ['zz'], scone: { namespace: 'n', name: 's' } })]), /mrenclaves\[0\]/);
  // an error in a secrets fragment names the file, never the value
  await assert.rejects(
    pipeline(await bb(), [emitPolicy({ runtime: 'scone', mrenclaves: [MR], scone: { namespace: 'n', name: 's', secrets: [{ source: 'bad.yaml', text: '- name: x\n  kind: nonsense\n  value: hunter2\n' }] } })]),
    (e: Error) => e.message.includes('bad.yaml') && !e.message.includes('hunter2'),
  );
  await assert.rejects(pipeline(await bb(), [emitPolicy()]), /no runtime/);
  await assert.rejects(pipeline(await bb(), [injectRuntime(scone({ namespace: 'a', name: 'b' })), emitPolicy({ runtime: 'gramine', mrenclaves: [MR] })]), /prepared for scone/);
});

test('emitPolicy --sigstruct: the SIGSTRUCT fixture gives the documented MRENCLAVE', async () => {
  const out = await pipeline(await bb(), [emitPolicy({ runtime: 'scone', sigstructFile: sigFile, scone: { namespace: 'n', name: 's' } })]);
  try {
    const session = parse(text(out.artifacts.get('policy/session.yaml')));
    assert.deepEqual(session.services[0].mrenclaves, [sigExpected.mr_enclave]);
  } finally {
    await out.dispose();
  }
  await assert.rejects(pipeline(await bb(), [emitPolicy({ runtime: 'scone', sigstructFile: path.join(fixtures, 'sgx-sigstruct', 'gramine-echo.expected.json'), scone: { namespace: 'n', name: 's' } })]), /--sigstruct .*expected 1808 bytes/);
  await assert.rejects(pipeline(await bb(), [emitPolicy({ runtime: 'scone', sigstructFile: '/nonexistent.sig', scone: { namespace: 'n', name: 's' } })]), /--sigstruct \/nonexistent.sig/);
});

/** What a signed Gramine image and encryptFS would leave in the state. */
function gramineState(keyHex: string): Transform {
  return {
    name: 'fakeGramine',
    apply(d) {
      const classification: Classification = { regions: [{ name: 'app_data', path: '/app/data' }], hostPaths: [], files: new Map(), startup: [], warnings: [] };
      const protection: Protection = { manifestPath: '/gramine/protection.json', manifestSha256: 'cd'.repeat(32), keys: [{ name: 'app_data', region: 'app_data', keyHex }] };
      const info: RuntimeInfo = { runtime: 'gramine', entrypoint: ['/usr/bin/gramine-sgx', '/gramine/app/entrypoint'], mrenclave: [MR], mrsigner: 'ef'.repeat(32), isvProdId: 7, isvSvn: 3, debug: false, keyNames: ['app_data'] };
      d.state.set(CLASSIFICATION, classification);
      d.state.set(PROTECTION, protection);
      d.state.set(RUNTIME, info);
    },
  };
}

test('emitPolicy(gramine): the attestation policy from a RuntimeInfo: identity, key names only, manifest digest', async () => {
  const keyHex = '5f'.repeat(16);
  const out = await pipeline(await bb(), [gramineState(keyHex), emitPolicy({ gramine: { name: 'registry.example/bb:1' } })]);
  try {
    const a = out.artifacts.get('policy/attestation.json')!;
    assert.equal(a.secret ?? false, false);
    const raw = text(a);
    assert.ok(!raw.includes(keyHex), 'the key value never goes into the policy');
    const policy = JSON.parse(raw);
    assert.ok(gramineSchema(policy), JSON.stringify(gramineSchema.errors));
    assert.deepEqual(policy.attestation, {
      type: 'dcap',
      mrenclave: [MR],
      signer: { mrsigner: 'ef'.repeat(32), isvProdId: 7, minIsvSvn: 3 },
      allowDebug: false,
      allowedTcbStatuses: ['UpToDate'],
    });
    assert.deepEqual(policy.keys, [{ name: 'app_data', mounts: ['/app/data'] }]);
    assert.equal(policy.protectionManifestDigest, `sha256:${'cd'.repeat(32)}`);
    assert.equal(policy.name, 'registry.example/bb:1');
  } finally {
    await out.dispose();
  }
});

test('emitPolicy(gramine) with --sigstruct: MRENCLAVE, MRSIGNER and ISV values of the SIGSTRUCT; a debug enclave is flagged', async () => {
  const out = await pipeline(await bb(), [emitPolicy({ runtime: 'gramine', sigstructFile: sigFile, gramine: { keys: ['default'] } })]);
  try {
    const policy = JSON.parse(text(out.artifacts.get('policy/attestation.json')));
    assert.ok(gramineSchema(policy), JSON.stringify(gramineSchema.errors));
    assert.deepEqual(policy.attestation.mrenclave, [sigExpected.mr_enclave]);
    assert.deepEqual(policy.attestation.signer, { mrsigner: sigExpected.mr_signer, isvProdId: sigExpected.isv_prod_id, minIsvSvn: sigExpected.isv_svn });
    assert.equal(policy.attestation.allowDebug, false);
    assert.deepEqual(policy.keys, [{ name: 'default' }]);
    const report = out.report.emitPolicy as { warnings?: string[] };
    assert.ok(report.warnings?.some((w) => /debug enclave/.test(w)), JSON.stringify(report));
  } finally {
    await out.dispose();
  }
  await assert.rejects(pipeline(await bb(), [emitPolicy({ runtime: 'gramine' })]), (e: Error & { code?: string }) => e.code === 'NO_MRENCLAVE');
});

test('emitPolicy missingIdentity "skip": no policy, the reason and (SCONE) the session id are reported', async () => {
  const out = await pipeline(await bb(), [injectRuntime(scone({ namespace: 'a', name: 'b' })), emitPolicy({ missingIdentity: 'skip' })]);
  try {
    assert.equal(out.artifacts.size, 0);
    const info = out.state.get(POLICY) as PolicyInfo;
    assert.equal(info.path, undefined);
    assert.equal(info.sessionId, 'a/b');
    assert.match(info.skipped!, /SCONE_HASH=1/);
  } finally {
    await out.dispose();
  }
  // skipping still checks the other options
  await assert.rejects(
    pipeline(await bb(), [injectRuntime(scone({ namespace: 'a', name: 'b' })), emitPolicy({ missingIdentity: 'skip', scone: { volumes: ['bad'] } })]),
    (e: Error & { code?: string }) => e.code === 'BAD_POLICY' && /--volume "bad"/.test(e.message),
  );
  const g = await pipeline(await bb(), [emitPolicy({ runtime: 'gramine', missingIdentity: 'skip' })]);
  try {
    assert.equal(g.artifacts.size, 0);
    assert.match((g.report.emitPolicy as PolicyInfo).skipped!, /sign the image/);
  } finally {
    await g.dispose();
  }
});

test('emitPolicy(gramine): only the keys the runtime asks for are released; baked-in development keys are flagged', async () => {
  const devKeys: Transform = {
    name: 'devKeys',
    apply(d) {
      const info = d.state.get(RUNTIME) as RuntimeInfo;
      d.state.set(RUNTIME, { ...info, keyNames: [], details: { insecureDevKeys: true } });
    },
  };
  const out = await pipeline(await bb(), [gramineState('11'.repeat(16)), devKeys, emitPolicy()]);
  try {
    const policy = JSON.parse(text(out.artifacts.get('policy/attestation.json')));
    assert.deepEqual(policy.keys, []);
    const warnings = (out.report.emitPolicy as { warnings: string[] }).warnings;
    assert.ok(warnings.some((w) => /insecure development keys/.test(w)));
  } finally {
    await out.dispose();
  }
});
