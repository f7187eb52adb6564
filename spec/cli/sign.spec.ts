/**
 * `enclavify sign`: signs a converted, unsigned Gramine image; the signature is checked with the
 * SIGSTRUCT verifier and a fresh measurement of the bytes in the signed image. Also: adding an
 * externally made signature (checked, a mismatching one refused), usage errors, images that are
 * not Gramine images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openImage, pipeline, writeImage } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { gramine } from '../../lib/runtimes/gramine/index.js';
import { measureGramineEnclave, parseSigstruct, signGramineEnclave, verifySigstructSignature } from '../../lib/sgx/index.js';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, scratch } from '../helpers/images.js';
import { readImageFiles, standInRuntime, testKey } from '../runtimes/gramine-helpers.js';

const BASE = '/gramine/app/entrypoint';
const PAL = '/usr/lib/x86_64-linux-gnu/gramine/sgx/libpal.so';

/** bb-fixture converted with the stand-in runtime, unsigned, at oci:<dir>/img:unsigned. */
async function unsignedImage(dir: string): Promise<string> {
  const rt = standInRuntime(path.join(dir, 'runtime'));
  const out = await pipeline(await openImage(`oci:${bbOci}:latest`), [injectRuntime(gramine({ runtimeDir: rt }))], { tmpDir: dir });
  const ref = `oci:${dir}/img:unsigned`;
  await writeImage(out.image, ref);
  await out.dispose();
  return ref;
}

