/** Init data: parsed by an independent TOML parser, digest and annotation recomputed by Python. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { parse } from 'smol-toml';
import { initData } from '../../lib/coco/initdata.js';

const cert = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZ2V0IHJlYWwgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----';

test('init data: version, algorithm, aa.toml and cdh.toml naming the KBS, its certificate and the image security policy', () => {
  const d = initData({ kbsUrl: 'https://kbs.example:8080', kbsCert: cert, imageSecurityPolicyUri: 'kbs:///default/security-policy/app' });
  const t = parse(d.toml) as { version: string; algorithm: string; data: Record<string, string> };
  assert.equal(t.version, '0.1.0');
  assert.equal(t.algorithm, 'sha384');
  const aa = parse(t.data['aa.toml']) as { token_configs: { kbs: { url: string; cert: string } } };
  assert.equal(aa.token_configs.kbs.url, 'https://kbs.example:8080');
  assert.equal(aa.token_configs.kbs.cert.trim(), cert);
  const cdh = parse(t.data['cdh.toml']) as { kbc: { name: string; url: string; kbs_cert: string }; image: { image_security_policy_uri: string } };
  assert.equal(cdh.kbc.name, 'cc_kbc');
  assert.equal(cdh.kbc.url, 'https://kbs.example:8080');
  assert.equal(cdh.kbc.kbs_cert.trim(), cert);
  assert.equal(cdh.image.image_security_policy_uri, 'kbs:///default/security-policy/app');
});

test('init data: the digest and the annotation value, recomputed by Python (hashlib, gzip, base64)', () => {
  void generateKeyPairSync;
  for (const algorithm of ['sha256', 'sha384', 'sha512'] as const) {
    const d = initData({ kbsUrl: 'http://10.0.0.1:8080', imageSecurityPolicyUri: 'kbs:///default/security-policy/app', algorithm, agentPolicy: 'package agent_policy\ndefault AllowRequestsFailingPolicy := true' });
    const py = execFileSync('python3', ['-c', `import sys,hashlib,gzip,base64,json
d=json.load(sys.stdin)
raw=gzip.decompress(base64.b64decode(d['annotation']))
assert raw==d['toml'].encode(), 'annotation does not hold the document'
print(hashlib.new(d['algorithm'], raw).hexdigest())`], { input: JSON.stringify(d), encoding: 'utf8' }).trim();
    assert.equal(py, d.digest);
    assert.equal(d.digest.length, { sha256: 64, sha384: 96, sha512: 128 }[algorithm]);
    assert.match((parse(d.toml) as { data: Record<string, string> }).data['policy.rego'], /package agent_policy/);
  }
});

test('init data: a bad KBS URL, certificate or policy URI is refused', () => {
  assert.throws(() => initData({ kbsUrl: 'kbs.example', imageSecurityPolicyUri: 'kbs:///a/b/c' }), { code: 'BAD_OPTIONS' });
  assert.throws(() => initData({ kbsUrl: 'http://k:1', kbsCert: 'nope', imageSecurityPolicyUri: 'kbs:///a/b/c' }), { code: 'BAD_OPTIONS' });
  assert.throws(() => initData({ kbsUrl: 'http://k:1', imageSecurityPolicyUri: '/a/b/c' }), { code: 'BAD_OPTIONS' });
});
