/**
 * `npm run example`: builds the "hello" app (./app, a directory) into a native OCI image with the
 * library, then converts it into confidential images, writing image, keys, policy and chart:
 *
 *   out/hello-native/            the native image (OCI layout, tag latest)
 *   out/hello/gramine/           Gramine track: /app/data encrypted, attestation policy, chart
 *     image/ keys.json policy/attestation.json chart/enclavify-hello/ manifests.yaml report.json
 *   out/hello/scone/             SCONE track: SCONE_* settings, CAS session, chart
 *     image/ policy/session.yaml chart/sconify-hello/ manifests.yaml report.json
 *
 * Usage: node --import tsx examples/hello/build-and-convert.ts [--out DIR]   (default DIR: ./out)
 * Environment: GRAMINE_RUNTIME=oci:DIR[:TAG] or GRAMINE_RUNTIME_DIR=DIR (a Gramine installation)
 * also injects the Gramine runtime, which needs a shell in the image: HELLO_SHELL=FILE (a static
 * shell such as busybox) is copied to /bin/sh; HELLO_MRENCLAVE=HEX puts the real measurement into
 * the policies instead of the placeholder. See README.md.
 */
import { chmod, copyFile, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  emitChart,
  emitPolicy,
  encryptFS,
  fileClassify,
  gramine,
  imageFromDirectory,
  injectRuntime,
  pipeline,
  scone,
  writeImage,
  POLICY,
  RUNTIME,
  type DirectoryImage,
  type Image,
  type PipelineResult,
  type Transform,
} from '../../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Stands in for the enclave's real MRENCLAVE until it is measured: a policy naming it accepts no
 * enclave at all (fail closed). Measure with SCONE (`SCONE_HASH=1 /bin/sh` in the SCONE
 * image) or sign the Gramine image, then pass HELLO_MRENCLAVE.
 */
export const PLACEHOLDER_MRENCLAVE = '0'.repeat(64);

/** Fixed build time, so the example's images are reproducible. */
const BUILD_TIME = 1700000000;

function outDir(argv: string[]): string {
  const i = argv.indexOf('--out');
  if (i >= 0) {
    if (!argv[i + 1]) throw new Error('--out needs a directory');
    return path.resolve(argv[i + 1]);
  }
  return path.resolve('out');
}


/** Writes a pipeline's image and artifacts under `dir` (secrets 0600) and its report. */
async function save(result: PipelineResult, dir: string, tag: string): Promise<{ digest: string; files: string[] }> {
  await mkdir(dir, { recursive: true });
  const written = await writeImage(result.image, `oci:${path.join(dir, 'image')}:${tag}`);
  const files: string[] = [];
  for (const a of result.artifacts.values()) {
    const file = path.join(dir, a.path);
    if (path.relative(dir, file).startsWith('..')) throw new Error(`artifact ${a.path} would land outside ${dir}`);
    await mkdir(path.dirname(file), { recursive: true });
    const mode = a.secret ? 0o600 : 0o644;
    await writeFile(file, a.data, { mode });
    await chmod(file, mode);
    files.push(path.relative(dir, file));
  }
  await writeFile(path.join(dir, 'report.json'), JSON.stringify(result.report, null, 2) + '\n');
  return { digest: written.digest, files };
}

/**
 * The native image: ./app at /app, run as /app/hello.sh; with HELLO_SHELL also that shell at
 * /bin/sh (the tree is staged in `tmp`, so the image root holds /app and /bin).
 */
async function buildNative(tmp: string): Promise<DirectoryImage> {
  const shell = process.env.HELLO_SHELL;
  let dir = path.join(here, 'app');
  let prefix = '/app';
  if (shell) {
    dir = path.join(tmp, 'rootfs');
    await cp(path.join(here, 'app'), path.join(dir, 'app'), { recursive: true });
    await mkdir(path.join(dir, 'bin'), { recursive: true });
    await copyFile(shell, path.join(dir, 'bin', 'sh'));
    await chmod(path.join(dir, 'bin', 'sh'), 0o755);
    prefix = '/';
  }
  return imageFromDirectory({
    dir,
    prefix,
    tmpDir: tmp,
    mtime: BUILD_TIME,
    modes: 'normalize',
    config: {
      Entrypoint: ['/app/hello.sh'],
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=Hello'],
      WorkingDir: '/app',
      Labels: { 'org.opencontainers.image.title': 'enclavify hello example' },
    },
  });
}

