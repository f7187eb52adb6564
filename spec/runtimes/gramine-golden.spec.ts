/**
 * Byte-for-byte goldens of Gramine conversions: the manifest text, the signed `.manifest.sgx` and
 * SIGSTRUCT, MRENCLAVE, the image config and the digest of every layer written, for a few
 * deterministic conversions (bb-fixture signed, encrypted with deterministic keys and development
 * keys, the direct loader under a prefix, and a synthetic dynamically linked glibc image without a
 * shell). A refactoring of injectGramine or of the startup search must leave them all unchanged.
 * The goldens were taken on the code before injectGramine and StartupSearch.loadProcess were split
 * into steps. Run with GOLDEN_UPDATE=1 to rewrite spec/runtimes/golden/gramine.json on purpose
 * (a change of output is a change of behaviour: say why in the commit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lutimesSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openImage, pipeline, writeImage, type Transform } from '../../lib/index.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { encryptFS } from '../../lib/transforms/encrypt-fs.js';
import { RUNTIME } from '../../lib/transforms/state.js';
import { gramine, type GramineOptions } from '../../lib/runtimes/gramine/index.js';
import { bbOci, scratch } from '../helpers/images.js';
import { buildElf } from '../helpers/elf-builder.js';
import { dirItem, fileItem, linkItem, readImageFiles, standInRuntime, testKey, writeItemsImage } from './gramine-helpers.js';

const goldenFile = path.join(import.meta.dirname, 'golden', 'gramine.json');
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const key = readFileSync(testKey);

/** What one conversion produced, as the golden holds it. */
async function convertToGolden(dir: string, src: string, opts: Partial<GramineOptions>, tag: string, steps: Transform[] = []) {
  const out = await pipeline(await openImage(src), [...steps, injectRuntime(gramine({ runtimeDir: path.join(dir, 'runtime'), ...opts } as GramineOptions))], { tmpDir: dir, created: new Date('2026-01-01T00:00:00Z') });
  const ref = `oci:${dir}/out:${tag}`;
  try {
    await writeImage(out.image, ref);
  } finally {
    await out.dispose();
  }
  const image = await openImage(ref);
  const info = out.state.get(RUNTIME);
  assert.ok(info?.manifestPath);
  const base = info.manifestPath.replace(/\.manifest$/, '');
  const files = await readImageFiles(image, [`${base}.manifest`, ...(info.mrenclave ? [`${base}.manifest.sgx`, `${base}.sig`] : [])]);
  const get = (p: string) => files.get(p);
  const config = await image.config();
  return {
    manifest: new TextDecoder().decode(get(`${base}.manifest`)),
    manifestSgxSha256: get(`${base}.manifest.sgx`) ? sha(get(`${base}.manifest.sgx`)!) : null,
    sigSha256: get(`${base}.sig`) ? sha(get(`${base}.sig`)!) : null,
    mrenclave: info.mrenclave ?? null,
    // The whole image config (its digest would name the scratch folder, in the history).
    config,
    runtimeInfo: info,
    report: out.report,
    layers: (await image.manifest()).layers.map((l) => l.digest),
  };
}

