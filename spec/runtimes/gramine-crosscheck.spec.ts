/**
 * Regressions found by running converted images under a real Gramine 1.9 (gramine-direct in a
 * chroot, Gramine's signer and tools). These tests need no Gramine: they rebuild the shape of the
 * real installation that exposed each problem.
 *
 * - Gramine's Debian layout keeps the secret-provisioning and mbedTLS libraries in the library
 *   directory and links them from `gramine/runtime/glibc/` as `../../../lib*.so`: the runtime
 *   copied only the gramine directory, so the links dangled in the image and secret provisioning
 *   was refused ("needs .../libsecret_prov_attest.so in the runtime").
 * - Gramine 1.9's `libsecret_prov_attest.so` constructor exits at start without
 *   `SECRET_PROVISION_CA_CHAIN_PATH`: an image converted without a CA chain could never start.
 * - The SGX host loader's libraries that the runtime source lacks (glibc, usually) were reported
 *   as missing from the image even when the image has them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TomlTable } from 'smol-toml';
import { openImage, pipeline, writeImage } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { gramine, type GramineOptions } from '../../lib/runtimes/gramine/index.js';
import { bbOci, scratch } from '../helpers/images.js';
import { dirItem, fileItem, GLIBC, linkItem, readImageFiles, rootfsOf, standInPal, standInRuntime, toml, trustedMap, writeItemsImage } from './gramine-helpers.js';
import { hostLibs } from '../helpers/host.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const BASE = '/gramine/app/entrypoint';
const LIB = 'usr/lib/x86_64-linux-gnu';

/** Adds Gramine's real library layout to a stand-in runtime: files in the library dir, `../../../` links from runtime/glibc. */
function debianLibraryLinks(rt: string): Record<string, string> {
  const contents: Record<string, string> = {
    'libsecret_prov_attest.so': 'stand-in secret provisioning (real location)\n',
    'libmbedtls_gramine.so.21': 'stand-in mbedtls\n',
  };
  for (const [name, text] of Object.entries(contents)) writeFileSync(path.join(rt, LIB, name), text, { mode: 0o755 });
  symlinkSync('libmbedtls_gramine.so.21', path.join(rt, LIB, 'libmbedtls_gramine.so')); // a chain: glibc/x -> ../../../x -> x.21
  const glibc = path.join(rt, GLIBC);
  execFileSync('rm', ['-f', path.join(glibc, 'libsecret_prov_attest.so')]);
  for (const name of ['libsecret_prov_attest.so', 'libmbedtls_gramine.so', 'libmbedtls_gramine.so.21']) symlinkSync(`../../../${name}`, path.join(glibc, name));
  symlinkSync('../../../not-installed.so', path.join(glibc, 'libdangling.so')); // stays as it is
  symlinkSync('../../..', path.join(glibc, 'libdir')); // directories are not followed
  return contents;
}

async function convertWith(dir: string, rt: string, src: string, opts: Partial<GramineOptions>, tag: string) {
  const out = await pipeline(await openImage(src), [injectRuntime(gramine({ runtimeDir: rt, ...opts } as GramineOptions))], { tmpDir: dir, created: new Date('2026-01-01T00:00:00Z') });
  const ref = `oci:${dir}/out:${tag}`;
  try {
    await writeImage(out.image, ref);
  } finally {
    await out.dispose();
  }
  const image = await openImage(ref);
  const doc = toml(new TextDecoder().decode((await readImageFiles(image, [`${BASE}.manifest`])).get(`${BASE}.manifest`)));
  return { ref, image, doc, report: out.report['injectRuntime(gramine)'] as Record<string, unknown> };
}

/** A glibc-style image (an ELF program with PT_INTERP is not needed: the stand-in PAL is a static ELF) with a CA file. */
async function appImage(dir: string, extra: Array<ReturnType<typeof fileItem> | ReturnType<typeof dirItem>> = []): Promise<string> {
  const elf = readFileSync(standInPal);
  return writeItemsImage(path.join(dir, 'src'), 'app', [
    dirItem('app'), fileItem('app/prog', elf, 0o755), dirItem('etc'), fileItem('etc/kms-ca.pem', '-----BEGIN CERTIFICATE-----\n'),
    dirItem('usr'), dirItem('usr/lib'), dirItem(LIB), ...extra,
  ], { Entrypoint: ['/app/prog'] }, dir);
}

