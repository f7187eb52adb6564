/**
 * What weakens a Gramine enclave against its host (lib/runtimes/gramine/hardening.ts), what
 * `enclavify sign` checks before it signs (sign-check.ts), and the options around them: SIGTERM
 * injection, the secret-provisioning CA chain on the command line, emitPolicy with development
 * keys. The attacks themselves are in spec/protect/security-review.spec.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, type TomlTable } from 'smol-toml';
import { openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import type { Draft } from '../../lib/transforms/pipeline.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { emitPolicy } from '../../lib/transforms/emit-policy.js';
import { PROTECTION, type Protection } from '../../lib/transforms/state.js';
import { gramine, type GramineOptions } from '../../lib/runtimes/gramine/index.js';
import { hostEnvNames, hostEnvRisk, manifestRisks } from '../../lib/runtimes/gramine/hardening.js';
import { checkImageForSigning, type SigningCheck } from '../../lib/runtimes/gramine/sign-check.js';
import { parseArgs } from '../../lib/cli/args.js';
import { gramineConvertOptions, gramineTransformFromArgs } from '../../lib/cli/sign.js';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbOci, scratch } from '../helpers/images.js';
import { fileItem, readImageFiles, standInRuntime, testKey, toml } from './gramine-helpers.js';

const M = '/gramine/app/entrypoint.manifest';
const doc = (text: string): TomlTable => parse(text, { integersAsBigInt: true });
const keysOf = (text: string) => manifestRisks(doc(text)).map((r) => `${r.kind} ${r.key}`);

test('manifestRisks: insecure__ keys anywhere, debug, allow_all_but_log, host env that loads code, untrusted argv/env files, untrusted_shm; key values never shown', () => {
  assert.deepEqual(keysOf('[libos]\nentrypoint = "/app"\n[sgx]\ndebug = false\nfile_check_policy = "strict"\n'), []);
  const risks = manifestRisks(doc(`
[loader]
argv_src_file = "file:/app/argv"
env_src_file = "file:/var/env"
insecure__disable_aslr = true
[loader.env]
LD_PRELOAD = { passthrough = true }
PYTHONPATH = { passthrough = true }
SECRET_PROVISION_CA_CHAIN_PATH = { passthrough = true }
SECRET_PROVISION_SERVERS = { passthrough = true }
POD_NAME = { passthrough = true }
FIXED = "LD_PRELOAD"
[fs]
mounts = [ { type = "untrusted_shm", path = "/shm", uri = "dev:/dev/shm" } ]
insecure__keys = { app_data = "00112233445566778899aabbccddeeff" }
[sgx]
debug = true
file_check_policy = "allow_all_but_log"
insecure__rpc_thread_num = 4
trusted_files = [ { uri = "file:/app/argv", sha256 = "00" }, { uri = "file:/var/env", sha256 = "00" } ]
allowed_files = [ "file:/var/" ]
[sys]
insecure__allow_eventfd = true
`));
  assert.deepEqual(risks.map((r) => r.key).sort(), [
    'fs.insecure__keys', 'fs.mounts[0]', 'loader.env.LD_PRELOAD', 'loader.env.PYTHONPATH', 'loader.env.SECRET_PROVISION_CA_CHAIN_PATH',
    'loader.env_src_file', 'loader.insecure__disable_aslr', 'sgx.allowed_files', 'sgx.debug', 'sgx.file_check_policy', 'sgx.insecure__rpc_thread_num', 'sys.insecure__allow_eventfd',
  ]);
  assert.ok(risks.every((r) => r.kind === 'insecure' && r.message.startsWith(r.key.replace(/\[0\]$/, ''))), JSON.stringify(risks));
  const text = JSON.stringify(risks);
  assert.ok(!text.includes('00112233'), 'a development key value is never in a message');
  assert.match(text, /fs\.insecure__keys \(app_data\)/);
  assert.match(risks.find((r) => r.key === 'loader.env_src_file')!.message, /allowed entry file:\/var\//);
  assert.deepEqual(hostEnvNames(doc('[loader.env]\nA = { passthrough = true }\nB = "x"\nC = { value = "y" }\n')), ['A']);
  for (const n of ['LD_AUDIT', 'GLIBC_TUNABLES', 'MALLOC_ARENA_MAX', 'GCONV_PATH', 'NODE_OPTIONS', 'PATH', 'SSL_CERT_FILE', 'SECRET_PROVISION_SET_KEY', 'RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE']) assert.ok(hostEnvRisk(n), n);
  for (const n of ['POD_NAME', 'HOSTNAME', 'SECRET_PROVISION_SERVERS', 'LANG']) assert.equal(hostEnvRisk(n), undefined, n);
});

test('manifestRisks: library directories, preloads and the CA chain the host could write are untrusted code; other directories are not', () => {
  const base = (env: string, extra = '') => `[fs]\nstart_dir = "/srv"\n[loader.env]\n${env}\n[sgx]\ntrusted_files = [ { uri = "file:/etc/ca.pem", sha256 = "00" } ]\nallowed_files = [ "file:/var/", "file:/usr/lib/foo/", "file:/opt/lib/libz.so.1", "file:/opt/hw/glibc-hwcaps/x86-64-v3/" ${extra}]\n`;
  const untrusted = (env: string, extra?: string, dirs?: Array<{ dir: string; from: string }>) =>
    manifestRisks(doc(base(env, extra)), { librarySearchDirs: dirs }).filter((r) => r.kind === 'untrusted-code').map((r) => r.message);
  assert.deepEqual(untrusted('LD_LIBRARY_PATH = "/usr/lib:/lib:/usr/lib/foo2"'), [], 'a directory next to an allowed one is fine');
  assert.match(untrusted('LD_LIBRARY_PATH = "/usr/lib:/var/lib/app"').join(), /LD_LIBRARY_PATH directory \/var\/lib\/app.*file:\/var\//);
  assert.match(untrusted('LD_LIBRARY_PATH = "/opt/lib"').join(), /file:\/opt\/lib\/libz\.so\.1/, 'an allowed file directly in the directory');
  assert.match(untrusted('LD_LIBRARY_PATH = "/opt/hw"').join(), /glibc-hwcaps/, 'an allowed glibc-hwcaps subdirectory');
  assert.match(untrusted('LD_LIBRARY_PATH = "../var/x"').join(), /\/var\/x/, 'relative to fs.start_dir');
  assert.match(untrusted('LD_LIBRARY_PATH = { value = "/var" }').join(), /\/var/);
  assert.deepEqual(untrusted('LD_PRELOAD = "libfoo.so /usr/lib/libbar.so"'), []);
  assert.match(untrusted('LD_PRELOAD = "/usr/lib/x.so /var/hook.so"').join(), /LD_PRELOAD entry \/var\/hook\.so/);
  assert.match(untrusted('LD_AUDIT = "/var/audit.so"').join(), /LD_AUDIT entry/);
  assert.deepEqual(untrusted('SECRET_PROVISION_CA_CHAIN_PATH = "/etc/ca.pem"'), []);
  assert.match(untrusted('SECRET_PROVISION_CA_CHAIN_PATH = "/etc/other.pem"').join(), /not a trusted file/);
  assert.match(untrusted('SECRET_PROVISION_CA_CHAIN_PATH = "/etc/ca.pem"', ', "file:/etc/"').join(), /allowed entry file:\/etc\//);
  assert.match(untrusted('X = "1"', '', [{ dir: '/var/lib', from: '/etc/ld.so.conf' }]).join(), /^\/etc\/ld\.so\.conf directory \/var\/lib/);
});

/** A minimal x86-64 ELF: PT_LOAD, PT_INTERP (executables), PT_DYNAMIC with DT_NEEDED, DT_SONAME, DT_RUNPATH. */
function elf(o: { interp?: string; needed?: string[]; soname?: string; runpath?: string }): Uint8Array {
  const strings: number[] = [0];
  const str = (v: string) => {
    const at = strings.length;
    strings.push(...Buffer.from(v), 0);
    return at;
  };
  const dyn: Array<[number, number]> = [];
  for (const n of o.needed ?? []) dyn.push([1, str(n)]);
  if (o.soname) dyn.push([14, str(o.soname)]);
  if (o.runpath) dyn.push([29, str(o.runpath)]);
  const interp = o.interp ? [...Buffer.from(o.interp), 0] : [];
  const phnum = 2 + (o.interp ? 1 : 0);
  const interpOff = 64 + phnum * 56, strOff = interpOff + interp.length, dynOff = Math.ceil((strOff + strings.length) / 8) * 8, base = 0x10000;
  dyn.push([5, base + strOff], [10, strings.length], [0, 0]);
  const total = dynOff + dyn.length * 16;
  const b = Buffer.alloc(total);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  b.writeUInt16LE(o.interp ? 2 : 3, 16);
  b.writeUInt16LE(62, 18);
  b.writeBigUInt64LE(64n, 32);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(phnum, 56);
  let ph = 64;
  const phdr = (type: number, off: number, size: number) => {
    b.writeUInt32LE(type, ph);
    [off, base + off, base + off, size, size].forEach((x, i) => b.writeBigUInt64LE(BigInt(x), ph + 8 + i * 8));
    ph += 56;
  };
  phdr(1, 0, total);
  if (o.interp) phdr(3, interpOff, interp.length);
  phdr(2, dynOff, dyn.length * 16);
  b.set(interp, interpOff);
  b.set(strings, strOff);
  dyn.forEach(([tag, val], i) => {
    b.writeBigUInt64LE(BigInt(tag), dynOff + i * 16);
    b.writeBigUInt64LE(BigInt(val), dynOff + i * 16 + 8);
  });
  return b;
}

