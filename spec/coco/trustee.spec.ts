/** The Trustee bundle: every file present and consistent with the image's KEK id and init data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { trusteeBundle, resourcePolicy, TEES } from '../../lib/coco/trustee.js';

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

test('resource policy: golden text for tdx; the evidence name follows the TEE', () => {
  const p = resourcePolicy('tdx', ['default/image-kek/a', 'default/security-policy/a'], 'oci:x:y');
  assert.match(p, /^package policy$/m);
  assert.match(p, /^default allow := false$/m);
  assert.match(p, /^resources := \{"default\/image-kek\/a", "default\/security-policy\/a"\}$/m);
  assert.match(p, /input\.submods\.cpu0\["ear\.status"\] == "affirming"/);
  assert.match(p, /annotated-evidence"\]\.tdx$/m);
  for (const tee of TEES) assert.match(resourcePolicy(tee, ['a/b/c'], 'i'), new RegExp(`annotated-evidence"\\]\\.${tee === 'coco-dev' ? 'sample' : tee}$`, 'm'));
  assert.throws(() => trusteeBundle({ tee: 'snp', kid: '/default/image-kek/x', kek: randomBytes(32), name: 'x', image: 'i', kbsUrl: 'http://k:1' }), { code: 'OCICRYPT_BAD_RECIPIENT' });
});
