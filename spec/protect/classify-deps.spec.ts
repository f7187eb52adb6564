/**
 * Dependency discovery through fileClassify on a real dynamically linked program: an OCI image
 * (tarStream + buildLayer, written with writeImage) holding the host's /bin/ls and the libraries
 * ldd lists, with Debian's merged-/usr symlinks. The program interpreter and every DT_NEEDED
 * library are found and kept authenticated; encrypting their directory is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { openImage, pipeline } from '../../lib/index.js';
import { fileClassify, type ClassificationReport } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { CLASSIFICATION, PROTECTION, type Classification, type Protection } from '../../lib/transforms/state.js';
import { verify } from '../../lib/protect/verify.js';
import { formatTree } from '../../lib/fs/tree.js';
import { scratch } from '../helpers/images.js';
import { fileItem, hostLsSkip, ldd, rootfsOf, writeHostLsImage } from './encrypt-helpers.js';
import { pythonImageRef, pythonImageSkip } from '../helpers/python-image.js';

const skip = hostLsSkip();
const s = scratch('enclavify-deps-');
let ref = '';
let libDir = '';
before(async () => {
  if (skip) return;
  ref = await writeHostLsImage(s.dir, [fileItem('data/secret.txt', 'the secret'), fileItem(`${realpathSync(ldd('/bin/ls')!.libs.find((l) => l.name.startsWith('libc.so'))!.path).slice(1).replace(/\/[^/]+$/, '')}/app-data.bin`, 'not a library')]);
  libDir = realpathSync(ldd('/bin/ls')!.libs.find((l) => l.name.startsWith('libc.so'))!.path).replace(/\/[^/]+$/, '');
});
after(() => s.done());

/** Where a host file lands in the image (the host's real path: the image mirrors the host layout). */
const inImage = (hostPath: string) => realpathSync(hostPath);

test('host /bin/ls: the interpreter and every DT_NEEDED library are found and authenticated', { skip }, async () => {
  const d = ldd('/bin/ls')!;
  const out = await pipeline(await openImage(ref), [fileClassify({ dirs: ['/data'] })]);
  try {
    const c = out.state.get(CLASSIFICATION) as Classification;
    const report = out.report.fileClassify as ClassificationReport;
    const want = [inImage('/bin/ls'), inImage(d.interpreter!), ...d.libs.map((l) => inImage(l.path))];
    for (const p of want) {
      assert.ok(c.startup.includes(p), `${p} among startup files ${c.startup}`);
      const f = c.files.get(p)!;
      assert.deepEqual([f.class, f.startup], ['authenticated', true], p);
      assert.match(f.reason, /^startup: /);
    }
    assert.equal(report.startup!.program, inImage('/bin/ls'));
    assert.equal(report.startup!.interpreter, inImage(d.interpreter!));
    assert.equal(c.files.get(inImage(d.interpreter!))!.reason, 'startup: the ELF program interpreter (dynamic loader)');
    const libc = d.libs.find((l) => l.name.startsWith('libc.so'))!;
    assert.ok(c.files.get(inImage(libc.path))!.reason.startsWith(`startup: library ${libc.name} needed by ${inImage('/bin/ls')}`));
    // Exactly ldd's libraries (the loader is listed as the interpreter).
    const names = report.startup!.libraries.filter((l) => l.via !== 'interpreter').map((l) => l.soname).sort();
    assert.deepEqual(names, d.libs.map((l) => l.name).sort());
    assert.deepEqual(report.startup!.missing, []);
    assert.equal(c.files.get('/data/secret.txt')!.class, 'encrypted');
    assert.equal(c.files.get(`${libDir}/app-data.bin`)!.class, 'authenticated');
  } finally {
    await out.dispose();
  }
});