test('a DT_RUNPATH of a startup object into a plain directory is refused (the host could shadow the library found later); an authenticated one is fine', async () => {
  const s = scratch();
  try {
    const program = (runpath: string): Transform => ({
      name: 'program',
      async apply(d: Draft) {
        d.addLayer(await d.buildLayer([
          fileItem('usr/lib64/ld-linux-x86-64.so.2', elf({ soname: 'ld-linux-x86-64.so.2' }), 0o755),
          fileItem('usr/lib/libx.so.1', elf({ soname: 'libx.so.1' })),
          fileItem('usr/bin/app', elf({ interp: '/usr/lib64/ld-linux-x86-64.so.2', needed: ['libx.so.1'], runpath }), 0o755),
        ], 'program'), { createdBy: 'program' });
        d.config.config = { ...d.config.config, Entrypoint: ['/usr/bin/app'], Cmd: [] };
      },
    });
    await assert.rejects(converted(s.dir, {}, [program('/var/lib/app:/usr/lib')]), (e: Error & { code?: string }) => e.code === 'GRAMINE_UNTRUSTED_CODE' && /DT_RUNPATH of \/usr\/bin\/app directory \/var\/lib\/app/.test(e.message));
    await assert.rejects(converted(s.dir, {}, [program('$ORIGIN/../../var/x')]), /DT_RUNPATH of \/usr\/bin\/app directory \/var\/x/);
    const ok = await converted(s.dir, {}, [program('/opt/lib:/usr/lib')]);
    await ok.dispose();
  } finally {
    s.done();
  }
});

