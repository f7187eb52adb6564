import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { imageFromDirectory, injectRuntime, openImage, pipeline, scone, type Transform } from '../../lib/index.js';
import { checkSconeFileProtection, SCONE_FSPF_UNSUPPORTED_MESSAGE } from '../../lib/runtimes/scone/limits.js';
import { RootFs } from '../../lib/fs/merged.js';
import { PROTECTION, RUNTIME, type RuntimeInfo } from '../../lib/transforms/state.js';
import { bbOci, scratch } from '../helpers/images.js';

const bb = () => openImage(`oci:${bbOci}:latest`);
const MR = 'ab'.repeat(32);

/** A transform that sets the image's Entrypoint/Cmd/Env (to test other image shapes). */
function setConfig(c: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[] }): Transform {
  return { name: 'setConfig', apply: (d) => void Object.assign((d.config.config ??= {}), c) };
}

async function readAll(img: Awaited<ReturnType<typeof bb>>, paths: string[]): Promise<Map<string, Buffer>> {
  const fs = await RootFs.scan((await img.layers()).map((l) => ({ name: l.name, open: () => l.uncompressed() })));
  const out = new Map<string, Buffer>();
  await fs.streamFiles(paths, async ({ paths: ps }, content) => {
    const chunks: Buffer[] = [];
    for await (const c of content) chunks.push(c as Buffer);
    for (const p of ps) out.set(p, Buffer.concat(chunks));
  });
  return out;
}

test('scone: Env carries CAS, LAS, config id and runtime settings; the binary becomes the Entrypoint', async () => {
  const out = await pipeline(await bb(), [injectRuntime(scone({ namespace: 'acme/prod', name: 'bb-session', serviceName: 'web', binary: '/bin/sh', cas: 'cas.example:8081', heap: '256M', dlopen: 2, log: 'INFO', mrenclaves: [MR.toUpperCase()] }))]);
  try {
    const c = await out.image.config();
    // /bin/sh is not the program /app/server.sh names, so it interprets it
    assert.deepEqual(c.config!.Entrypoint, ['/bin/sh', '/app/server.sh']);
    assert.equal(c.config!.Cmd, undefined);
    assert.deepEqual(c.config!.Env, [
      'APP_MODE=production',
      'SCONE_CAS_ADDR=cas.example:8081',
      'SCONE_LAS_ADDR=localhost:18766',
      'SCONE_CONFIG_ID=acme/prod/bb-session/web',
      'SCONE_HEAP=256M',
      'SCONE_STACK=1M',
      'SCONE_ALLOW_DLOPEN=2',
      'SCONE_FORK=0',
      'SCONE_LOG=INFO',
    ]);
    assert.equal(c.config!.WorkingDir, '/app');
    const last = c.history!.at(-1)!;
    assert.equal(last.empty_layer, true);
    assert.match(last.created_by!, /injectRuntime\(scone\)/);
    // config-only change: the layers are the source's
    assert.equal((await out.image.layers()).length, 3);
    const info = out.state.get(RUNTIME) as RuntimeInfo;
    assert.equal(info.runtime, 'scone');
    assert.equal(info.sconeConfigId, 'acme/prod/bb-session/web');
    assert.deepEqual(info.mrenclave, [MR]);
    assert.deepEqual(info.entrypoint, ['/bin/sh', '/app/server.sh']);
  } finally {
    await out.dispose();
  }
});

test('scone: the default binary is the file the kernel runs; argv[0] stays the name the image uses', async () => {
  let out = await pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's' }))]);
  try {
    // a #!/bin/sh script runs through its interpreter, as written in the #! line
    assert.deepEqual((await out.image.config()).config!.Entrypoint, ['/bin/sh', '/app/server.sh']);
    const details = (out.state.get(RUNTIME) as RuntimeInfo).details as { binary: string; argv0: string };
    assert.equal(details.binary, '/bin/busybox');
    assert.equal(details.argv0, '/bin/sh');
  } finally {
    await out.dispose();
  }
  // `sh` through PATH is /bin/sh -> busybox: the same file as --binary /bin/busybox
  out = await pipeline(await bb(), [setConfig({ Entrypoint: ['sh', '-c'], Cmd: ['echo hi'], Env: ['PATH=/usr/bin:/bin', 'SCONE_HEAP=9G'] }), injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/bin/busybox' }))]);
  try {
    const c = (await out.image.config()).config!;
    // busybox dispatches on argv[0]: it must stay `sh`
    assert.deepEqual(c.Entrypoint, ['sh', '-c', 'echo hi']);
    // an existing SCONE_ variable is replaced, not duplicated
    assert.deepEqual(c.Env!.filter((e) => e.startsWith('SCONE_HEAP=')), ['SCONE_HEAP=1G']);
  } finally {
    await out.dispose();
  }
});

