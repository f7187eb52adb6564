// A consumer of the packed `enclavify` (ESM): type-checked under strict + exactOptionalPropertyTypes
// by spec/package/consumer.spec.ts, compiled, and run against the fixture images.
// argv: BB_OCI BB_ZSTD_OCI WORK_DIR
import { readdirSync } from 'node:fs';
import path from 'node:path';
import {
  EnclavifyError,
  ERROR_CODES,
  PROTECTION,
  encryptFS,
  fileClassify,
  openImage,
  pipeline,
  verify,
  writeImage,
  type ErrorCode,
  type PipelineOptions,
  type Transform,
} from 'enclavify';

const [bbOci, bbZstd, work] = process.argv.slice(2) as [string, string, string];
const result: Record<string, unknown> = {};

// A custom transform: reads one file of the merged view, adds a layer and a label.
const read: Record<string, string> = {};
const stamp: Transform = {
  name: 'stamp',
  async apply(draft) {
    const fs = await draft.rootfs();
    for (const [p, bytes] of await fs.readFiles(['/app/data/secret.txt'])) read[p] = Buffer.from(bytes).toString('utf8');
    const content = Buffer.from('{"built":"consumer"}\n');
    const now = draft.created.getTime() / 1000;
    const layer = await draft.buildLayer([
      { entry: { path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: now, size: 0 } },
      { entry: { path: 'etc/stamp.json', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: now, size: content.length }, content },
    ], 'stamp layer');
    draft.addLayer(layer, { createdBy: 'consumer stamp' });
    const c = (draft.config.config ??= {});
    c.Labels = { ...c.Labels, 'org.example.stamp': 'yes' };
  },
};

// Open, pipeline (custom transform, classify, encrypt), write, verify; `await using` disposes the
// pipeline's staging directory (inside stagingDir) at the end of the block.
const stagingDir = path.join(work, 'staging');
const options: PipelineOptions = { tmpDir: stagingDir, signal: undefined, onProgress: undefined };
{
  await using out = await pipeline(await openImage(`oci:${bbOci}:latest`), [stamp, fileClassify({ dirs: ['/app/data'] }), encryptFS()], options);
  result.stagedWhileOpen = readdirSync(stagingDir).length;
  const written = await writeImage(out.image, `oci:${path.join(work, 'layout')}:enc`);
  result.written = typeof written === 'object';
  const keys = out.artifacts.get('keys.json');
  const protection = out.state.get(PROTECTION);
  result.regions = protection?.keys.length ?? 0;
  const v = await verify(await openImage(`oci:${path.join(work, 'layout')}:enc`), { keys: String(keys?.data) });
  result.verifyOk = v.ok;
  result.findings = v.findings.map((f) => f.code);
  const config = await (await openImage(`oci:${path.join(work, 'layout')}:enc`)).config();
  result.label = config.config?.Labels?.['org.example.stamp'];
}
result.stagedAfterDispose = readdirSync(stagingDir).length;
result.read = read;

// Cancellation: aborted while the pipeline runs -> ABORTED.
const ac = new AbortController();
const abortIt: Transform = { name: 'abort', apply: () => ac.abort() };
try {
  await pipeline(await openImage(`oci:${bbOci}:latest`), [abortIt, stamp], { signal: ac.signal, tmpDir: stagingDir });
  result.aborted = 'not aborted';
} catch (e) {
  const code: ErrorCode | undefined = e instanceof EnclavifyError ? e.code : undefined;
  result.aborted = code;
  result.abortedExit = code && ERROR_CODES[code].exit;
}
result.stagedAfterAbort = readdirSync(stagingDir).length;

// zstd layers read without the addon (installed with --ignore-scripts, so never built); zstd
// output names the fix.
{
  let zstdRead = '';
  const peek: Transform = {
    name: 'peek',
    async apply(draft) {
      const fs = await draft.rootfs();
      zstdRead = Buffer.from((await fs.readFiles(['/app/data/secret.txt'])).values().next().value ?? new Uint8Array()).toString('utf8');
      await draft.buildLayer([], 'empty');
    },
  };
  // Reading needs no addon; asking for zstd output fails before any work, naming the fix.
  await (await pipeline(await openImage(`oci:${bbZstd}`), [peek], { tmpDir: stagingDir })).dispose();
  try {
    await pipeline(await openImage(`oci:${bbZstd}`), [peek], { tmpDir: stagingDir, compression: { compression: 'zstd' } });
    result.zstdOutput = 'written';
  } catch (e) {
    result.zstdOutput = e instanceof EnclavifyError ? e.code : String(e);
    result.zstdMessage = (e as Error).message;
  }
  result.zstdRead = zstdRead;
}

console.log(JSON.stringify(result));