/** bb-fixture + fileClassify + encryptFS + gramine(opts), in memory; disposed by the caller. */
async function converted(dir: string, opts: Partial<GramineOptions>, steps: Transform[] = [fileClassify({ dirs: ['/app/data'] }), encryptFS()], after: Transform[] = []) {
  const rt = standInRuntime(path.join(dir, `rt-${Math.random().toString(36).slice(2)}`));
  return pipeline(await openImage(`oci:${bbOci}:latest`), [...steps, injectRuntime(gramine({ runtimeDir: rt, ...opts } as GramineOptions)), ...after], { tmpDir: dir });
}

test('sigtermInjection sets sys.enable_sigterm_injection (allowed in production); harmless passthrough is allowed in production, code-loading passthrough is not', async () => {
  const s = scratch();
  try {
    const out = await converted(s.dir, { production: true, sigtermInjection: true, passthroughEnv: ['POD_NAME'] });
    try {
      const m = toml((await readImageFiles(out.image, [M])).get(M)!);
      assert.equal((m.sys as TomlTable).enable_sigterm_injection, true);
      assert.deepEqual(((m.loader as TomlTable).env as TomlTable).POD_NAME, { passthrough: true });
    } finally {
      await out.dispose();
    }
    const plain = await converted(s.dir, {});
    try {
      assert.equal(toml((await readImageFiles(plain.image, [M])).get(M)!).sys, undefined, 'off by default');
    } finally {
      await plain.dispose();
    }
    for (const name of ['PYTHONPATH', 'LD_PRELOAD', 'SECRET_PROVISION_CA_CHAIN_PATH']) {
      assert.throws(() => gramine({ runtimeDir: '/x', production: true, passthroughEnv: [name] }), (e: Error & { code?: string }) => e.code === 'GRAMINE_INSECURE_IN_PRODUCTION' && e.message.includes(name));
    }
    assert.throws(() => gramine({ runtimeDir: '/x', production: true, loader: 'direct' }), /gramine-direct/);
  } finally {
    s.done();
  }
});

