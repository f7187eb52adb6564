/**
 * The image of a warm reconversion: the source with its top layer rebuilt with one changed file
 * (an /app edit), its base layers untouched (same blobs, same digests).
 *
 * Alone:  node --import tsx bench/variant.ts oci:SRC:TAG oci:DST:TAG [PATH] [TEXT]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openImage, pipeline, writeImage, type LayerItem, type Transform } from '../lib/index.js';
import { readTar } from '../lib/fs/tar-read.js';

/** Writes `src` with the file `file` (in the top layer; normalised path) replaced by `text`, to `dst`. */
export async function writeVariant(src: string, dst: string, file = 'app/app.py', text = `print("changed at ${new Date().toISOString()}")\n`): Promise<void> {
  const changeTop: Transform = {
    name: 'variant',
    async apply(d) {
      const top = d.layers.length - 1;
      const items: LayerItem[] = [];
      let found = false;
      for await (const { entry, content } of readTar(await d.layers[top].uncompressed(), { source: d.layers[top].name })) {
        if (entry.path === file && content) {
          for await (const c of content) void c;
          const data = Buffer.from(text);
          items.push({ entry: { ...entry, size: data.length }, content: data });
          found = true;
        } else if (content) {
          const parts: Buffer[] = [];
          for await (const c of content) parts.push(c as Buffer);
          items.push({ entry, content: Buffer.concat(parts) });
        } else items.push({ entry });
      }
      if (!found) throw new Error(`variant: ${file} is not a file of the top layer`);
      d.replaceLayer(top, await d.buildLayer(items, 'changed top layer'), `${file} changed`);
    },
  };
  await using out = await pipeline(await openImage(src), [changeTop]);
  await writeImage(out.image, dst);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [src, dst, file, text] = process.argv.slice(2);
  if (!src || !dst) throw new Error('usage: bench/variant.ts oci:SRC:TAG oci:DST:TAG [PATH] [TEXT]');
  await writeVariant(src, dst, file, text);
}