/** A dynamically linked glibc program (synthetic ELF) with RUNPATH, ld.so.conf and no /bin/sh. */
function glibcItems() {
  const loader = '/lib64/ld-linux-x86-64.so.2';
  const elf = (s: Parameters<typeof buildElf>[0]) => buildElf(s).bytes;
  return [
    dirItem('usr'), dirItem('usr/bin'), dirItem('usr/lib'), dirItem('usr/lib64'), dirItem('usr/lib/x86_64-linux-gnu'),
    linkItem('lib', 'usr/lib'), linkItem('lib64', 'usr/lib64'), linkItem('bin', 'usr/bin'),
    fileItem('usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', elf({ type: 3, soname: 'ld-linux-x86-64.so.2' }), 0o755),
    linkItem('usr/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'),
    fileItem('usr/lib/x86_64-linux-gnu/libc.so.6', elf({ type: 3, soname: 'libc.so.6', needed: ['ld-linux-x86-64.so.2'] })),
    fileItem('usr/lib/x86_64-linux-gnu/libz.so.1.2.13', elf({ type: 3, soname: 'libz.so.1', needed: ['libc.so.6'] })),
    linkItem('usr/lib/x86_64-linux-gnu/libz.so.1', 'libz.so.1.2.13'),
    dirItem('opt'), dirItem('opt/app'), dirItem('opt/app/lib'), dirItem('opt/lib'),
    fileItem('opt/app/lib/libapp.so', elf({ type: 3, soname: 'libapp.so', needed: ['libz.so.1', 'libextra.so', 'libc.so.6'] })),
    fileItem('opt/lib/libextra.so', elf({ type: 3, soname: 'libextra.so', needed: ['libc.so.6'] })),
    dirItem('opt/app/bin'),
    fileItem('opt/app/bin/server', elf({ type: 3, interp: loader, needed: ['libapp.so', 'libc.so.6'], runpath: '$ORIGIN/../lib' }), 0o755),
    linkItem('usr/bin/server', '/opt/app/bin/server'),
    dirItem('etc'), dirItem('etc/ld.so.conf.d'),
    fileItem('etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n'),
    fileItem('etc/ld.so.conf.d/opt.conf', '/opt/lib\n'),
    fileItem('etc/passwd', 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n'),
    fileItem('etc/hosts', '127.0.0.1 localhost\n'),
    dirItem('var'), dirItem('var/lib'), fileItem('var/lib/state', 'x'),
    dirItem('app'), fileItem('app/config.txt', 'hello'),
  ];
}

test('golden: Gramine conversions are byte-for-byte what they were (manifest, signature, MRENCLAVE, config, layers)', async () => {
  const s = scratch();
  try {
    const runtime = standInRuntime(path.join(s.dir, 'runtime'));
    // The runtime layer keeps the files' times: make them the same on every run.
    for (const p of readdirSync(runtime, { recursive: true }) as string[]) lutimesSync(path.join(runtime, p), 1700000000, 1700000000);
    const bb = `oci:${bbOci}:latest`;
    const glibc = await writeItemsImage(path.join(s.dir, 'src'), 'glibc', glibcItems(), {
      Entrypoint: ['server'], Cmd: ['--port', '8080'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8'], User: 'app', WorkingDir: '/app',
    }, s.dir);
    const encrypted = () => [fileClassify({ dirs: ['/app/data'], plainFiles: ['/app/static/index.html'] }), encryptFS({ deterministic: { masterKey: Buffer.alloc(32, 7) }, keysArtifact: false })];
    const got = {
      'bb-signed': await convertToGolden(s.dir, bb, { signKey: key, signDate: '2026-01-01' }, 'signed'),
      'bb-encrypted-devkeys': await convertToGolden(s.dir, bb, { signKey: key, insecureDevKeys: true, debug: true }, 'enc', encrypted()),
      'bb-direct-prefix': await convertToGolden(s.dir, bb, { loader: 'direct', prefix: '/opt/gramine', tmpfs: ['/tmp', '/run'], enclaveSize: '2G', maxThreads: 4, argv: ['/bin/sh', '-c', 'echo hi'] }, 'direct'),
      'glibc-synthetic-signed': await convertToGolden(s.dir, glibc, { signKey: key }, 'glibc'),
      'glibc-synthetic-image-glibc': await convertToGolden(s.dir, glibc, { runtimeGlibc: false }, 'imgglibc'),
    };
    // The scratch folder's name is the one thing that differs from run to run.
    const text = `${JSON.stringify(got, null, 2).split(s.dir).join('<scratch>')}\n`;
    if (process.env.GOLDEN_UPDATE === '1') writeFileSync(goldenFile, text);
    const want = JSON.parse(readFileSync(goldenFile, 'utf8')) as typeof got;
    const have = JSON.parse(text) as typeof got;
    assert.deepEqual(Object.keys(have), Object.keys(want));
    for (const name of Object.keys(want) as Array<keyof typeof got>) {
      assert.equal(have[name].manifest, want[name].manifest, `${name}: manifest text`);
      assert.deepEqual(have[name], want[name], `${name}: everything else`);
    }
  } finally {
    s.done();
  }
});