test('CLI: --secret-provisioning needs --secret-provisioning-ca (an authenticated file of the image); --sigterm-injection', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'rt'));
    await assert.rejects(gramineTransformFromArgs(parseArgs(['--runtime-image', rt, '--secret-provisioning', 'kms:4433'], gramineConvertOptions)), /needs --secret-provisioning-ca/);
    await assert.rejects(gramineTransformFromArgs(parseArgs(['--runtime-image', rt, '--secret-provisioning-ca', '/etc/ca.pem'], gramineConvertOptions)), /goes with --secret-provisioning/);
    const src = await pipeline(await openImage(`oci:${bbOci}:latest`), [{
      name: 'ca', apply: async (d: Draft) => d.addLayer(await d.buildLayer([fileItem('etc/kms-ca.pem', 'CA')], 'ca'), { createdBy: 'ca' }),
    }], { tmpDir: s.dir });
    const step = await gramineTransformFromArgs(parseArgs(['--runtime-image', rt, '--secret-provisioning', 'kms:4433', '--secret-provisioning-ca', '/etc/kms-ca.pem', '--sigterm-injection', '--production'], gramineConvertOptions));
    const out = await pipeline(src.image, [fileClassify({ dirs: ['/app/data'] }), encryptFS(), step], { tmpDir: s.dir });
    try {
      const m = toml((await readImageFiles(out.image, [M])).get(M)!);
      const env = (m.loader as TomlTable).env as Record<string, string>;
      assert.equal(env.SECRET_PROVISION_CA_CHAIN_PATH, '/etc/kms-ca.pem');
      assert.equal(env.SECRET_PROVISION_SERVERS, 'kms:4433');
      assert.equal((m.sys as TomlTable).enable_sigterm_injection, true);
    } finally {
      await out.dispose();
      await src.dispose();
    }
  } finally {
    s.done();
  }
});

test('emitPolicy with --insecure-dev-keys says the keys are baked into the manifest, not that there are no encrypted files', async () => {
  const s = scratch();
  try {
    const out = await converted(s.dir, { insecureDevKeys: true, signKey: readFileSync(testKey) }, undefined, [emitPolicy()]);
    try {
      const warnings = (out.report.emitPolicy as { warnings: string[] }).warnings.join('\n');
      assert.match(warnings, /baked into the Gramine manifest/);
      assert.doesNotMatch(warnings, /no encrypted files/);
    } finally {
      await out.dispose();
    }
  } finally {
    s.done();
  }
});

/** Runs checkImageForSigning on an image with `manifest` (a change of the image's own manifest document). */
async function signingCheck(image: Awaited<ReturnType<typeof converted>>['image'], edit: (m: TomlTable) => void, expected?: string): Promise<SigningCheck> {
  let result: SigningCheck | undefined;
  const m = doc(new TextDecoder().decode((await readImageFiles(image, [M])).get(M)!));
  edit(m);
  const run = await pipeline(image, [{ name: 'check', apply: async (d: Draft) => void (result = await checkImageForSigning({ draft: d, manifest: m, protectionPath: '/.enclavify/protection.json', ...(expected ? { expectedProtectionSha256: expected } : {}) })) }]);
  await run.dispose();
  return result!;
}