test('runtime/glibc links to ../../../ (Gramine\'s Debian layout) resolve in the image: targets copied, trusted under the glibc path; secret provisioning accepted', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const contents = debianLibraryLinks(rt);
    const src = await appImage(s.dir);
    const c = await convertWith(s.dir, rt, src, { secretProvisioning: { servers: 'kms:4433', caChainPath: '/etc/kms-ca.pem' }, runtimeGlibc: true }, 'sp');
    const fs = await rootfsOf(c.image);
    // The link targets are in the image at their own paths; the chain stays a chain.
    assert.equal(fs.get(`${LIB}/libsecret_prov_attest.so`)?.type, 'file');
    assert.equal(fs.get(`${LIB}/libmbedtls_gramine.so`)?.type, 'symlink');
    assert.equal(fs.get(`${LIB}/libmbedtls_gramine.so.21`)?.type, 'file');
    assert.equal(fs.get(`${GLIBC}/libsecret_prov_attest.so`)?.linkname, '../../../libsecret_prov_attest.so');
    assert.equal(fs.stat(`/${GLIBC}/libsecret_prov_attest.so`)?.type, 'file', 'the glibc link resolves in the image');
    // What was not a file (a dangling link, a link to a directory) is left alone: nothing else copied.
    assert.deepEqual(c.report.linkedFiles, [`/${LIB}/libmbedtls_gramine.so`, `/${LIB}/libmbedtls_gramine.so.21`, `/${LIB}/libsecret_prov_attest.so`]);
    assert.equal(fs.get(`${LIB}/not-installed.so`), undefined);
    // Gramine opens the preload through runtime/glibc: that path is trusted with the target's hash (so are the other paths of the file).
    const t = trustedMap(c.doc);
    assert.equal(t.get(`file:/${GLIBC}/libsecret_prov_attest.so`), sha(contents['libsecret_prov_attest.so']));
    assert.equal(t.get(`file:/${GLIBC}/libmbedtls_gramine.so`), sha(contents['libmbedtls_gramine.so.21']));
    assert.equal(t.get(`file:/${LIB}/libsecret_prov_attest.so`), sha(contents['libsecret_prov_attest.so']));
    assert.equal(t.get('file:/etc/kms-ca.pem'), sha('-----BEGIN CERTIFICATE-----\n'));
    const env = (c.doc.loader as TomlTable).env as Record<string, string>;
    assert.equal(env.LD_PRELOAD, `/${GLIBC}/libsecret_prov_attest.so`);
    assert.equal(env.SECRET_PROVISION_CA_CHAIN_PATH, '/etc/kms-ca.pem');
  } finally {
    s.done();
  }
});

test('secret provisioning without a CA chain is refused (Gramine 1.9 exits at start without it); a CA chain that is not an authenticated file too', async () => {
  const s = scratch();
  try {
    assert.throws(() => gramine({ runtimeDir: '/nonexistent', secretProvisioning: { servers: 'kms:4433' } }), (e: Error & { code?: string }) => e.code === 'GRAMINE_BAD_OPTIONS' && /SECRET_PROVISION_CA_CHAIN_PATH/.test(e.message));
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const src = await appImage(s.dir, [dirItem('var'), fileItem('var/ca.pem', 'CA')]);
    for (const ca of ['/etc/missing.pem', '/var/ca.pem']) {
      await assert.rejects(convertWith(s.dir, rt, src, { secretProvisioning: { servers: 'kms:4433', caChainPath: ca } }, 'bad'),
        (e: Error & { code?: string }) => e.code === 'GRAMINE_BAD_OPTIONS' && e.message.includes(ca) && /not an authenticated file/.test(e.message));
    }
  } finally {
    s.done();
  }
});

const openssl = existsSync('/usr/bin/openssl') && existsSync('/lib64/ld-linux-x86-64.so.2') ? hostLibs('/usr/bin/openssl') : undefined;

