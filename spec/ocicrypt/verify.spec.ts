/** verifyOcicrypt: structure without keys, end-to-end decryption with keys, the Trustee bundle, attacks. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { openImage, writeImage } from '../../lib/store/index.js';
import { encryptedImage } from '../../lib/ocicrypt/layers.js';
import { verifyOcicrypt } from '../../lib/ocicrypt/verify.js';
import { trusteeBundle } from '../../lib/coco/trustee.js';
import { bbOci, scratch } from '../helpers/images.js';
import type { Index, Manifest } from '../../lib/oci/types.js';

let work: ReturnType<typeof scratch>;
before(() => { work = scratch('enclavify-ocverify-'); });
after(() => work.done());
let n = 0;
const kid = 'kbs:///default/image-kek/bb';

async function make(kek: Uint8Array, layers?: number[]): Promise<string> {
  const out = path.join(work.dir, `img-${n++}`);
  await writeImage(await encryptedImage(await openImage(`oci:${bbOci}:latest`), { recipients: [{ kind: 'attestation-agent', kid, algorithm: 'A256GCM', kek }], layers }), `oci:${out}:latest`);
  return out;
}
function rewrite(layout: string, edit: (m: Manifest, blob: (d: string) => string) => void): void {
  const ip = path.join(layout, 'index.json');
  const index = JSON.parse(readFileSync(ip, 'utf8')) as Index;
  const blob = (d: string) => path.join(layout, 'blobs/sha256', d.slice(7));
  const m = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8')) as Manifest;
  edit(m, blob);
  const raw = Buffer.from(JSON.stringify(m));
  const digest = 'sha256:' + createHash('sha256').update(raw).digest('hex');
  writeFileSync(blob(digest), raw);
  index.manifests[0] = { ...index.manifests[0], digest, size: raw.length };
  writeFileSync(ip, JSON.stringify(index));
}

test('without keys: which layers are encrypted, their kids, well-formed annotations; a required plain layer is a finding', async () => {
  const kek = randomBytes(32);
  const img = await openImage(`oci:${await make(kek, [1, 2])}:latest`);
  const r = await verifyOcicrypt(img);
  assert.ok(r.ok, JSON.stringify(r.findings));
  assert.deepEqual(r.layers.map((l) => l.encrypted), [false, true, true]);
  assert.deepEqual(r.layers[1].kids, [kid]);
  assert.deepEqual(r.layers[1].schemes, ['provider.attestation-agent']);
  const all = await verifyOcicrypt(img, { expectEncrypted: 'all' });
  assert.deepEqual(all.findings.map((f) => [f.layer, f.code]), [[0, 'NOT_ENCRYPTED']]);
});

test('with the KEK (or the bundle holding it): every layer decrypts and checks; a wrong KEK or a flipped byte is a finding', async () => {
  const kek = randomBytes(32);
  const dir = await make(kek);
  const ok = await verifyOcicrypt(await openImage(`oci:${dir}:latest`), { keys: { jwe: [], keks: [kek] } });
  assert.ok(ok.ok && ok.layers.every((l) => l.decrypted), JSON.stringify(ok.findings));
  const wrong = await verifyOcicrypt(await openImage(`oci:${dir}:latest`), { keys: { jwe: [], keks: [randomBytes(32)] } });
  assert.deepEqual(wrong.findings.map((f) => f.code), ['NO_KEY', 'NO_KEY', 'NO_KEY']);
  rewrite(dir, (m, blob) => {
    const b = readFileSync(blob(m.layers[2].digest)); b[100] ^= 1;
    const d = 'sha256:' + createHash('sha256').update(b).digest('hex');
    writeFileSync(blob(d), b);
    m.layers[2] = { ...m.layers[2], digest: d };
  });
  const flipped = await verifyOcicrypt(await openImage(`oci:${dir}:latest`), { keys: { jwe: [], keks: [kek] } });
  assert.deepEqual(flipped.findings.map((f) => [f.layer, f.code]), [[2, 'DECRYPT_FAILED']]);
  assert.match(flipped.findings[0].message, /HMAC/);
});

test('the Trustee bundle: agrees with the image; a missing KEK, a policy without the kid, a changed init data are findings', async () => {
  const kek = randomBytes(32);
  const img = await openImage(`oci:${await make(kek)}:latest`);
  const b = trusteeBundle({ tee: 'tdx', kid, kek, name: 'bb', image: 'oci:bb:latest', kbsUrl: 'http://10.0.0.1:8080' });
  const out = path.join(work.dir, 'bundle');
  for (const a of b.artifacts) { mkdirSync(path.dirname(path.join(out, a.path)), { recursive: true }); writeFileSync(path.join(out, a.path), a.data); }
  const dir = path.join(out, 'trustee');
  const r = await verifyOcicrypt(img, { bundleDir: dir });
  assert.ok(r.ok && r.layers.every((l) => l.decrypted), JSON.stringify(r.findings));
  writeFileSync(path.join(dir, 'initdata.toml'), readFileSync(path.join(dir, 'initdata.toml'), 'utf8').replace('10.0.0.1', '10.6.6.6'));
  writeFileSync(path.join(dir, 'resource-policy.rego'), 'package policy\ndefault allow := true\n');
  rmSync(path.join(dir, 'kbs/default/image-kek/bb'));
  const bad = await verifyOcicrypt(img, { bundleDir: dir });
  const msgs = bad.findings.filter((f) => f.code === 'BUNDLE_MISMATCH').map((f) => f.message).join('\n');
  assert.match(msgs, /no KEK for kbs:\/\/\/default\/image-kek\/bb/);
  assert.match(msgs, /does not release default\/image-kek\/bb/);
  assert.match(msgs, /initdata.digest is not the digest/);
});

test('the Trustee bundle: init data replaced consistently (toml and digest) no longer matches the resource policy', async () => {
  const kek = randomBytes(32);
  const img = await openImage(`oci:${await make(kek)}:latest`);
  for (const tee of ['tdx', 'snp', 'coco-dev'] as const) {
    const b = trusteeBundle({ tee, kid, kek, name: 'bb', image: 'oci:bb:latest', kbsUrl: 'http://10.0.0.1:8080' });
    const out = path.join(work.dir, `bundle-${tee}`);
    for (const a of b.artifacts) { mkdirSync(path.dirname(path.join(out, a.path)), { recursive: true }); writeFileSync(path.join(out, a.path), a.data); }
    const dir = path.join(out, 'trustee');
    assert.ok((await verifyOcicrypt(img, { bundleDir: dir })).ok, tee);
    // An attacker points the guest at their own KBS and fixes up the digest: the policy still names the old digest.
    const toml = readFileSync(path.join(dir, 'initdata.toml'), 'utf8').replace('10.0.0.1', '10.6.6.6');
    writeFileSync(path.join(dir, 'initdata.toml'), toml);
    writeFileSync(path.join(dir, 'initdata.digest'), `${b.initData.algorithm}:${createHash(b.initData.algorithm).update(toml).digest('hex')}\n`);
    const bad = await verifyOcicrypt(img, { bundleDir: dir });
    assert.match(bad.findings.map((f) => f.message).join('\n'), /requires init data other than initdata.toml's/, tee);
    // A policy that drops the init-data check is a finding too.
    writeFileSync(path.join(dir, 'resource-policy.rego'), b.artifacts.find((a) => a.path === 'trustee/resource-policy.rego')!.data.toString().replace(/^init_data := .*\n/m, '').replace(/^\tevidence\.init_data in init_data\n/m, ''));
    writeFileSync(path.join(dir, 'initdata.toml'), b.initData.toml);
    writeFileSync(path.join(dir, 'initdata.digest'), `${b.initData.algorithm}:${b.initData.digest}\n`);
    assert.match((await verifyOcicrypt(img, { bundleDir: dir })).findings.map((f) => f.message).join('\n'), /does not require the init data/, tee);
  }
});

test('a downgraded media type (encryption annotations on a plain type) is a finding', async () => {
  const dir = await make(randomBytes(32));
  rewrite(dir, (m) => { m.layers[0].mediaType = m.layers[0].mediaType.replace('+encrypted', ''); });
  const r = await verifyOcicrypt(await openImage(`oci:${dir}:latest`), { expectEncrypted: 'all' });
  assert.deepEqual(r.findings.map((f) => [f.layer, f.code]), [[0, 'NOT_ENCRYPTED'], [0, 'BAD_ANNOTATION']]);
});