test('sign check: a manifest that allows an authenticated file, drops an encrypted mount or changes its key is refused; the protection manifest digest is pinned when given', async () => {
  const s = scratch();
  try {
    const out = await converted(s.dir, {});
    try {
      const protection = out.state.get(PROTECTION) as Protection;
      const clean = await signingCheck(out.image, () => {});
      assert.deepEqual(clean.findings, []);
      assert.equal(clean.protectionChecked, true);
      assert.deepEqual((await signingCheck(out.image, () => {}, protection.manifestSha256)).findings, []);
      const codes = (c: SigningCheck) => c.findings.map((f) => `${f.path} ${f.code}`);
      // /bin/sh (busybox, through a symlink) becomes host-replaceable.
      const allowBin = await signingCheck(out.image, (m) => ((m.sgx as TomlTable).allowed_files as string[]).push('file:/bin/'));
      assert.ok(codes(allowBin).includes('/bin/busybox AUTHENTICATED_ALLOWED'), codes(allowBin).join('\n'));
      const dropped = await signingCheck(out.image, (m) => {
        const f = m.fs as TomlTable;
        f.mounts = (f.mounts as TomlTable[]).filter((x) => x.type !== 'encrypted');
      });
      assert.deepEqual(codes(dropped), ['/app/data REGION_NOT_MOUNTED']);
      const rekeyed = await signingCheck(out.image, (m) => {
        for (const x of (m.fs as TomlTable).mounts as TomlTable[]) if (x.type === 'encrypted') x.key_name = 'other';
      });
      assert.deepEqual(codes(rekeyed), ['/app/data REGION_KEY_MISMATCH']);
      const pinned = await signingCheck(out.image, () => {}, 'ab'.repeat(32));
      assert.deepEqual(codes(pinned), ['/.enclavify/protection.json MANIFEST_DIGEST']);
    } finally {
      await out.dispose();
    }
    // Without a protection manifest: the Gramine manifest's hashes against the image only.
    const bare = await converted(s.dir, {}, []);
    try {
      const c = await signingCheck(bare.image, (m) => {
        const t = ((m.sgx as TomlTable).trusted_files as TomlTable[]).find((x) => x.uri === 'file:/app/server.sh')!;
        t.sha256 = '00'.repeat(32);
      });
      assert.equal(c.protectionChecked, false);
      assert.deepEqual(c.findings.map((f) => `${f.path} ${f.code}`), ['/app/server.sh TRUSTED_HASH_MISMATCH']);
      assert.match(c.notes.join(), /no protection manifest/);
    } finally {
      await bare.dispose();
    }
  } finally {
    s.done();
  }
});

