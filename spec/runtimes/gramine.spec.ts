/**
 * injectRuntime(gramine(...)) against bb-fixture and a merged-/usr image made of host binaries,
 * with a stand-in Gramine installation (CI has no Gramine). What is checked independently of our
 * code: the trusted-file list against what the kernel reaches inside a chroot of the image as
 * umoci unpacks it; the signature with the SIGSTRUCT verifier and a fresh measurement of the bytes
 * in the image; the manifest with smol-toml and Gramine 1.9's key schema; the Entrypoint by
 * running it in a chroot (busybox sh, stand-in loaders that print their arguments).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { TomlTable } from 'smol-toml';
import { openImage, pipeline, writeImage, type PipelineResult, type Transform } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { PROTECTION, RUNTIME, type Protection, type RuntimeInfo } from '../../lib/transforms/state.js';
import { verify } from '../../lib/protect/verify.js';
import { checkGramineManifest, gramine, type GramineOptions } from '../../lib/runtimes/gramine/index.js';
import { allowedCovers } from '../../lib/runtimes/gramine/files.js';
import { measureGramineEnclave, parseSigstruct, verifySigstructSignature } from '../../lib/sgx/index.js';
import { bbOci, scratch, umociUnpack } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';
import { hostLibs } from '../helpers/host.js';
import {
  dirItem, fileItem, GLIBC, kernelReachable, linkItem, readImageFiles, rootfsOf, signDir, standInRuntime, testKey, toml, trustedMap, writeItemsImage,
} from './gramine-helpers.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const key = readFileSync(testKey);
const BASE = '/gramine/app/entrypoint';
const expectedMrsigner = (JSON.parse(readFileSync(path.join(signDir, 'case1-debug.expected.json'), 'utf8')) as { mr_signer: string }).mr_signer;

interface Converted {
  ref: string;
  doc: TomlTable;
  manifestText: string;
  state: PipelineResult['state'];
  report: Record<string, unknown>;
}

/** Converts `src` with `steps` + injectRuntime(gramine(opts)), writes it to `oci:<dir>/out:<tag>` and reads the manifest back. */
async function convert(dir: string, src: string, opts: Partial<GramineOptions>, tag = 'out', steps: Transform[] = []): Promise<Converted> {
  const rt = path.join(dir, 'runtime');
  if (!existsSync(rt)) standInRuntime(rt);
  const out = await pipeline(await openImage(src), [...steps, injectRuntime(gramine({ runtimeDir: rt, ...opts } as GramineOptions))], { tmpDir: dir, created: new Date('2026-01-01T00:00:00Z') });
  const ref = `oci:${dir}/out:${tag}`;
  try {
    await writeImage(out.image, ref);
  } finally {
    await out.dispose();
  }
  const image = await openImage(ref);
  const files = await readImageFiles(image, [`${BASE}.manifest`]);
  const manifestText = new TextDecoder().decode(files.get(`${BASE}.manifest`));
  return { ref, doc: toml(manifestText), manifestText, state: out.state, report: out.report };
}

const trustedUris = (doc: TomlTable) => [...trustedMap(doc).keys()];
const allowedOf = (doc: TomlTable) => ((doc.sgx as TomlTable).allowed_files ?? []) as string[];
/** Host-side Gramine files (also reached through merged-/usr's /lib and /bin): not needed in the enclave. */
const isRuntimeHostFile = (p: string) => /^(\/usr)?\/lib\/x86_64-linux-gnu\/gramine\/(?!runtime\/glibc\/)/.test(p) || /^(\/usr)?\/bin\/gramine-/.test(p);

/** No allowed entry may cover a trusted path (Gramine checks allowed files first). */
function assertNoAllowedOverTrusted(doc: TomlTable): void {
  for (const a of allowedOf(doc)) {
    for (const t of trustedUris(doc)) assert.ok(!allowedCovers(a.slice(5), t.slice(5)), `${a} covers trusted ${t}`);
  }
}