test('scone: refuses a missing binary, bad settings, and images whose files were encrypted for Gramine', async () => {
  await assert.rejects(pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/usr/bin/python3' }))]), (e: Error & { code?: string }) => e.code === 'SCONE_BINARY_MISMATCH' && /\/app\/server.sh is a script.*\/bin\/sh \(#!\/bin\/sh\), which is \/bin\/busybox/.test(e.message));
  await assert.rejects(pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/app' }))]), /SCONE_BINARY_MISMATCH|not the program the image starts/);
  assert.throws(() => scone({ namespace: 'ns', name: 's', heap: 'lots' }), /heap "lots"/);
  assert.throws(() => scone({ namespace: 'ns', name: 's', dlopen: 3 as 1 }), /dlopen 3/);
  assert.throws(() => scone({ namespace: 'ns', name: '..' }), /name/);
  assert.throws(() => scone({ namespace: 'a//b', name: 's' }), /namespace/);
  assert.throws(() => scone({ namespace: 'ns', name: 's', cas: 'x y' }), /cas/);
  assert.throws(() => scone({ namespace: 'ns', name: 's', mrenclaves: ['12'] }), /mrenclaves\[0\]/);
  assert.throws(() => scone({ namespace: 'ns', name: 's', binary: 'bin/sh' }), /absolute/);
  const protection = (keys: number): Transform => ({
    name: 'fakeEncrypt',
    apply: (d) => void d.state.set(PROTECTION, { manifestPath: '/x', manifestSha256: '0'.repeat(64), keys: Array.from({ length: keys }, () => ({ name: 'k', region: '/app/data', keyHex: '00'.repeat(16) })) }),
  });
  const encrypted = protection(1);
  // authenticated only (no keys): no file changed, SCONE can run it
  await (await pipeline(await bb(), [protection(0), injectRuntime(scone({ namespace: 'ns', name: 's' }))])).dispose();
  await assert.rejects(pipeline(await bb(), [encrypted, injectRuntime(scone({ namespace: 'ns', name: 's' }))]), (e: Error & { code?: string }) => e.code === 'SCONE_FSPF_UNSUPPORTED' && /proprietary/.test(e.message));
});

test('checkSconeFileProtection: --dir with SCONE fails and says why', () => {
  checkSconeFileProtection({});
  checkSconeFileProtection({ dirs: [] });
  assert.throws(() => checkSconeFileProtection({ dirs: ['/app/data'] }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'SCONE_FSPF_UNSUPPORTED');
    assert.equal(e.message, SCONE_FSPF_UNSUPPORTED_MESSAGE);
    assert.match(e.message, /proprietary/);
    assert.match(e.message, /--runtime gramine/);
    return true;
  });
});

/** A stand-in for SCONE's curated image: an "enclave-ready" shell and a library. */
async function binaryImage(dir: string, platform?: { os: string; architecture: string }) {
  const root = path.join(dir, 'runtime-src');
  mkdirSync(path.join(root, 'opt/scone/bin'), { recursive: true });
  mkdirSync(path.join(root, 'opt/scone/lib'), { recursive: true });
  writeFileSync(path.join(root, 'opt/scone/bin/sh-enclave'), 'ENCLAVE-READY SHELL\n', { mode: 0o755 });
  writeFileSync(path.join(root, 'opt/scone/lib/libscone-demo.so'), 'LIBRARY\n', { mode: 0o644 });
  return imageFromDirectory({ dir: root, tmpDir: dir, config: {}, ...(platform ? { platform } : {}) });
}

test('scone binaryImage: the enclave-ready binary replaces the native file behind the symlink, in one new layer', async () => {
  const s = scratch();
  try {
    const src = await bb();
    const bin = await binaryImage(s.dir);
    const out = await pipeline(
      src,
      [
        injectRuntime(scone({
          namespace: 'ns',
          name: 's',
          binary: '/bin/sh',
          binaryImage: { image: bin, path: '/opt/scone/bin/sh-enclave', files: [{ from: '/opt/scone/lib/libscone-demo.so', to: '/usr/lib/scone/libscone-demo.so' }] },
        })),
      ],
      { tmpDir: s.dir },
    );
    try {
      const layers = await out.image.layers();
      assert.equal(layers.length, 4);
      const c = await out.image.config();
      assert.equal(c.history!.filter((h) => !h.empty_layer).length, 4);
      assert.deepEqual(c.config!.Entrypoint, ['/bin/sh', '/app/server.sh']);
      // /bin/sh -> busybox: the real file is replaced, so every applet name reaches the new binary;
      // /app/setuid-tool had the same bytes but is another file and stays native.
      const files = await readAll(out.image, ['/bin/sh', '/bin/busybox', '/bin/cat', '/app/setuid-tool', '/usr/lib/scone/libscone-demo.so']);
      assert.equal(files.get('/bin/busybox')!.toString(), 'ENCLAVE-READY SHELL\n');
      assert.equal(files.get('/bin/sh')!.toString(), 'ENCLAVE-READY SHELL\n');
      assert.equal(files.get('/bin/cat')!.toString(), 'ENCLAVE-READY SHELL\n');
      assert.equal(files.get('/usr/lib/scone/libscone-demo.so')!.toString(), 'LIBRARY\n');
      assert.equal(createHash('sha256').update(files.get('/app/setuid-tool')!).digest('hex'), '3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6');
      const fs = await RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() })));
      assert.equal(fs.get('bin/sh')!.type, 'symlink');
      assert.equal(fs.get('bin/busybox')!.mode, 0o755);
      assert.equal(fs.get('usr/lib/scone')!.type, 'dir');
      // the three source layers are untouched
      const srcLayers = await src.layers();
      for (let i = 0; i < 3; i++) assert.equal(await layers[i].digest(), await srcLayers[i].digest());
      const report = out.report.injectRuntime as { binaryImage: { files: Array<{ to: string; replaced: boolean }> } };
      assert.deepEqual(report.binaryImage.files.map((f) => [f.to, f.replaced]), [['/bin/busybox', true], ['/usr/lib/scone/libscone-demo.so', false]]);
    } finally {
      await out.dispose();
    }
  } finally {
    s.done();
  }
});

