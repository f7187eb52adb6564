/**
 * gramineAttestationPolicy(): the key-releasing verifier's policy for Gramine images. It validates
 * against schemas/gramine-policy.schema.json and never holds key material.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ALL_TCB_STATUSES,
  gramineAttestationPolicy,
  gramineAttestationPolicyToJson,
  raTlsVerifierEnv,
  type GramineAttestationPolicyOptions,
} from '../../lib/policy/gramine-policy.js';
import { validateGramineAttestationPolicy, formatProblems } from '../../lib/policy/validate.js';

const MRENCLAVE = 'AB'.repeat(32);
const MRSIGNER = 'cd'.repeat(32);

const base = (extra: Partial<GramineAttestationPolicyOptions> = {}): GramineAttestationPolicyOptions => ({
  mrenclaves: [MRENCLAVE],
  keys: ['default'],
  ...extra,
});

test('a minimal policy: DCAP, no debug, up-to-date TCB only', () => {
  const p = gramineAttestationPolicy(base());
  assert.deepEqual(p, {
    kind: 'enclavify.gramine-attestation-policy',
    version: 1,
    attestation: { type: 'dcap', mrenclave: ['ab'.repeat(32)], allowDebug: false, allowedTcbStatuses: ['UpToDate'] },
    keys: [{ name: 'default' }],
  });
  assert.deepEqual(validateGramineAttestationPolicy(p), []);
  assert.deepEqual(JSON.parse(gramineAttestationPolicyToJson(p)), p);
});

test('signer, debug, TCB statuses, key mounts, manifest digest', () => {
  const digest = 'F0'.repeat(32);
  const p = gramineAttestationPolicy({
    name: 'registry.example/app:1.0-gramine',
    attestationType: 'epid',
    mrenclaves: [MRENCLAVE, MRENCLAVE.toLowerCase()],
    signer: { mrsigner: Buffer.from(MRSIGNER, 'hex'), isvProdId: 7, minIsvSvn: 3 },
    allowDebug: true,
    allowedTcbStatuses: ['UpToDate', 'SWHardeningNeeded', 'SWHardeningNeeded'],
    keys: [{ name: 'default', mounts: ['/app/data'] }, 'logs'],
    protectionManifestDigest: `sha256:${digest}`,
  });
  assert.deepEqual(validateGramineAttestationPolicy(p), [], formatProblems(validateGramineAttestationPolicy(p)));
  assert.equal(p.attestation.type, 'epid');
  assert.deepEqual(p.attestation.mrenclave, ['ab'.repeat(32)]);
  assert.deepEqual(p.attestation.signer, { mrsigner: MRSIGNER, isvProdId: 7, minIsvSvn: 3 });
  assert.equal(p.attestation.allowDebug, true);
  assert.deepEqual(p.attestation.allowedTcbStatuses, ['UpToDate', 'SWHardeningNeeded']);
  assert.deepEqual(p.keys, [{ name: 'default', mounts: ['/app/data'] }, { name: 'logs' }]);
  assert.equal(p.protectionManifestDigest, `sha256:${digest.toLowerCase()}`);
  assert.equal(gramineAttestationPolicy(base({ protectionManifestDigest: digest })).protectionManifestDigest, `sha256:${digest.toLowerCase()}`);
});

test('a signer alone is enough; minIsvSvn defaults to 0; allowTcbVulnerabilities allows all but Revoked', () => {
  const p = gramineAttestationPolicy({ signer: { mrsigner: MRSIGNER, isvProdId: 1 }, allowTcbVulnerabilities: true, keys: ['k'] });
  assert.equal(p.attestation.mrenclave, undefined);
  assert.equal(p.attestation.signer!.minIsvSvn, 0);
  assert.deepEqual(p.attestation.allowedTcbStatuses, [...ALL_TCB_STATUSES]);
  assert.ok(!p.attestation.allowedTcbStatuses.includes('Revoked' as never));
});

test('invalid input is refused naming the option', () => {
  assert.throws(() => gramineAttestationPolicy({ keys: ['k'] }), /give at least one MRENCLAVE or a signer/);
  assert.throws(() => gramineAttestationPolicy(base({ mrenclaves: ['ab'] })), /mrenclaves\[0\]: expected 32 bytes/);
  assert.throws(() => gramineAttestationPolicy(base({ signer: { mrsigner: MRSIGNER, isvProdId: 70000 } })), /signer\.isvProdId: expected an integer 0\.\.65535/);
  assert.throws(() => gramineAttestationPolicy(base({ signer: { mrsigner: MRSIGNER, isvProdId: 1, minIsvSvn: -1 } })), /signer\.minIsvSvn/);
  assert.throws(() => gramineAttestationPolicy(base({ allowedTcbStatuses: ['Revoked' as never] })), /unknown or unacceptable status "Revoked"/);
  assert.throws(() => gramineAttestationPolicy(base({ attestationType: 'sev' as never })), /attestationType "sev"/);
  assert.throws(() => gramineAttestationPolicy(base({ keys: ['a', 'a'] })), /keys\[1\]: duplicate key name \(same as keys\[0\]\)/);
  assert.throws(() => gramineAttestationPolicy(base({ keys: ['_sgx_mrenclave'] })), /\/keys\/0\/name/);
  assert.throws(() => gramineAttestationPolicy(base({ keys: ['has space'] })), /\/keys\/0\/name/);
  assert.throws(() => gramineAttestationPolicy(base({ keys: [{ name: 'k', mounts: ['relative'] }] })), /\/keys\/0\/mounts\/0/);
  assert.throws(() => gramineAttestationPolicy(base({ protectionManifestDigest: 'sha512:00' })), /protectionManifestDigest/);
});

test('key material cannot get into the policy', () => {
  const key = randomBytes(16).toString('hex');
  const noEcho = (re: RegExp) => (e: Error) => re.test(e.message) && !e.message.includes(key);
  // A key value passed alongside the name.
  assert.throws(() => gramineAttestationPolicy(base({ keys: [{ name: 'default', value: key } as never] })), noEcho(/keys\[0\]: only "name" and "mounts" are allowed \(got "value"\)/));
  assert.throws(() => gramineAttestationPolicy(base({ keys: [{ name: 'default', key: Buffer.from(key, 'hex') } as never] })), noEcho(/got "key"/));
  // A key value passed as the name, in either size Gramine uses.
  assert.throws(() => gramineAttestationPolicy(base({ keys: [key] })), noEcho(/keys\[0\]: the name looks like a hex key/));
  const key32 = randomBytes(32).toString('hex');
  assert.throws(() => gramineAttestationPolicy(base({ keys: [key32.toUpperCase()] })), (e: Error) => !e.message.toLowerCase().includes(key32));
  // Extra options are not copied.
  const p = gramineAttestationPolicy({ ...base(), wrapKey: key } as never);
  assert.ok(!JSON.stringify(p).includes(key));
});

test('the schema rejects key values, unknown fields and malformed identities', () => {
  const good = gramineAttestationPolicy(base());
  const variants: [string, (p: any) => void, RegExp][] = [
    ['a key value', (p) => (p.keys[0].value = 'ab'.repeat(16)), /additional properties \("value"\)/],
    ['a hex key as name', (p) => (p.keys[0].name = 'ab'.repeat(16)), /\/keys\/0\/name/],
    ['an unknown top-level field', (p) => (p.wrapKey = 'x'), /additional properties \("wrapKey"\)/],
    ['no identity', (p) => delete p.attestation.mrenclave, /\/attestation/],
    ['an upper-case MRENCLAVE', (p) => (p.attestation.mrenclave = ['AB'.repeat(32)]), /\/attestation\/mrenclave\/0/],
    ['Revoked', (p) => p.attestation.allowedTcbStatuses.push('Revoked'), /allowedTcbStatuses\/1/],
    ['a missing allowDebug', (p) => delete p.attestation.allowDebug, /allowDebug/],
    ['another kind', (p) => (p.kind = 'scone-session'), /\/kind/],
  ];
  for (const [what, mutate, re] of variants) {
    const p = structuredClone(good);
    mutate(p);
    const text = formatProblems(validateGramineAttestationPolicy(p));
    assert.match(text, re, `${what}: ${text}`);
  }
});

test('raTlsVerifierEnv maps a policy onto Gramine RA-TLS variables', () => {
  assert.deepEqual(raTlsVerifierEnv(gramineAttestationPolicy(base())), {
    RA_TLS_MRENCLAVE: 'ab'.repeat(32),
    RA_TLS_MRSIGNER: 'any',
    RA_TLS_ISV_PROD_ID: 'any',
    RA_TLS_ISV_SVN: 'any',
  });
  const p = gramineAttestationPolicy({ signer: { mrsigner: MRSIGNER, isvProdId: 5, minIsvSvn: 2 }, allowDebug: true, allowTcbVulnerabilities: true, keys: ['k'] });
  assert.deepEqual(raTlsVerifierEnv(p), {
    RA_TLS_MRENCLAVE: 'any',
    RA_TLS_MRSIGNER: MRSIGNER,
    RA_TLS_ISV_PROD_ID: '5',
    RA_TLS_ISV_SVN: '2',
    RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE: '1',
    RA_TLS_ALLOW_OUTDATED_TCB_INSECURE: '1',
    RA_TLS_ALLOW_HW_CONFIG_NEEDED: '1',
    RA_TLS_ALLOW_SW_HARDENING_NEEDED: '1',
  });
  const sw = raTlsVerifierEnv(gramineAttestationPolicy(base({ allowedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'] })));
  assert.equal(sw.RA_TLS_ALLOW_SW_HARDENING_NEEDED, '1');
  assert.equal(sw.RA_TLS_ALLOW_HW_CONFIG_NEEDED, undefined);
});

test('raTlsVerifierEnv refuses policies the stock verifier would enforce more loosely', () => {
  assert.throws(() => raTlsVerifierEnv(gramineAttestationPolicy(base({ mrenclaves: [MRENCLAVE, 'ef'.repeat(32)] }))), /accepts one MRENCLAVE/);
  // Allowing ConfigurationAndSWHardeningNeeded needs both flags, which would also admit the single statuses.
  assert.throws(
    () => raTlsVerifierEnv(gramineAttestationPolicy(base({ allowedTcbStatuses: ['UpToDate', 'ConfigurationAndSWHardeningNeeded'] }))),
    /flags would accept UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded/,
  );
  assert.throws(() => raTlsVerifierEnv(gramineAttestationPolicy(base({ attestationType: 'epid' }))), /only DCAP/);
});