test('the SGX host loader\'s libraries that only the image has (glibc) are not reported missing; those neither has are reported once each', { skip: openssl ? false : 'needs a glibc /usr/bin/openssl and ldd on the host' }, async () => {
  const s = scratch();
  try {
    // A runtime whose "SGX loader" is a real dynamic program, shipped with its own libraries but not glibc (like a DESTDIR install).
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    execFileSync('cp', [realpathSync('/usr/bin/openssl'), path.join(rt, LIB, 'gramine/sgx/loader')]);
    const glibcNames = new Set(['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2']);
    const own = openssl!.filter((l) => !glibcNames.has(l.name));
    const glibc = openssl!.filter((l) => glibcNames.has(l.name));
    assert.ok(glibc.some((l) => l.name === 'libc.so.6'));
    for (const l of own) execFileSync('cp', [l.file, path.join(rt, LIB, l.name)]);
    // The image has glibc (and its loader at PT_INTERP through merged /usr), but not the loader's other libraries.
    const ld = readFileSync(realpathSync('/lib64/ld-linux-x86-64.so.2'));
    const withGlibc = await appImage(s.dir, [
      fileItem(`${LIB}/ld-linux-x86-64.so.2`, ld, 0o755), dirItem('usr/lib64'), linkItem('lib64', 'usr/lib64'),
      linkItem('usr/lib64/ld-linux-x86-64.so.2', `/${LIB}/ld-linux-x86-64.so.2`),
      ...glibc.map((l) => fileItem(`${LIB}/${l.name}`, readFileSync(l.file), 0o755)),
    ]);
    const c = await convertWith(s.dir, rt, withGlibc, {}, 'glibc');
    const warnings = (c.report.warnings as string[]).join('\n');
    assert.doesNotMatch(warnings, /SGX host loader needs/, warnings);
    assert.deepEqual((c.report.hostLibraries as string[]).sort(), own.map((l) => `/${LIB}/${l.name}`).sort());
    // bb-fixture (static busybox) has no glibc at all: reported, each name once.
    const bb = await convertWith(s.dir, rt, `oci:${bbOci}:latest`, {}, 'bb');
    const w = (bb.report.warnings as string[]).find((x) => /SGX host loader needs/.test(x));
    assert.ok(w, 'a warning for what neither has');
    const named = w!.replace(/^.*needs (.*), which neither.*$/s, '$1').split(', ');
    assert.deepEqual(named, [...new Set(named)], w);
    assert.ok(named.includes('libc.so.6') && named.includes('ld-linux-x86-64.so.2'), w);
  } finally {
    s.done();
  }
});

test('a runtime directory kept self-contained: no link under the copied paths points outside the layer unless its target is missing or a directory', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    mkdirSync(path.join(rt, 'opt'), { recursive: true });
    writeFileSync(path.join(rt, 'opt', 'tool'), 'tool\n');
    symlinkSync('/opt/tool', path.join(rt, LIB, 'gramine', 'abs-tool')); // absolute target, inside the source root
    const c = await convertWith(s.dir, rt, await appImage(s.dir), {}, 'abs');
    assert.deepEqual(c.report.linkedFiles, ['/opt/tool']);
    const fs = await rootfsOf(c.image);
    assert.equal(fs.stat(`/${LIB}/gramine/abs-tool`)?.type, 'file');
  } finally {
    s.done();
  }
});

test('the manifest pins the LibOS hash (loader.entrypoint.sha256), so gramine-sgx-sign --chroot works on it without Gramine on the host; a fragment with another LibOS drops it', async () => {
  const s = scratch();
  try {
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const src = await appImage(s.dir, [fileItem('app/libos.so', 'another LibOS\n', 0o755)]);
    const c = await convertWith(s.dir, rt, src, {}, 'ep');
    const ep = (c.doc.loader as TomlTable).entrypoint as TomlTable;
    assert.deepEqual(ep, { uri: `file:/${LIB}/gramine/libsysdb.so`, sha256: sha(readFileSync(path.join(rt, LIB, 'gramine/libsysdb.so'))) });
    const f = await convertWith(s.dir, rt, src, { manifestFragment: '[loader.entrypoint]\nuri = "file:/app/libos.so"\n' }, 'ep2');
    assert.deepEqual((f.doc.loader as TomlTable).entrypoint, { uri: 'file:/app/libos.so' });
  } finally {
    s.done();
  }
});