test(`--dir over the library directory is refused, naming each startup library and why`, { skip }, async () => {
  const d = ldd('/bin/ls')!;
  await assert.rejects(pipeline(await openImage(ref), [fileClassify({ dirs: [libDir] })]), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CLASSIFY_STARTUP_ENCRYPTED');
    assert.match(e.message, new RegExp(`--dir ${libDir} would encrypt ${d.libs.length + 1} startup files of /bin/ls:`));
    for (const l of d.libs) assert.ok(e.message.includes(`${inImage(l.path)}: library ${l.name} needed by`), `${l.name} named in: ${e.message}`);
    assert.ok(e.message.includes(`${inImage(d.interpreter!)}: the ELF program interpreter (dynamic loader)`));
    assert.match(e.message, /before\s+the enclave is attested and receives its keys, so they cannot be encrypted/);
    return true;
  });
  // The same directory through the merged-/usr symlink: named as what it resolves to.
  if (libDir.startsWith('/usr/lib/')) {
    await assert.rejects(pipeline(await openImage(ref), [fileClassify({ dirs: [libDir.slice(4)] })]), { code: 'RULE_SYMLINK', message: new RegExp(`resolves to ${libDir}`) });
  }
});

test('the startup libraries can be excluded explicitly; the rest of their directory is then encrypted', { skip }, async () => {
  const out = await pipeline(await openImage(ref), [fileClassify({ dirs: [libDir], authenticated: (await startup()).filter((p) => p.startsWith(libDir + '/')) }), encryptFS()]);
  try {
    const c = out.state.get(CLASSIFICATION) as Classification;
    assert.equal(c.files.get(`${libDir}/app-data.bin`)!.class, 'encrypted');
    const r = await verify(out.image, { keys: new Map((out.state.get(PROTECTION) as Protection).keys.map((k) => [k.name, Buffer.from(k.keyHex, 'hex')])) });
    assert.deepEqual(r.findings, []);
  } finally {
    await out.dispose();
  }
});

test('converting the ls image keeps every library byte for byte', { skip }, async () => {
  const src = await openImage(ref);
  const out = await pipeline(src, [fileClassify({ dirs: ['/data'] }), encryptFS()]);
  try {
    const mask = (t: string) => t.split('\n').filter((l) => !l.startsWith('data/secret.txt ') && !l.startsWith('.enclavify')).join('\n');
    assert.equal(mask(formatTree(await rootfsOf(out.image))), mask(formatTree(await rootfsOf(src))));
  } finally {
    await out.dispose();
  }
});

async function startup(): Promise<string[]> {
  const out = await pipeline(await openImage(ref), [fileClassify({})]);
  try {
    return (out.state.get(CLASSIFICATION) as Classification).startup;
  } finally {
    await out.dispose();
  }
}

// ---- the realistic Debian + python3 image (built by ../shared/tools/make-python-image; CI sets ENCLAVIFY_PYTHON_IMAGE) ----

const pySkip = pythonImageSkip;

test('python image: python3.11, its interpreter and DT_NEEDED libraries stay authenticated; their directory cannot be encrypted', { skip: pySkip }, async () => {
  const ref = pythonImageRef;
  const out = await pipeline(await openImage(ref), [fileClassify({ dirs: ['/app/data'] }), encryptFS()]);
  try {
    const c = out.state.get(CLASSIFICATION) as Classification;
    const report = out.report.fileClassify as ClassificationReport;
    assert.equal(report.startup!.program, '/usr/bin/python3.11');
    assert.equal(report.startup!.interpreter, '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    const libs = report.startup!.libraries.map((l) => l.soname);
    for (const n of ['libc.so.6', 'libm.so.6', 'libz.so.1', 'libexpat.so.1']) assert.ok(libs.includes(n), `${n} in ${libs}`);
    for (const p of report.startup!.files) assert.equal(c.files.get(p)?.class, 'authenticated', p);
    assert.deepEqual(report.startup!.missing, []);
    assert.equal(c.files.get('/app/data/secret.txt')!.class, 'encrypted');
    const keys = new Map((out.state.get(PROTECTION) as Protection).keys.map((k) => [k.name, Buffer.from(k.keyHex, 'hex')]));
    assert.deepEqual((await verify(out.image, { keys })).findings, []);
  } finally {
    await out.dispose();
  }
  await assert.rejects(pipeline(await openImage(ref), [fileClassify({ dirs: ['/usr/lib/x86_64-linux-gnu'] })]), {
    code: 'CLASSIFY_STARTUP_ENCRYPTED',
    message: /--dir \/usr\/lib\/x86_64-linux-gnu would encrypt \d+ startup files of python3:[^]*libc\.so\.6 needed by \/usr\/bin\/python3\.11/,
  });
});