test('enclavify sign adds .manifest.sgx and .sig: the signature verifies, MRENCLAVE is the measurement of the signed image\'s own bytes', async () => {
  const s = scratch();
  try {
    const unsigned = await unsignedImage(s.dir);
    const r = await runCli(['sign', unsigned, '--sign-key', testKey, '--sign-date', '2026-01-01', '--to', `oci:${s.dir}/img:signed`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const facts = cliJson(r.stdout) as { digest: string; mrenclave: string; mrsigner: string; manifest: string };
    const signed = await openImage(`oci:${s.dir}/img:signed`);
    assert.equal(facts.digest, await signed.digest());
    assert.equal(facts.manifest, `${BASE}.manifest`);
    const files = await readImageFiles(signed, [`${BASE}.manifest.sgx`, `${BASE}.sig`, PAL]);
    const sig = files.get(`${BASE}.sig`)!;
    assert.ok(verifySigstructSignature(sig));
    const st = parseSigstruct(sig);
    assert.equal(st.mrenclave, facts.mrenclave);
    assert.equal(st.mrsigner, facts.mrsigner);
    assert.equal(st.date, '2026-01-01');
    assert.equal(measureGramineEnclave({ manifestSgx: files.get(`${BASE}.manifest.sgx`)!, pal: files.get(PAL)! }).mrenclave, st.mrenclave);
    // One layer more, everything below untouched.
    const before = await (await openImage(unsigned)).manifest();
    const after = await signed.manifest();
    assert.equal(after.layers.length, before.layers.length + 1);
    assert.deepEqual(after.layers.slice(0, -1), before.layers);
    const h = (await signed.config()).history!;
    assert.match(h[h.length - 1].created_by!, /enclavify sign/);
    // Signing is deterministic for a fixed date: same key, same .sig.
    const again = await runCli(['sign', unsigned, '--sign-key', testKey, '--sign-date', '2026-01-01', '--to', `oci:${s.dir}/img:again`, '-q']);
    assert.equal(again.code, 0);
    const sig2 = (await readImageFiles(await openImage(`oci:${s.dir}/img:again`), [`${BASE}.sig`])).get(`${BASE}.sig`)!;
    assert.deepEqual(sig2, sig);
  } finally {
    s.done();
  }
});

test('enclavify sign --sigstruct --manifest-sgx adds a signature made elsewhere, and refuses one made for other bytes', async () => {
  const s = scratch();
  try {
    const unsigned = await unsignedImage(s.dir);
    const files = await readImageFiles(await openImage(unsigned), [`${BASE}.manifest`, PAL, '/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so']);
    const libsysdbSha = (await import('node:crypto')).createHash('sha256').update(files.get('/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so')!).digest('hex');
    // "Elsewhere": the library signer run on the manifest taken out of the image.
    const ext = await signGramineEnclave({
      manifest: new TextDecoder().decode(files.get(`${BASE}.manifest`)),
      expand: { resolveSha256: (u) => (u.endsWith('libsysdb.so') ? libsysdbSha : undefined) },
      pal: files.get(PAL)!, signer: { privateKey: readFileSync(testKey) }, date: '2026-02-02',
    });
    const sigFile = path.join(s.dir, 'x.sig'), sgxFile = path.join(s.dir, 'x.manifest.sgx');
    writeFileSync(sigFile, ext.sigstruct);
    writeFileSync(sgxFile, ext.manifestSgx);
    const ok = await runCli(['sign', unsigned, '--sigstruct', sigFile, '--manifest-sgx', sgxFile, '--to', `oci:${s.dir}/img:ext`, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(cliJson(ok.stdout).mrenclave, ext.mrenclave);
    // A .manifest.sgx with one trusted-file hash digit changed no longer matches the SIGSTRUCT's MRENCLAVE.
    const text = new TextDecoder().decode(ext.manifestSgx);
    const at = text.indexOf('sha256 = "') + 'sha256 = "'.length;
    writeFileSync(sgxFile, text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1));
    const bad = await runCli(['sign', unsigned, '--sigstruct', sigFile, '--manifest-sgx', sgxFile, '--to', `oci:${s.dir}/img:bad`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /MRENCLAVE/);
    // A SIGSTRUCT with a flipped signature byte does not verify.
    writeFileSync(sgxFile, ext.manifestSgx);
    const broken = Buffer.from(ext.sigstruct);
    broken[600] ^= 1;
    writeFileSync(sigFile, broken);
    const bad2 = await runCli(['sign', unsigned, '--sigstruct', sigFile, '--manifest-sgx', sgxFile, '--to', `oci:${s.dir}/img:bad2`]);
    assert.equal(bad2.code, 1);
    assert.match(bad2.stderr, /does not verify/);
  } finally {
    s.done();
  }
});

test('enclavify sign: usage errors exit 2, a native image or a weak key exit 1 with a clear message', async () => {
  const s = scratch();
  try {
    let r = await runCli(['sign', `oci:${bbOci}:latest`, '--sign-key', testKey]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--to/);
    r = await runCli(['sign', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/x:y`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--sign-key/);
    r = await runCli(['sign', `oci:${bbOci}:latest`, '--sign-key', testKey, '--sign-date', '1/2/2026', '--to', `oci:${s.dir}/x:y`]);
    assert.equal(r.code, 2);
    r = await runCli(['sign', `oci:${bbOci}:latest`, '--sign-key', testKey, '--to', `oci:${s.dir}/x:y`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no Gramine manifest at \/gramine\/app\/entrypoint.manifest/);
    const unsigned = await unsignedImage(s.dir);
    const { execFileSync } = await import('node:child_process');
    const weak = path.join(s.dir, 'weak.pem');
    writeFileSync(weak, execFileSync('openssl', ['genrsa', '3072'], { stdio: ['ignore', 'pipe', 'ignore'] }));
    r = await runCli(['sign', unsigned, '--sign-key', weak, '--to', `oci:${s.dir}/x:y`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /exponent 3/);
    assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
  } finally {
    s.done();
  }
});

test('the Gramine options of enclavify convert map onto injectRuntime(gramine(...))', async () => {
  const { parseArgs } = await import('../../lib/cli/args.js');
  const { gramineConvertOptions, gramineTransformFromArgs } = await import('../../lib/cli/sign.js');
  const { toml } = await import('../runtimes/gramine-helpers.js');
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const frag = path.join(s.dir, 'frag.toml');
    writeFileSync(frag, 'sys.enable_sigterm_injection = true\n');
    const args = parseArgs(['--runtime-image', rt, '--gramine-loader', 'direct', '--enclave-size', '2G', '--max-threads', '4', '--edmm',
      '--isvprodid', '5', '--isvsvn', '2', '--manifest-fragment', frag, '--passthrough-env', 'POD_IP', '--sign-key', testKey, '--sign-date', '2026-03-04'], gramineConvertOptions);
    const step = await gramineTransformFromArgs(args);
    const out = await pipeline(await openImage(`oci:${bbOci}:latest`), [step], { tmpDir: s.dir });
    const ref = `oci:${s.dir}/img:cli`;
    await writeImage(out.image, ref);
    await out.dispose();
    const img = await openImage(ref);
    assert.deepEqual((await img.config()).config!.Entrypoint, ['/gramine/app/launch', '/usr/bin/gramine-direct', BASE]);
    const files = await readImageFiles(img, [`${BASE}.manifest`, `${BASE}.sig`]);
    const doc = toml(files.get(`${BASE}.manifest`)!) as Record<string, Record<string, unknown>>;
    assert.equal(doc.sgx.enclave_size, '2G');
    assert.equal(doc.sgx.max_threads, 4);
    assert.equal(doc.sgx.edmm_enable, true);
    assert.equal(doc.sgx.isvprodid, 5);
    assert.equal(doc.sys.enable_sigterm_injection, true);
    assert.deepEqual((doc.loader.env as Record<string, unknown>).POD_IP, { passthrough: true });
    const st = parseSigstruct(files.get(`${BASE}.sig`)!);
    assert.equal(st.isvProdId, 5);
    assert.equal(st.isvSvn, 2);
    assert.equal(st.date, '2026-03-04');
    await assert.rejects(gramineTransformFromArgs(parseArgs([], gramineConvertOptions)), /needs --runtime-image/);
    await assert.rejects(gramineTransformFromArgs(parseArgs(['--runtime-image', rt, '--insecure-dev-keys', '--production'], gramineConvertOptions)), /refused with --production/);
    await assert.rejects(gramineTransformFromArgs(parseArgs(['--runtime-image', rt, '--gramine-loader', 'kvm'], gramineConvertOptions)), /expected sgx or direct/);
  } finally {
    s.done();
  }
});

test('signing an image with encrypted regions records the signature files in its protection manifest: verify accepts the signed image', async () => {
  const { fileClassify } = await import('../../lib/transforms/file-classify.js');
  const { encryptFS } = await import('../../lib/transforms/encrypt-fs.js');
  const { verify } = await import('../../lib/protect/verify.js');
  const { PROTECTION } = await import('../../lib/transforms/state.js');
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const out = await pipeline(await openImage(`oci:${bbOci}:latest`), [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt }))], { tmpDir: s.dir });
    const keys = Object.fromEntries((out.state.get(PROTECTION) as { keys: Array<{ name: string; keyHex: string }> }).keys.map((k) => [k.name, k.keyHex]));
    await writeImage(out.image, `oci:${s.dir}/img:u`);
    await out.dispose();
    const r = await runCli(['sign', `oci:${s.dir}/img:u`, '--sign-key', testKey, '--to', `oci:${s.dir}/img:s`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const facts = cliJson(r.stdout) as { protectionManifestSha256: string };
    const v = await verify(await openImage(`oci:${s.dir}/img:s`), { keys });
    assert.deepEqual(v.findings, []);
    assert.equal(v.manifestSha256, facts.protectionManifestSha256);
  } finally {
    s.done();
  }
});