/** Gramine track: encrypt /app/data, optionally inject Gramine, emit the attestation policy and chart. */
async function gramineTrack(native: Image, out: string, tmp: string, mrenclave: string, notes: string[]): Promise<void> {
  // Encrypt /app/data (one key, named after the directory); authenticate every other file.
  const steps: Transform[] = [fileClassify({ dirs: ['/app/data'] }), encryptFS()];
  const runtimeImage = process.env.GRAMINE_RUNTIME;
  const runtimeDir = process.env.GRAMINE_RUNTIME_DIR;
  if (!runtimeImage && !runtimeDir) {
    notes.push('gramine: no Gramine installation given (GRAMINE_RUNTIME or GRAMINE_RUNTIME_DIR): runtime not injected');
  } else if (!process.env.HELLO_SHELL) {
    notes.push('gramine: the image has no /bin/sh to run hello.sh (set HELLO_SHELL=/path/to/a/static/sh): runtime not injected');
  } else {
    steps.push(injectRuntime(gramine(runtimeImage ? { runtimeImage } : { runtimeDir })));
  }
  steps.push(
    // The measurement of a signed image (RuntimeInfo) wins over the placeholder; HELLO_MRENCLAVE over both.
    {
      name: 'emitPolicy',
      apply(draft) {
        const measured = draft.state.get(RUNTIME)?.mrenclave?.length;
        const given = process.env.HELLO_MRENCLAVE !== undefined;
        return emitPolicy({ runtime: 'gramine', ...(measured && !given ? {} : { mrenclaves: [mrenclave] }), gramine: { name: 'hello-confidential:gramine' } }).apply(draft);
      },
    },
    emitChart({ image: 'hello-confidential:gramine', runtime: 'gramine', serviceName: 'hello', manifestsPath: 'manifests.yaml' }),
  );
  const result = await pipeline(native, steps, { tmpDir: tmp, created: new Date(BUILD_TIME * 1000) });
  try {
    const saved = await save(result, path.join(out, 'gramine'), 'gramine');
    console.log(`gramine image ${saved.digest}`);
    for (const f of saved.files) console.log(`  ${path.join(out, 'gramine', f)}`);
  } finally {
    await result.dispose();
  }
}

/** SCONE track: SCONE_* settings and entrypoint, CAS session with an encrypted volume, chart. */
async function sconeTrack(native: Image, out: string, tmp: string, mrenclave: string, notes: string[]): Promise<void> {
  const result = await pipeline(
    native,
    [
      injectRuntime(scone({ namespace: 'hello-example', name: 'hello', serviceName: 'hello', fork: 0 })),
      emitPolicy({ mrenclaves: [mrenclave], scone: { volumes: ['logs:/app/logs'] } }),
      emitChart({ image: 'hello-confidential:scone', encryptedVolumes: ['logs:/app/logs'], manifestsPath: 'manifests.yaml' }),
    ],
    { tmpDir: tmp, created: new Date(BUILD_TIME * 1000) },
  );
  notes.push('scone: the command is /bin/sh /app/hello.sh and /bin/sh is the enclave binary; a real SCONE deployment adds a SCONE-built shell there (binaryImage) and protects /app/data with SCONE\'s own tools');
  try {
    const saved = await save(result, path.join(out, 'scone'), 'scone');
    const policy = result.state.get(POLICY)!;
    console.log(`scone image ${saved.digest}`);
    console.log(`scone session ${policy.sessionId}`);
    for (const f of saved.files) console.log(`  ${path.join(out, 'scone', f)}`);
  } finally {
    await result.dispose();
  }
}

/** Builds and converts; returns the notes about what was skipped. */
export async function main(argv: string[]): Promise<string[]> {
  const out = outDir(argv);
  const mrenclave = process.env.HELLO_MRENCLAVE?.toLowerCase() ?? PLACEHOLDER_MRENCLAVE;
  const tmp = await mkdtemp(path.join(tmpdir(), 'enclavify-hello-'));
  const notes: string[] = [];
  try {
    await using native = await buildNative(tmp);
    const nativeWritten = await writeImage(native, `oci:${path.join(out, 'hello-native')}:latest`);
    console.log(`native image ${nativeWritten.digest}\n  ${path.join(out, 'hello-native')}`);
    await gramineTrack(native, path.join(out, 'hello'), tmp, mrenclave, notes);
    await sconeTrack(native, path.join(out, 'hello'), tmp, mrenclave, notes);
    if (mrenclave === PLACEHOLDER_MRENCLAVE) notes.push('policies name a placeholder MRENCLAVE (all zeros) that matches no enclave; set HELLO_MRENCLAVE once measured');
    for (const n of notes) console.error(`note: ${n}`);
    return notes;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
}