test('scone binaryImage: missing source files and other architectures are refused before anything is written', async () => {
  const s = scratch();
  try {
    const bin = await binaryImage(s.dir);
    await assert.rejects(
      pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/bin/sh', binaryImage: { image: bin, path: '/opt/scone/bin/python3' } }))], { tmpDir: s.dir }),
      (e: Error & { code?: string }) => e.code === 'SCONE_BINARY_NOT_FOUND' && e.message.includes('/opt/scone/bin/python3'),
    );
    await assert.rejects(
      pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/bin/sh', binaryImage: { image: bin, path: '/opt/scone/bin' } }))], { tmpDir: s.dir }),
      /is a dir/,
    );
    const arm = await binaryImage(path.join(s.dir), { os: 'linux', architecture: 'arm64' });
    await assert.rejects(
      pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/bin/sh', binaryImage: { image: arm, path: '/opt/scone/bin/sh-enclave' } }))], { tmpDir: s.dir }),
      (e: Error & { code?: string }) => e.code === 'SCONE_ARCH_MISMATCH',
    );
    // a target that is a directory in the native image
    await assert.rejects(
      pipeline(await bb(), [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/bin/sh', binaryImage: { image: bin, path: '/opt/scone/bin/sh-enclave', files: [{ from: '/opt/scone/lib/libscone-demo.so', to: '/app/data' }] } }))], { tmpDir: s.dir }),
      (e: Error & { code?: string }) => e.code === 'SCONE_BAD_TARGET',
    );
  } finally {
    s.done();
  }
});

test('scone: a script whose #! interpreter is not in the image gets the interpreter as its binary, with a warning; binaryImage can supply it', async () => {
  const s = scratch();
  try {
    mkdirSync(path.join(s.dir, 'app', 'app'), { recursive: true });
    writeFileSync(path.join(s.dir, 'app', 'app', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    const image = await imageFromDirectory({ dir: path.join(s.dir, 'app'), config: { Entrypoint: ['/app/run.sh'], Cmd: ['x'], WorkingDir: '/app' } });
    const out = await pipeline(image, [injectRuntime(scone({ namespace: 'ns', name: 's' }))], { tmpDir: s.dir });
    try {
      assert.deepEqual((await out.image.config()).config!.Entrypoint, ['/bin/sh', '/app/run.sh', 'x']);
      const details = (out.state.get(RUNTIME) as RuntimeInfo).details as { binary: string };
      assert.equal(details.binary, '/bin/sh');
      const warnings = (out.report.injectRuntime as { warnings: string[] }).warnings;
      assert.ok(warnings.some((w) => /\/bin\/sh.*not in the image.*SCONE-built \/bin\/sh.*binaryImage/.test(w)), warnings.join('\n'));
    } finally {
      await out.dispose();
    }
    // an image without Entrypoint/Cmd runs the binary it is given
    const bare = await pipeline(await bb(), [setConfig({ Entrypoint: [], Cmd: [] }), injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/bin/busybox' }))], { tmpDir: s.dir });
    try {
      assert.deepEqual((await bare.image.config()).config!.Entrypoint, ['/bin/busybox']);
    } finally {
      await bare.dispose();
    }
    await assert.rejects(pipeline(await bb(), [setConfig({ Entrypoint: [], Cmd: [] }), injectRuntime(scone({ namespace: 'ns', name: 's' }))], { tmpDir: s.dir }), (e: Error & { code?: string }) => e.code === 'SCONE_NO_BINARY');
    // any other --binary is not what the kernel would run
    await assert.rejects(pipeline(image, [injectRuntime(scone({ namespace: 'ns', name: 's', binary: '/app/run.sh' }))], { tmpDir: s.dir }), (e: Error & { code?: string }) => e.code === 'SCONE_BINARY_MISMATCH');
  } finally {
    s.done();
  }
});