test('enclavify sign --manifest-sha256 (alias --protection-sha256) refuses a protection manifest rewritten along with the files', async () => {
  const s = scratch();
  try {
    const out = await converted(s.dir, {});
    const protection = out.state.get(PROTECTION) as Protection;
    // The attacker changes the app and rewrites both manifests to match.
    const EVIL = '#!/bin/sh\necho PWNED\n';
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(EVIL).digest('hex');
    const rewrite: Transform = {
      name: 'rewrite',
      async apply(d: Draft) {
        const view = await d.rootfs();
        const files = await view.readFiles(['.enclavify/protection.json', M.slice(1)]);
        const pm = JSON.parse(new TextDecoder().decode(files.get('.enclavify/protection.json')));
        for (const f of [...pm.files, ...(pm.amendments ?? []).flatMap((a: { files: unknown[] }) => a.files)] as Array<{ path: string; sha256?: string; size?: number }>) {
          if (f.path === '/app/server.sh') Object.assign(f, { sha256: sha, size: EVIL.length });
        }
        const gm = new TextDecoder().decode(files.get(M.slice(1))).replace(/(uri = "file:\/app\/server\.sh"\nsha256 = ")[0-9a-f]+/, `$1${sha}`);
        d.addLayer(await d.buildLayer([fileItem('app/server.sh', EVIL, 0o755), fileItem('.enclavify/protection.json', JSON.stringify(pm)), fileItem(M.slice(1), gm)], 'rewrite'), { createdBy: 'rewrite' });
      },
    };
    const tampered = await pipeline(out.image, [rewrite], { tmpDir: s.dir });
    await writeImage(tampered.image, `oci:${s.dir}/t:x`);
    await tampered.dispose();
    await out.dispose();
    const r = await runCli(['sign', `oci:${s.dir}/t:x`, '--sign-key', testKey, '--to', `oci:${s.dir}/t:signed`, '--protection-sha256', `sha256:${protection.manifestSha256}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /refusing to sign.*\n.*protection\.json: MANIFEST_DIGEST/);
    const bad = await runCli(['sign', `oci:${s.dir}/t:x`, '--sign-key', testKey, '--to', `oci:${s.dir}/t:signed`, '--protection-sha256', 'xyz']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--protection-sha256 needs 64 hex digits/);
    assert.match(r.stderr, /--protection-sha256 is deprecated: use --manifest-sha256/);
    // --manifest-sha256 is the same option (verify's name for the same digest)
    const same = await runCli(['sign', `oci:${s.dir}/t:x`, '--sign-key', testKey, '--to', `oci:${s.dir}/t:signed`, '--manifest-sha256', protection.manifestSha256]);
    assert.equal(same.code, 1, same.stderr);
    assert.match(same.stderr, /protection\.json: MANIFEST_DIGEST/);
    const both = await runCli(['sign', `oci:${s.dir}/t:x`, '--sign-key', testKey, '--to', `oci:${s.dir}/t:signed`, '--manifest-sha256', protection.manifestSha256, '--protection-sha256', '0'.repeat(64)]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /one option .* two different values/);
  } finally {
    s.done();
  }
});

test('enclavify sign and inspect warn about insecure settings (stderr, also with -q; "warnings" in --json); --production refuses to sign and makes inspect exit 3', async () => {
  const s = scratch();
  try {
    const out = await converted(s.dir, { manifestFragment: 'sgx.file_check_policy = "allow_all_but_log"\nsys.insecure__allow_eventfd = true\nloader.env.PYTHONPATH = { passthrough = true }\nloader.env.POD_NAME = { passthrough = true }\n', sigtermInjection: true });
    await writeImage(out.image, `oci:${s.dir}/w:x`);
    await out.dispose();
    const ref = `oci:${s.dir}/w:x`;
    const j = await runCli(['sign', ref, '--sign-key', testKey, '--to', `oci:${s.dir}/w:signed`, '--json', '-q']);
    assert.equal(j.code, 0, j.stderr);
    const facts = cliJson(j.stdout) as { warnings: string[] };
    for (const k of [/sgx\.file_check_policy/, /sys\.insecure__allow_eventfd/, /loader\.env\.PYTHONPATH/]) {
      assert.ok(facts.warnings.some((w) => k.test(w)), `${k} in ${facts.warnings.join('\n')}`);
      assert.match(j.stderr, new RegExp(`warning: ${k.source}`));
    }
    assert.ok(!facts.warnings.some((w) => /POD_NAME/.test(w)), 'a harmless passthrough is no warning');
    const prod = await runCli(['sign', ref, '--sign-key', testKey, '--to', `oci:${s.dir}/w:p`, '--production']);
    assert.equal(prod.code, 1);
    assert.match(prod.stderr, /for production: .*allow_all_but_log/);

    const i = await runCli(['inspect', `oci:${s.dir}/w:signed`, '--json']);
    assert.equal(i.code, 0, i.stderr);
    const g = cliJson(i.stdout).gramine as { warnings: string[]; hostEnv: string[]; sigtermInjection: boolean };
    assert.ok(g.warnings.some((w) => /allow_all_but_log/.test(w)));
    assert.deepEqual(g.hostEnv.sort(), ['POD_NAME', 'PYTHONPATH']);
    assert.equal(g.sigtermInjection, true);
    assert.match(i.stderr, /warning: sgx\.file_check_policy/);
    const text = await runCli(['inspect', `oci:${s.dir}/w:signed`]);
    assert.match(text.stdout, /Warning: +sgx\.file_check_policy = "allow_all_but_log"/);
    assert.match(text.stdout, /Host env: +PYTHONPATH, POD_NAME|Host env: +POD_NAME, PYTHONPATH/);
    assert.match(text.stdout, /SIGTERM: +passed to the program once/);
    assert.equal((await runCli(['inspect', `oci:${s.dir}/w:signed`, '--production', '-q'])).code, 3);
    // A clean image: no warnings, exit 0 with --production.
    const clean = await converted(s.dir, {});
    await writeImage(clean.image, `oci:${s.dir}/c:x`);
    await clean.dispose();
    const c = await runCli(['inspect', `oci:${s.dir}/c:x`, '--production', '--json']);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(cliJson(c.stdout).gramine.warnings, []);
  } finally {
    s.done();
  }
});

test('a gramine-direct image is flagged by inspect and sign', async () => {
  const s = scratch();
  try {
    const out = await converted(s.dir, { loader: 'direct' });
    await writeImage(out.image, `oci:${s.dir}/d:x`);
    await out.dispose();
    const i = await runCli(['inspect', `oci:${s.dir}/d:x`, '--production', '--json']);
    assert.equal(i.code, 3);
    assert.match(cliJson(i.stdout).gramine.warnings.join(), /gramine-direct/);
    const sg = await runCli(['sign', `oci:${s.dir}/d:x`, '--sign-key', testKey, '--to', `oci:${s.dir}/d:s`, '--production']);
    assert.equal(sg.code, 1);
    assert.match(sg.stderr, /gramine-direct/);
  } finally {
    s.done();
  }
});