test('bb-fixture: manifest parses, uses only Gramine 1.9 keys, runs the #! script through busybox sh; Entrypoint and Cmd rewired', async () => {
  const s = scratch();
  try {
    const c = await convert(s.dir, `oci:${bbOci}:latest`, {});
    assert.deepEqual(checkGramineManifest(toml(c.manifestText)), []);
    const libos = c.doc.libos as TomlTable, loader = c.doc.loader as TomlTable, fs = c.doc.fs as TomlTable, sgx = c.doc.sgx as TomlTable;
    assert.equal(libos.entrypoint, '/bin/busybox'); // /bin/sh -> busybox, followed
    assert.deepEqual(loader.argv, ['/bin/sh', '/app/server.sh']); // as the kernel runs a #! script
    // The LibOS hash is in the manifest, so Gramine's own signer need not hash the URI on the host.
    assert.deepEqual(loader.entrypoint, { uri: 'file:/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so', sha256: sha('stand-in LibOS\n') });
    assert.equal((loader.env as TomlTable).APP_MODE, 'production');
    assert.equal((loader.env as TomlTable).PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    assert.equal(fs.start_dir, '/app');
    assert.deepEqual(fs.root, { type: 'chroot', uri: 'file:/' });
    assert.deepEqual(fs.mounts, [{ type: 'tmpfs', path: '/tmp' }]);
    assert.equal(fs.insecure__keys, undefined);
    assert.equal(sgx.debug, false);
    assert.equal(sgx.remote_attestation, 'none');
    // A static busybox: no runtime glibc in LD_LIBRARY_PATH.
    assert.equal((loader.env as TomlTable).LD_LIBRARY_PATH, undefined);

    const image = await openImage(c.ref);
    const cfg = await image.config();
    assert.deepEqual(cfg.config!.Entrypoint, ['/gramine/app/launch', '/usr/bin/gramine-sgx', BASE]);
    assert.equal(cfg.config!.Cmd, undefined);
    assert.equal(cfg.config!.Labels!['enclavify.runtime'], 'gramine');
    assert.equal(cfg.config!.Labels!['enclavify.gramine.manifest'], `${BASE}.manifest`);
    const ours = cfg.history!.filter((h) => h.created_by?.startsWith('enclavify injectRuntime(gramine)'));
    assert.equal(ours.length, 3);
    assert.equal(ours.filter((h) => h.empty_layer).length, 1);
    assert.match(ours[2].created_by!, /ENTRYPOINT .* \(was \["\/app\/server.sh"\]\), CMD cleared/);
    assert.equal((await image.layers()).length, 5); // 3 + runtime + manifest
    const info = c.state.get(RUNTIME) as RuntimeInfo;
    assert.equal(info.runtime, 'gramine');
    assert.equal(info.manifestPath, `${BASE}.manifest`);
    assert.equal(info.mrenclave, undefined); // not signed
    assert.match(JSON.stringify(c.report), /gramine-sgx needs/);
  } finally {
    s.done();
  }
});

test('bb-fixture: every authenticated file is trusted with its hash under every path the kernel reaches it by (chroot walk of the umoci-unpacked image)', { skip: tool('umoci').skip }, async () => {
  const s = scratch();
  try {
    const c = await convert(s.dir, `oci:${bbOci}:latest`, {});
    const trusted = trustedMap(c.doc);
    // Spot checks that need no tool: symlinked applets and the hard link carry the target's hash.
    const busybox = '3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6';
    for (const a of ['sh', 'cat', 'env', 'ls', 'busybox']) assert.equal(trusted.get(`file:/bin/${a}`), busybox);
    assert.equal(trusted.get('file:/app/setuid-tool'), busybox);
    assert.equal(trusted.get('file:/app/static/index-hardlink.html'), trusted.get('file:/app/static/index.html'));
    assert.equal(trusted.get('file:/app/static/secret-link'), 'a81d87fcee567c9365a5354ae95ca03a661bb4e7a2d4acc9a10fda6af1886bb9');
    assert.equal(trusted.get(`file:/${GLIBC}/libc.so`), trusted.get(`file:/${GLIBC}/libc.so.6`)); // runtime glibc is trusted, symlinks too
    assert.ok(!trustedUris(c.doc).some((u) => isRuntimeHostFile(u.slice(5))), 'host-side runtime files are not trusted');
    assert.ok(!trustedUris(c.doc).some((u) => /^file:\/(var|tmp|dev|proc|sys|gramine\/app)\//.test(u)));
    assert.ok(allowedOf(c.doc).includes('file:/var/'));
    assertNoAllowedOverTrusted(c.doc);

    const rootfs = umociUnpack(c.ref.slice(4), path.join(s.dir, 'bundle'));
    const kernel = kernelReachable(rootfs, ['/dev', '/proc', '/sys', '/boot', '/tmp', '/var', '/run', '/gramine/app']);
    if (!kernel) {
      assert.ok(process.getuid?.() !== 0 || !existsSync('/usr/bin/python3'), 'the chroot walk failed although root and python3 are there');
      return; // needs root and python3
    }
    const expected = new Map([...kernel].filter(([p]) => !isRuntimeHostFile(p)).map(([p, h]) => [`file:${p}`, h]));
    assert.deepEqual(new Map([...trusted].sort()), new Map([...expected].sort()));
  } finally {
    s.done();
  }
});

test('signed bb-fixture: SIGSTRUCT verifies and its MRENCLAVE is the measurement of the .manifest.sgx and libpal.so in the image; umoci unpacks it', { skip: tool('umoci').skip }, async () => {
  const s = scratch();
  try {
    const c = await convert(s.dir, `oci:${bbOci}:latest`, { signKey: key, signDate: '2026-01-01' });
    const image = await openImage(c.ref);
    const files = await readImageFiles(image, [`${BASE}.manifest.sgx`, `${BASE}.sig`, '/usr/lib/x86_64-linux-gnu/gramine/sgx/libpal.so', '/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so']);
    const sig = files.get(`${BASE}.sig`)!;
    assert.equal(sig.length, 1808);
    assert.ok(verifySigstructSignature(sig));
    const st = parseSigstruct(sig);
    const measured = measureGramineEnclave({ manifestSgx: files.get(`${BASE}.manifest.sgx`)!, pal: files.get('/usr/lib/x86_64-linux-gnu/gramine/sgx/libpal.so')! });
    assert.equal(st.mrenclave, measured.mrenclave);
    assert.equal(st.mrsigner, expectedMrsigner);
    assert.equal(st.date, '2026-01-01');
    assert.equal(st.debug, false);
    // The signed manifest is the generated one plus what the signer adds.
    const sgxDoc = toml(files.get(`${BASE}.manifest.sgx`)!);
    assert.deepEqual(trustedMap(sgxDoc), trustedMap(c.doc));
    assert.equal(((sgxDoc.loader as TomlTable).entrypoint as TomlTable).sha256, sha(files.get('/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so')!));
    assert.deepEqual((sgxDoc.loader as TomlTable).argv, (c.doc.loader as TomlTable).argv);
    const info = c.state.get(RUNTIME) as RuntimeInfo;
    assert.deepEqual(info.mrenclave, [st.mrenclave]);
    assert.equal(info.mrsigner, st.mrsigner);
    const rootfs = umociUnpack(c.ref.slice(4), path.join(s.dir, 'bundle'));
    assert.equal(sha(readFileSync(path.join(rootfs, 'gramine/app/entrypoint.sig'))), sha(sig));
  } finally {
    s.done();
  }
});

test('the Entrypoint runs in a chroot of the unpacked image: gramine-sgx by default, gramine-direct by name or ENCLAVIFY_GRAMINE_LOADER; unsigned images refuse SGX', { skip: tool('umoci').skip || (process.getuid?.() !== 0 ? 'needs root for chroot' : false) }, async () => {
  const s = scratch();
  try {
    const unsigned = await convert(s.dir, `oci:${bbOci}:latest`, {}, 'unsigned');
    const signed = await convert(s.dir, `oci:${bbOci}:latest`, { signKey: key }, 'signed');
    const run = (ref: string, bundle: string, argv: string[], env: Record<string, string> = {}) => {
      const rootfs = path.join(s.dir, bundle, 'rootfs');
      if (!existsSync(rootfs)) umociUnpack(ref.slice(4), path.join(s.dir, bundle));
      const r = spawnSync('chroot', [rootfs, ...argv], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
      if (r.error) throw r.error;
      return r;
    };
    const ep = (await (await openImage(signed.ref)).config()).config!.Entrypoint!;
    const pal = (m: string) => `/usr/lib/x86_64-linux-gnu/gramine/${m}/libpal.so init ${BASE}`;
    let r = run(signed.ref, 'b1', ep);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `stand-in sgx loader: ${pal('sgx')}`);
    // The SGX loader name swapped for the direct one, as a developer (or a checker) would do.
    r = run(signed.ref, 'b1', ep.map((a) => a.replace('gramine-sgx', 'gramine-direct')));
    assert.equal(r.stdout.trim(), `stand-in direct loader: ${pal('direct')}`);
    assert.match(r.stderr, /WITHOUT SGX/);
    r = run(signed.ref, 'b1', ep, { ENCLAVIFY_GRAMINE_LOADER: 'direct' });
    assert.equal(r.stdout.trim(), `stand-in direct loader: ${pal('direct')}`);
    r = run(signed.ref, 'b1', ep, { ENCLAVIFY_GRAMINE_LOADER: 'nonsense' });
    assert.equal(r.status, 2);
    // Unsigned: SGX is refused with a plain message; direct works.
    r = run(unsigned.ref, 'b2', ep);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not signed: gramine-sgx needs \/gramine\/app\/entrypoint.manifest.sgx/);
    assert.equal(r.stdout, '');
    r = run(unsigned.ref, 'b2', ep, { ENCLAVIFY_GRAMINE_LOADER: 'direct' });
    assert.equal(r.stdout.trim(), `stand-in direct loader: ${pal('direct')}`);
  } finally {
    s.done();
  }
});

test('with fileClassify + encryptFS: one encrypted mount per region with its key name, nothing trusted inside it or through a symlink into it; dev keys only on request', async () => {
  const s = scratch();
  try {
    const steps = () => [fileClassify({ dirs: ['/app/data'], plainFiles: ['/app/static/index.html'] }), encryptFS()];
    const c = await convert(s.dir, `oci:${bbOci}:latest`, {}, 'prod', steps());
    const fs = c.doc.fs as TomlTable;
    const protection = c.state.get(PROTECTION) as Protection;
    const region = protection.keys[0];
    assert.deepEqual(fs.mounts, [
      { type: 'encrypted', path: '/app/data', uri: 'file:/app/data', key_name: region.name },
      { type: 'tmpfs', path: '/tmp' },
    ]);
    assert.equal(fs.insecure__keys, undefined);
    assert.equal((c.doc.sgx as TomlTable).remote_attestation, 'dcap'); // keys come after attestation
    const uris = trustedUris(c.doc);
    assert.ok(!uris.some((u) => u.startsWith('file:/app/data/')));
    assert.ok(!uris.includes('file:/app/static/secret-link'), 'a symlink into the encrypted region is not trusted');
    assert.ok(!uris.includes('file:/app/static/index.html'));
    assert.ok(allowedOf(c.doc).includes('file:/app/static/index.html'));
    assert.ok(uris.includes('file:/app/static/index-hardlink.html'));
    // The protection manifest is refreshed after the runtime (it records the runtime's files), so
    // the enclave does not pin it; verify accepts the whole converted image against it.
    assert.ok(!uris.includes('file:/.enclavify/protection.json'));
    const keys = Object.fromEntries(protection.keys.map((k) => [k.name, k.keyHex]));
    const v = await verify(await openImage(c.ref), { keys });
    assert.deepEqual(v.findings, []);
    assert.equal(v.manifestSha256, protection.manifestSha256);
    assert.ok(!c.manifestText.includes(region.keyHex), 'no key in a production manifest');
    assert.deepEqual((c.state.get(RUNTIME) as RuntimeInfo).keyNames, [region.name]);
    assert.equal((await (await openImage(c.ref)).config()).config!.Labels!['enclavify.protection.manifest'], '/.enclavify/protection.json');
    assertNoAllowedOverTrusted(c.doc);

    const dev = await convert(s.dir, `oci:${bbOci}:latest`, { insecureDevKeys: true }, 'dev', steps());
    const devKeys = (dev.state.get(PROTECTION) as Protection).keys;
    assert.deepEqual((dev.doc.fs as TomlTable).insecure__keys, { [devKeys[0].name]: devKeys[0].keyHex });
    assert.equal((dev.doc.sgx as TomlTable).remote_attestation, 'none');
    assert.deepEqual((dev.state.get(RUNTIME) as RuntimeInfo).keyNames, []);
    assert.match(JSON.stringify(dev.report), /INSECURE DEVELOPMENT KEYS/);
  } finally {
    s.done();
  }
});

test('an authenticated file inside a plain directory keeps its hash check: the directory is allowed file by file', async () => {
  const s = scratch();
  try {
    const steps = [fileClassify({ plain: ['/app/static'], authenticated: ['/app/static/index.html'] })];
    const c = await convert(s.dir, `oci:${bbOci}:latest`, {}, 'x', steps);
    assert.ok(trustedUris(c.doc).includes('file:/app/static/index.html'));
    const allowed = allowedOf(c.doc);
    assert.ok(!allowed.includes('file:/app/static/'), 'the plain directory is not allowed wholesale');
    assert.ok(allowed.includes('file:/app/static/index-hardlink.html'));
    assert.ok(allowed.includes('file:/app/static/a-very-long-directory-name-that-pushes-the-path-well-beyond-one-hundred-characters/'));
    assertNoAllowedOverTrusted(c.doc);
    // A fragment that would allow the authenticated file is refused.
    await assert.rejects(convert(s.dir, `oci:${bbOci}:latest`, { manifestFragment: 'sgx.allowed_files = ["file:/app/"]' }, 'y', steps), (e: Error & { code?: string }) => e.code === 'GRAMINE_BAD_MANIFEST' && /covers trusted file/.test(e.message));
  } finally {
    s.done();
  }
});

test('options: enclave settings, fragment merged last, passthrough env, prefix; insecure keys and debug refused in production; unknown fragment keys refused', async () => {
  const s = scratch();
  try {
    const c = await convert(s.dir, `oci:${bbOci}:latest`, {
      enclaveSize: '4G', maxThreads: 8, debug: true, edmm: true, remoteAttestation: 'dcap', isvProdId: 7, isvSvn: 3,
      passthroughEnv: ['POD_NAME'], prefix: '/gramine', loader: 'direct',
      manifestFragment: 'loader.log_level = "warning"\nsys.enable_sigterm_injection = true\nfs.mounts = [ { type = "tmpfs", path = "/scratch" } ]\n[loader.env]\nEXTRA = "1"\n',
    });
    const sgx = c.doc.sgx as TomlTable, loader = c.doc.loader as TomlTable;
    assert.equal(sgx.enclave_size, '4G');
    assert.equal(sgx.max_threads, 8);
    assert.equal(sgx.debug, true);
    assert.equal(sgx.edmm_enable, true);
    assert.equal(sgx.isvprodid, 7);
    assert.equal(sgx.isvsvn, 3);
    assert.equal(loader.log_level, 'warning');
    assert.deepEqual((loader.env as TomlTable).POD_NAME, { passthrough: true });
    assert.equal((loader.env as TomlTable).EXTRA, '1');
    assert.equal((loader.env as TomlTable).APP_MODE, 'production');
    assert.deepEqual(((c.doc.fs as TomlTable).mounts as TomlTable[]).map((m) => m.path), ['/tmp', '/scratch']);
    assert.equal(((c.doc.sys as TomlTable).enable_sigterm_injection), true);
    assert.deepEqual(loader.entrypoint, { uri: 'file:/gramine/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so', sha256: sha('stand-in LibOS\n') });
    assert.ok(trustedUris(c.doc).includes(`file:/gramine/${GLIBC}/libc.so.6`));
    const image = await openImage(c.ref);
    assert.deepEqual((await image.config()).config!.Entrypoint, ['/gramine/app/launch', '/gramine/usr/bin/gramine-direct', BASE]);
    const fs = await rootfsOf(image);
    assert.equal(fs.get('usr/lib/x86_64-linux-gnu/gramine'), undefined);
    assert.equal(fs.get('gramine/usr/lib/x86_64-linux-gnu/gramine/direct/loader')?.linkname, 'libpal.so');
    assert.equal(fs.get('gramine/usr/share'), undefined, 'only the Gramine paths are copied');
    const launch = new TextDecoder().decode((await fs.readFiles(['gramine/app/launch'])).get('gramine/app/launch'));
    assert.match(launch, /exec '\/gramine\/usr\/lib\/x86_64-linux-gnu\/gramine\/direct\/loader' '\/gramine\/usr\/lib\/x86_64-linux-gnu\/gramine\/direct\/libpal.so' init "\$app"/);

    assert.throws(() => gramine({ runtimeDir: '/x', insecureDevKeys: true, production: true }), /refused in a production build/);
    assert.throws(() => gramine({ runtimeDir: '/x', debug: true, production: true }), /refused in a production build/);
    assert.throws(() => gramine({ runtimeDir: '/x', runtimeImage: 'oci:/y' }), /exactly one of runtimeImage and runtimeDir/);
    await assert.rejects(convert(s.dir, `oci:${bbOci}:latest`, { production: true, manifestFragment: 'loader.insecure__use_cmdline_argv = true' }, 'p'), /production/);
    await assert.rejects(convert(s.dir, `oci:${bbOci}:latest`, { manifestFragment: 'sgx.enclave_sise = "1G"\nloader.log_level = "loud"' }, 'q'), (e: Error) => /sgx.enclave_sise is not a Gramine 1.9 manifest key/.test(e.message) && /loader.log_level must be one of/.test(e.message));
    await assert.rejects(convert(s.dir, `oci:${bbOci}:latest`, { manifestFragment: 'sgx.debug = ' }, 'r'), /invalid TOML at line 1/);
  } finally {
    s.done();
  }
});

test('runtime from an image gives the same runtime files as from a directory; missing runtime files and bad keys fail clearly', async () => {
  const s = scratch();
  try {
    const rtDir = standInRuntime(path.join(s.dir, 'runtime'));
    // The same installation as a one-layer image (entries from the directory).
    const items: Array<ReturnType<typeof fileItem> | ReturnType<typeof dirItem> | ReturnType<typeof linkItem>> = [];
    const walk = (rel: string) => {
      for (const name of execFileSync('ls', ['-A', path.join(rtDir, rel)], { encoding: 'utf8' }).split('\n').filter(Boolean).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const p = path.join(rtDir, r);
        const st = execFileSync('stat', ['-c', '%F %a', p], { encoding: 'utf8' }).trim();
        if (st.startsWith('directory')) {
          items.push(dirItem(r));
          walk(r);
        } else if (st.startsWith('symbolic link')) items.push(linkItem(r, execFileSync('readlink', [p], { encoding: 'utf8' }).trim()));
        else items.push(fileItem(r, readFileSync(p), parseInt(st.split(' ').pop()!, 8)));
      }
    };
    walk('');
    const rtRef = await writeItemsImage(path.join(s.dir, 'rtimg'), 'gramine', items, {}, s.dir);
    const fromDir = await convert(s.dir, `oci:${bbOci}:latest`, { signKey: key }, 'dir');
    const fromImage = await convert(s.dir, `oci:${bbOci}:latest`, { runtimeDir: undefined, runtimeImage: rtRef, signKey: key } as Partial<GramineOptions>, 'img');
    assert.deepEqual(trustedMap(fromImage.doc), trustedMap(fromDir.doc));
    assert.deepEqual((fromImage.state.get(RUNTIME) as RuntimeInfo).mrenclave, (fromDir.state.get(RUNTIME) as RuntimeInfo).mrenclave);

    rmSync(path.join(rtDir, 'usr/lib/x86_64-linux-gnu/gramine/libsysdb.so'));
    await assert.rejects(convert(s.dir, `oci:${bbOci}:latest`, {}, 'm'), (e: Error & { code?: string }) => e.code === 'GRAMINE_NO_RUNTIME' && e.message.includes('/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so'));
    standInRuntime(path.join(s.dir, 'rt2'));
    const weak = execFileSync('openssl', ['genrsa', '2048'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    await assert.rejects(convert(s.dir, `oci:${bbOci}:latest`, { runtimeDir: path.join(s.dir, 'rt2'), signKey: weak }, 'k'), (e: Error & { code?: string }) => e.code === 'SGX_BAD_KEY' && !e.message.includes('PRIVATE'));
  } finally {
    s.done();
  }
});

// ---- a merged-/usr image of host binaries ----

const envLibs = existsSync('/usr/bin/env') && existsSync('/lib64/ld-linux-x86-64.so.2') ? hostLibs('/usr/bin/env') : undefined;

test('merged-/usr image: files listed under every alias (/bin, /lib, /lib64, file symlinks), loops not followed, glibc from the runtime, bare command through PATH, User mapped', { skip: envLibs ? false : 'needs a glibc /usr/bin/env and ldd on the host' }, async () => {
  const s = scratch();
  try {
    const lib = 'usr/lib/x86_64-linux-gnu';
    const ld = readFileSync(realpathSync('/lib64/ld-linux-x86-64.so.2'));
    const env = readFileSync(realpathSync('/usr/bin/env'));
    const items = [
      dirItem('usr'), dirItem('usr/bin'), dirItem('usr/sbin'), dirItem('usr/lib'), dirItem(lib), dirItem('usr/lib64'),
      linkItem('bin', 'usr/bin'), linkItem('sbin', 'usr/sbin'), linkItem('lib', 'usr/lib'), linkItem('lib64', 'usr/lib64'),
      fileItem('usr/bin/env', env, 0o755),
      linkItem('usr/bin/X11', '.'),
      fileItem(`${lib}/ld-linux-x86-64.so.2`, ld, 0o755),
      linkItem('usr/lib64/ld-linux-x86-64.so.2', `/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`),
      ...envLibs!.map((l) => fileItem(`${lib}/${l.name}`, readFileSync(l.file), 0o644)),
      fileItem(`${lib}/libz.so.1.2.13`, 'not really zlib'),
      linkItem(`${lib}/libz.so.1`, 'libz.so.1.2.13'),
      dirItem('etc'), dirItem('etc/ld.so.conf.d'),
      fileItem('etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n'),
      fileItem('etc/ld.so.conf.d/opt.conf', '# local\n/opt/lib\n'),
      fileItem('etc/passwd', 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n'),
      fileItem('etc/hosts', '127.0.0.1 localhost\n'),
      dirItem('var'), dirItem('var/lib'), fileItem('var/lib/state', 'x'),
      dirItem('app'), fileItem('app/data.txt', 'hello'),
    ];
    const src = await writeItemsImage(path.join(s.dir, 'src'), 'merged', items, {
      Entrypoint: ['env'], Cmd: ['FOO=1'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8'], User: 'app', WorkingDir: '/app',
    }, s.dir);
    const c = await convert(s.dir, src, {});
    const t = trustedMap(c.doc);
    assert.equal((c.doc.libos as TomlTable).entrypoint, '/usr/bin/env');
    assert.deepEqual((c.doc.loader as TomlTable).argv, ['env', 'FOO=1']);
    assert.equal((c.doc.loader as TomlTable).uid, 1000);
    assert.equal((c.doc.loader as TomlTable).gid, 1001);
    for (const p of ['/usr/bin/env', '/bin/env']) assert.equal(t.get(`file:${p}`), sha(env));
    for (const p of ['/lib64/ld-linux-x86-64.so.2', '/usr/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2']) {
      assert.equal(t.get(`file:${p}`), sha(ld), p);
    }
    for (const l of envLibs!) {
      for (const d of ['/lib', '/usr/lib']) assert.equal(t.get(`file:${d}/x86_64-linux-gnu/${l.name}`), sha(readFileSync(l.file)));
    }
    for (const p of ['/usr/lib/x86_64-linux-gnu/libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1.2.13']) assert.equal(t.get(`file:${p}`), sha('not really zlib'));
    assert.ok(![...t.keys()].some((u) => u.includes('/X11/')), 'the /usr/bin/X11 -> . loop is not followed');
    assert.ok(!t.has('file:/etc/hosts') && allowedOf(c.doc).includes('file:/etc/hosts'));
    assert.ok(!t.has('file:/var/lib/state') && allowedOf(c.doc).includes('file:/var/'));
    const ldPath = String(((c.doc.loader as TomlTable).env as TomlTable).LD_LIBRARY_PATH).split(':');
    assert.equal(ldPath[0], `/${GLIBC}`);
    assert.ok(ldPath.includes('/opt/lib'));
    assert.ok(ldPath.indexOf('/usr/lib/x86_64-linux-gnu') > 0);
    assertNoAllowedOverTrusted(c.doc);

    if (tool('umoci').skip) return;
    const rootfs = umociUnpack(c.ref.slice(4), path.join(s.dir, 'bundle'));
    mkdirSync(path.join(rootfs, 'proc'), { recursive: true });
    const kernel = kernelReachable(rootfs, ['/dev', '/proc', '/sys', '/boot', '/tmp', '/var', '/run', '/gramine/app', '/usr/bin/X11', '/bin/X11', '/etc/hosts']);
    if (!kernel) {
      assert.ok(process.getuid?.() !== 0 || !existsSync('/usr/bin/python3'), 'the chroot walk failed although root and python3 are there');
      return;
    }
    const expected = new Map([...kernel].filter(([p]) => !isRuntimeHostFile(p)).map(([p, h]) => [`file:${p}`, h]));
    assert.deepEqual(new Map([...t].sort()), new Map([...expected].sort()));
  } finally {
    s.done();
  }
});

test('an image without /bin/sh starts Gramine\'s loader directly (and says that ENCLAVIFY_GRAMINE_LOADER is not honoured); no Entrypoint is an error', async () => {
  const s = scratch();
  try {
    const elf = readFileSync(path.join(signDir, 'stand-in-pal.so'));
    const src = await writeItemsImage(path.join(s.dir, 'src'), 'nosh', [dirItem('app'), fileItem('app/prog', elf, 0o755)], { Entrypoint: ['/app/prog'] }, s.dir);
    const c = await convert(s.dir, src, {});
    const cfg = (await (await openImage(c.ref)).config()).config!;
    assert.deepEqual(cfg.Entrypoint, ['/usr/lib/x86_64-linux-gnu/gramine/sgx/loader', '/usr/lib/x86_64-linux-gnu/gramine/sgx/libpal.so', 'init', BASE]);
    assert.match(JSON.stringify(c.report), /no \/bin\/sh/);
    const none = await writeItemsImage(path.join(s.dir, 'src'), 'noep', [dirItem('app')], {}, s.dir);
    await assert.rejects(convert(s.dir, none, {}, 'n'), (e: Error & { code?: string }) => e.code === 'GRAMINE_BAD_ENTRYPOINT');
    // A runtime path that is a symlink in the image is refused, suggesting a prefix.
    const bad = await writeItemsImage(path.join(s.dir, 'src'), 'usrlink', [dirItem('app'), fileItem('app/prog', elf, 0o755), dirItem('opt'), linkItem('usr', 'opt')], { Entrypoint: ['/app/prog'] }, s.dir);
    await assert.rejects(convert(s.dir, bad, {}, 'b'), (e: Error & { code?: string }) => e.code === 'GRAMINE_PATH_CONFLICT' && /prefix/.test(e.message));
  } finally {
    s.done();
  }
});

const openssl = existsSync('/usr/bin/openssl') && existsSync('/lib64/ld-linux-x86-64.so.2') ? hostLibs('/usr/bin/openssl') : undefined;

test('the SGX host loader\'s libraries that the image lacks are copied from the runtime (never over the image\'s own), and the loader runs in a chroot of the image', { skip: openssl ? false : 'needs a glibc /usr/bin/openssl and ldd on the host' }, async () => {
  const s = scratch();
  try {
    // A runtime whose "SGX loader" is a real dynamically linked program (openssl) with its libraries.
    const rt = standInRuntime(path.join(s.dir, 'runtime'));
    const put = (rel: string, from: string) => {
      mkdirSync(path.dirname(path.join(rt, rel)), { recursive: true });
      execFileSync('cp', [realpathSync(from), path.join(rt, rel)]);
    };
    put('usr/lib/x86_64-linux-gnu/gramine/sgx/loader', '/usr/bin/openssl');
    put('lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2');
    for (const l of openssl!) put(`usr/lib/x86_64-linux-gnu/${l.name}`, l.file);
    const c = await convert(s.dir, `oci:${bbOci}:latest`, {}, 'bb');
    const added = (c.report['injectRuntime(gramine)'] as { hostLibraries: string[] }).hostLibraries;
    assert.deepEqual(added.sort(), ['/lib64/ld-linux-x86-64.so.2', ...openssl!.map((l) => `/usr/lib/x86_64-linux-gnu/${l.name}`)].sort());
    assert.ok(!trustedUris(c.doc).some((u) => added.includes(u.slice(5))), 'host-side libraries are not trusted');
    const fs = await rootfsOf(await openImage(c.ref));
    assert.equal(fs.get('usr/lib/x86_64-linux-gnu/libssl.so.3')?.sha256, sha(readFileSync(openssl!.find((l) => l.name === 'libssl.so.3')!.file)));
    // Without the option nothing is added.
    const off = await convert(s.dir, `oci:${bbOci}:latest`, { hostLibraries: false }, 'off');
    assert.deepEqual((off.report['injectRuntime(gramine)'] as { hostLibraries: string[] }).hostLibraries, []);
    if (!tool('umoci').skip && process.getuid?.() === 0) {
      const rootfs = umociUnpack(c.ref.slice(4), path.join(s.dir, 'bundle'));
      const r = spawnSync('/usr/sbin/chroot', [rootfs, '/usr/lib/x86_64-linux-gnu/gramine/sgx/loader', 'version'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /OpenSSL/);
    }
  } finally {
    s.done();
  }
});

test('an Entrypoint that is not in the image is a clear error', async () => {
  const s = scratch();
  try {
    const src = await writeItemsImage(path.join(s.dir, 'src'), 'missing', [dirItem('app')], { Entrypoint: ['nosuchprog'], Env: ['PATH=/usr/bin'] }, s.dir);
    await assert.rejects(convert(s.dir, src, {}), (e: Error & { code?: string }) => e.code === 'GRAMINE_BAD_ENTRYPOINT' && e.message.includes('nosuchprog'));
  } finally {
    s.done();
  }
});
