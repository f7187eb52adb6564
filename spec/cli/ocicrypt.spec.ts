/** The ocicrypt flags of the CLI, end to end with skopeo 1.9.3 as the independent reader/writer. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, expectedTree, scratch } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';

const skip = tool('skopeo').skip;
const expected = () => readFileSync(expectedTree, 'utf8').trimEnd();
let work: ReturnType<typeof scratch>;
let pub: string, priv: string;
before(() => {
  work = scratch('enclavify-cli-ocicrypt-');
  const p = generateKeyPairSync('rsa', { modulusLength: 2048 });
  pub = path.join(work.dir, 'pub.pem'); priv = path.join(work.dir, 'priv.pem');
  writeFileSync(pub, p.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(priv, p.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
});
after(() => work.done());
const sk = (...a: string[]) => spawnSync('skopeo', ['--insecure-policy', ...a], { encoding: 'utf8' });

test('copy --encryption-key jwe: → skopeo --decryption-key recovers the image; tree/copy of it need --decryption-key', { skip }, async () => {
  const enc = path.join(work.dir, 'enc');
  const r = await runCli(['copy', '--json', '--encryption-key', `jwe:${pub}`, '--encrypt-layer', '-1', `oci:${bbOci}:latest`, `oci:${enc}:latest`]);
  assert.equal(r.code, 0, r.stderr);
  const dec = path.join(work.dir, 'dec');
  const s = sk('copy', '--decryption-key', priv, `oci:${enc}:latest`, `oci:${dec}:latest`);
  assert.equal(s.status, 0, s.stderr);
  const tree = await runCli(['tree', `oci:${dec}:latest`]);
  assert.equal(tree.stdout.trimEnd(), expected());
  const noKey = await runCli(['tree', `oci:${enc}:latest`]);
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /ENCRYPTED_LAYER|encrypted/);
  assert.match(noKey.stderr, /--decryption-key/);
  const withKey = await runCli(['tree', '--decryption-key', priv, `oci:${enc}:latest`]);
  assert.equal(withKey.stdout.trimEnd(), expected());
  assert.equal((await runCli(['copy', `oci:${enc}:latest`, `oci:${path.join(work.dir, 'c1')}:latest`])).code, 1, 'validating copy without keys refuses');
  const kept = await runCli(['copy', '--no-validate', `oci:${enc}:latest`, `oci:${path.join(work.dir, 'c2')}:latest`]);
  assert.equal(kept.code, 0, kept.stderr);
  const c3 = path.join(work.dir, 'c3');
  const back = await runCli(['copy', '--decryption-key', priv, `oci:${enc}:latest`, `oci:${c3}:latest`]);
  assert.equal(back.code, 0, back.stderr);
  const man = (dir: string) => {
    const idx = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const m = JSON.parse(readFileSync(path.join(dir, 'blobs/sha256', idx.manifests[0].digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
    return { config: m.config.digest, layers: m.layers.map((l) => [l.mediaType, l.digest]) };
  };
  assert.deepEqual(man(c3), man(bbOci), 'decrypted: the original config and layer blobs');
  assert.equal(man(enc).config, man(bbOci).config, 'encryption leaves the config as it is');
});

test('skopeo --encryption-key → enclavify tree --decryption-key', { skip }, async () => {
  const enc = path.join(work.dir, 'senc');
  const s = sk('copy', '--encryption-key', `jwe:${pub}`, `oci:${bbOci}:latest`, `oci:${enc}:latest`);
  assert.equal(s.status, 0, s.stderr);
  const t = await runCli(['tree', '--decryption-key', priv, `oci:${enc}:latest`]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout.trimEnd(), expected());
});

test('attestation-agent: a generated KEK goes to --kek-out (0600, never overwritten) and opens the image; usage errors are clear', async () => {
  const kek = path.join(work.dir, 'kek.bin');
  const enc = path.join(work.dir, 'aa');
  const r = await runCli(['copy', '--json', '--encryption-key', 'provider:attestation-agent:keyid=kbs:///default/image-kek/bb', '--kek-out', kek, `oci:${bbOci}:latest`, `oci:${enc}:latest`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(kek).mode & 0o777, 0o600);
  assert.equal(statSync(kek).size, 32);
  assert.equal(cliJson(r.stdout).kekFile, kek);
  assert.ok(!r.stdout.includes(readFileSync(kek).toString('base64')) && !r.stderr.includes(readFileSync(kek).toString('hex')));
  const t = await runCli(['tree', '--decryption-key', kek, `oci:${enc}:latest`]);
  assert.equal(t.stdout.trimEnd(), expected());
  const again = await runCli(['copy', '--encryption-key', 'provider:attestation-agent:keyid=kbs:///default/image-kek/bb', '--kek-out', kek, `oci:${bbOci}:latest`, `oci:${path.join(work.dir, 'aa2')}:latest`]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /never overwritten/);
  const noOut = await runCli(['copy', '--encryption-key', 'provider:attestation-agent:keyid=kbs:///default/image-kek/bb', `oci:${bbOci}:latest`, `oci:${path.join(work.dir, 'aa3')}:latest`]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /--kek-out/);
  const badKid = await runCli(['copy', '--encryption-key', 'provider:attestation-agent:keyid=/default/image-kek/x', `oci:${bbOci}:latest`, `oci:${path.join(work.dir, 'aa4')}:latest`]);
  assert.equal(badKid.code, 2);
  assert.match(badKid.stderr, /kbs:\/\//);
  const given = path.join(work.dir, 'given.bin');
  writeFileSync(given, randomBytes(32), { mode: 0o600 });
  const kp = await runCli(['copy', '--encryption-key', `provider:attestation-agent:keyid=kbs:///default/image-kek/bb::keypath=${given}`, '--encrypt-layer', '5', `oci:${bbOci}:latest`, `oci:${path.join(work.dir, 'aa5')}:latest`]);
  assert.equal(kp.code, 1);
  assert.match(kp.stderr, /--encrypt-layer 5 is out of range/);
  assert.ok(!existsSync(path.join(work.dir, 'aa5', 'index.json')) || !readFileSync(path.join(work.dir, 'aa5', 'index.json'), 'utf8').includes('latest'));
  const arch = await runCli(['copy', '--encryption-key', `jwe:${pub}`, `oci:${bbOci}:latest`, `docker-archive:${path.join(work.dir, 'x.tar')}:x:y`]);
  assert.equal(arch.code, 1);
  assert.match(arch.stderr, /docker archive cannot carry encrypted layers/);
});
