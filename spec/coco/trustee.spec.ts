/** The Trustee bundle: every file present and consistent with the image's KEK id and init data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { trusteeBundle, resourcePolicy, checkMeasurements, TEES } from '../../lib/coco/trustee.js';

test('bundle: KEK as a secret KBS resource at its kid path, security policy, Rego, kbs-client script, init data and its digest', () => {
  const kek = randomBytes(32);
  const b = trusteeBundle({ tee: 'tdx', kid: 'kbs:///default/image-kek/app-1', kek, name: 'app-1', image: 'docker://reg/app:1', kbsUrl: 'https://kbs.example:8080' });
  const by = new Map(b.artifacts.map((a) => [a.path, a]));
  const k = by.get('trustee/kbs/default/image-kek/app-1')!;
  assert.ok(k.secret);
  assert.ok(Buffer.from(k.data as Uint8Array).equals(kek));
  assert.deepEqual(JSON.parse(by.get('trustee/security-policy.json')!.data as string), { default: [{ type: 'insecureAcceptAnything' }], transports: {} });
  assert.equal(by.get('trustee/kbs/default/security-policy/app-1')!.data, by.get('trustee/security-policy.json')!.data);
  const script = by.get('trustee/set-resources.sh')!.data as string;
  execFileSync('sh', ['-n'], { input: script });
  assert.match(script, /set-resource --path 'default\/image-kek\/app-1' --resource-file 'kbs\/default\/image-kek\/app-1'/);
  assert.ok(!script.includes(kek.toString('hex')) && !script.includes(kek.toString('base64')));
  const digest = by.get('trustee/initdata.digest')!.data as string;
  assert.equal(digest, `sha384:${createHash('sha384').update(by.get('trustee/initdata.toml')!.data as string).digest('hex')}\n`);
  assert.match(by.get('trustee/initdata.toml')!.data as string, /image_security_policy_uri = "kbs:\/\/\/default\/security-policy\/app-1"/);
  assert.deepEqual(b.resources, ['default/image-kek/app-1', 'default/security-policy/app-1']);
});

test('resource policy: golden text for tdx with init data and a measurement', () => {
  const digest = createHash('sha384').update('init').digest('hex');
  const mrtd = 'a1'.repeat(48);
  const p = resourcePolicy('tdx', ['default/image-kek/a', 'default/security-policy/a'], 'oci:x:y', { initData: { algorithm: 'sha384', digest }, measurements: [mrtd.toUpperCase()] });
  const body = p.slice(p.indexOf('package policy'));
  assert.equal(body, `package policy

import rego.v1

default allow := false

resources := {"default/image-kek/a", "default/security-policy/a"}
# init_data: the sha384 digest of trustee/initdata.toml as the tdx verifier reports it
# (48 bytes, zero-padded or truncated; hex, or base64 as in earlier releases).
init_data := {"${digest}", "${Buffer.from(digest, 'hex').toString('base64')}"}
measurements := {"${mrtd}"}

allow if {
\tdata.plugin == "resource"
\tdata["resource-path"] in resources
\tinput.submods.cpu0["ear.status"] == "affirming"
\tevidence := input.submods.cpu0["ear.veraison.annotated-evidence"]
\tevidence.tdx
\tevidence.init_data in init_data
\tevidence.tdx.quote.body.mr_td in measurements
}
`);
  // Every claim path the policy uses is cited from Trustee's sources in its header.
  for (const src of ['ear_token/broker.rs', 'tdx/claims.rs', 'snp/mod.rs', 'se/ibmse.rs', 'sample/mod.rs']) assert.ok(p.includes(src), src);
  assert.match(p, /opa eval -d resource-policy\.rego/);
});

test('resource policy: the init-data digest as each verifier reports it (padded, truncated, base64), the claim per TEE', () => {
  const d256 = createHash('sha256').update('x').digest();
  const d512 = createHash('sha512').update('x').digest();
  const setOf = (p: string, name: string) => JSON.parse(`[${p.match(new RegExp(`^${name} := \\{(.*)\\}$`, 'm'))?.[1] ?? ''}]`) as string[];
  // TDX MRCONFIGID is 48 bytes: a sha256 digest is zero-padded.
  const tdx = resourcePolicy('tdx', ['a/b/c'], 'i', { initData: { algorithm: 'sha256', digest: d256.toString('hex') } });
  const padded = Buffer.concat([d256, Buffer.alloc(16)]);
  assert.deepEqual(setOf(tdx, 'init_data'), [padded.toString('hex'), padded.toString('base64')]);
  // SNP HOSTDATA is 32 bytes: a sha512 digest is truncated.
  const snp = resourcePolicy('snp', ['a/b/c'], 'i', { initData: { algorithm: 'sha512', digest: d512.toString('hex') }, measurements: ['0b'.repeat(48)] });
  assert.deepEqual(setOf(snp, 'init_data'), [d512.subarray(0, 32).toString('hex'), d512.subarray(0, 32).toString('base64')]);
  assert.match(snp, /^\tevidence\.snp\.measurement in measurements$/m);
  // The sample verifier (coco-dev) reports the whole expected digest in base64.
  const dev = resourcePolicy('coco-dev', ['a/b/c'], 'i', { initData: { algorithm: 'sha512', digest: d512.toString('hex') }, measurements: ['abcde'] });
  assert.deepEqual(setOf(dev, 'init_data'), [d512.toString('base64')]);
  assert.match(dev, /^\tevidence\.sample\.launch_digest in measurements$/m);
  // IBM SE binds no init data into its evidence: not checked, and the policy says so.
  const se = resourcePolicy('se', ['a/b/c'], 'i', { initData: { algorithm: 'sha384', digest: d512.subarray(0, 48).toString('hex') }, measurements: ['0c'.repeat(16)] });
  assert.doesNotMatch(se, /init_data in/);
  assert.match(se, /init data is NOT checked/);
  assert.match(se, /^\tevidence\.se\.tag in measurements$/m);
  // Without reference values: attestation only, as before.
  for (const tee of TEES) {
    const p = resourcePolicy(tee, ['a/b/c'], 'i');
    assert.match(p, new RegExp(`^\\tevidence\\.${tee === 'coco-dev' ? 'sample' : tee}$`, 'm'));
    assert.doesNotMatch(p, /measurements|init_data in/);
  }
});

test('measurements: checked against the TEE\'s claim format (a usage error, not a policy that never allows)', () => {
  assert.deepEqual(checkMeasurements('tdx', ['0x' + 'AB'.repeat(48)]), ['ab'.repeat(48)]);
  for (const [tee, bad] of [['tdx', 'ab'.repeat(32)], ['snp', 'zz'.repeat(48)], ['se', 'ab'.repeat(48)], ['coco-dev', 'a"b']] as const) {
    assert.throws(() => checkMeasurements(tee, [bad]), { code: 'BAD_OPTIONS' }, `${tee} ${bad}`);
  }
  const b = trusteeBundle({ tee: 'snp', kid: 'kbs:///default/image-kek/x', kek: randomBytes(32), name: 'x', image: 'i', kbsUrl: 'http://k:1', measurements: ['0d'.repeat(48)] });
  const rego = b.artifacts.find((a) => a.path === 'trustee/resource-policy.rego')!.data as string;
  assert.ok(rego.includes(`measurements := {"${'0d'.repeat(48)}"}`));
  // The bundle's policy checks the bundle's own init data.
  assert.ok(rego.includes(Buffer.from(b.initData.digest, 'hex').subarray(0, 32).toString('hex')));
  assert.throws(() => trusteeBundle({ tee: 'snp', kid: '/default/image-kek/x', kek: randomBytes(32), name: 'x', image: 'i', kbsUrl: 'http://k:1' }), { code: 'OCICRYPT_BAD_RECIPIENT' });
});
