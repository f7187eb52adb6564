/**
 * Seed inputs of the fuzzer: the fixture image's real layers (tars written by umoci, file
 * contents cut to a few KB so that an iteration stays cheap) and its JSON documents, plus small
 * generated archives when the fixtures are not there.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { archive, BLOCK, fileEntry, fixChecksum, header, octal, paxHeader } from './tar-build.js';

const fixtures = path.resolve(fileURLToPath(new URL('../', import.meta.url)), '../shared/fixtures/images/bb-oci');

export interface Seeds {
  tars: Buffer[];
  json: { manifest: string; config: string; index: string };
  origin: 'fixtures' | 'generated';
}

/** The tar with every file's content cut to at most `max` bytes (headers fixed). */
export function shrinkTar(tar: Buffer, max = 4096): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  while (off + BLOCK <= tar.length) {
    const h = Buffer.from(tar.subarray(off, off + BLOCK));
    if (h.every((b) => b === 0)) break;
    const s = h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim();
    const size = /^[0-7]+$/.test(s) ? parseInt(s, 8) : 0;
    const t = String.fromCharCode(h[156]);
    const hasData = t === '0' || t === '\0' || t === '7' || t === 'x' || t === 'g' || t === 'L' || t === 'K';
    const data = hasData ? tar.subarray(off + BLOCK, off + BLOCK + size) : Buffer.alloc(0);
    const keep = t === 'x' || t === 'g' || t === 'L' || t === 'K' ? data : data.subarray(0, max);
    if (keep.length !== data.length) {
      octal(keep.length, 12).copy(h, 124);
      fixChecksum(h);
    }
    parts.push(h, keep, Buffer.alloc((BLOCK - (keep.length % BLOCK)) % BLOCK));
    off += BLOCK + (hasData ? Math.ceil(size / BLOCK) * BLOCK : 0);
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

function generated(): Buffer[] {
  return [
    archive(header({ name: 'app/', type: '5', mode: 0o755 }), fileEntry('app/a.txt', 'hello'), header({ name: 'app/l', type: '2', linkname: 'a.txt' }), header({ name: 'app/h', type: '1', linkname: 'app/a.txt' })),
    archive(paxHeader({ path: 'app/' + 'long-name-'.repeat(15), 'SCHILY.xattr.user.k': Buffer.from([0, 1, 2]) }), fileEntry('x', 'data'), fileEntry('app/.wh.a.txt', ''), header({ name: 'dir/.wh..wh..opq' })),
  ];
}

export function loadSeeds(): Seeds {
  const index = path.join(fixtures, 'index.json');
  if (!existsSync(index)) {
    return {
      tars: generated(),
      json: {
        manifest: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:' + '0'.repeat(64), size: 2 }, layers: [] }),
        config: JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['A=b'], Entrypoint: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [] }, history: [{ created_by: 'x' }] }),
        index: JSON.stringify({ schemaVersion: 2, manifests: [] }),
      },
      origin: 'generated',
    };
  }
  const blob = (d: string) => readFileSync(path.join(fixtures, 'blobs', ...d.split(':')));
  const idx = readFileSync(index, 'utf8');
  const mdesc = (JSON.parse(idx) as { manifests: Array<{ digest: string }> }).manifests[0];
  const manifest = blob(mdesc.digest).toString('utf8');
  const m = JSON.parse(manifest) as { config: { digest: string }; layers: Array<{ digest: string }> };
  const config = blob(m.config.digest).toString('utf8');
  const tars = m.layers.map((l) => shrinkTar(gunzipSync(blob(l.digest))));
  return { tars: [...tars, ...generated()], json: { manifest, config, index: idx }, origin: 'fixtures' };
}
