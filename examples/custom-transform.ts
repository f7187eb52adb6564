/**
 * A user-written transform: stamps a build-info file into a new layer and a label into the config.
 * Run: node --import tsx examples/custom-transform.ts SRC DST
 *   e.g. node --import tsx examples/custom-transform.ts oci:../shared/fixtures/images/bb-oci:latest oci:/tmp/stamped:latest
 */
import { openImage, pipeline, writeImage, type Transform } from '../lib/index.js';

/** Adds `/etc/build-info.json` and the label `org.example.stamp`. */
export function stamp(info: Record<string, string>): Transform {
  return {
    name: 'stamp',
    async apply(draft) {
      const content = Buffer.from(JSON.stringify(info, null, 2) + '\n');
      const now = draft.created.getTime() / 1000;
      const layer = await draft.buildLayer([
        { entry: { path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: now, size: 0 } },
        { entry: { path: 'etc/build-info.json', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: now, size: content.length }, content },
      ], 'stamp layer');
      draft.addLayer(layer, { createdBy: 'examples/custom-transform.ts stamp', comment: 'build info' });
      const c = (draft.config.config ??= {});
      c.Labels = { ...c.Labels, 'org.example.stamp': info.build ?? 'unknown' };
      draft.report.stamp = { file: '/etc/build-info.json', bytes: content.length };
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [src, dst] = process.argv.slice(2);
  if (!src || !dst) {
    console.error('usage: custom-transform.ts SRC DST');
    process.exit(2);
  }
  const out = await pipeline(await openImage(src), [stamp({ build: new Date().toISOString() })]);
  try {
    const res = await writeImage(out.image, dst);
    console.log(res.digest);
  } finally {
    await out.dispose();
  }
}
