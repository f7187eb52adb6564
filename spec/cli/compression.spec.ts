/**
 * `--compression` and `--compression-level` of `convert`: the rewritten layer gets the asked
 * compression and media type, unchanged layers keep their blobs, the result verifies, and umoci
 * (through skopeo for zstd, which umoci 0.4 cannot read) unpacks the same tree; bad values are
 * usage errors (exit 2) and the library refuses them before any work.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { openImage, pipeline } from '../../lib/index.js';
import { EnclavifyError } from '../../lib/oci/errors.js';
import { runCli } from '../helpers/cli.js';
import { bbOci, scratch, umociUnpack } from '../helpers/images.js';
import { tool } from '../helpers/tools.js';

const s = scratch('enclavify-cli-compression-');
after(() => s.done());
const src = `oci:${bbOci}:latest`;
const umoci = tool('umoci');
const skopeo = tool('skopeo');

async function convert(name: string, extra: string[]) {
  const dir = path.join(s.dir, name);
  const out = `oci:${dir}/layout:enc`;
  const keys = path.join(dir, 'keys.json');
  const r = await runCli(['convert', '--from', src, '--to', out, '--dir', '/app/data', '--keys-out', keys, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return { dir, out, keys };
}

const layerTypes = async (ref: string) => (await (await openImage(ref)).manifest()).layers.map((l) => l.mediaType);
const layerDigests = async (ref: string) => (await (await openImage(ref)).manifest()).layers.map((l) => l.digest);

/** The unpacked tree (paths, modes, sizes) of an OCI layout, by umoci; zstd layouts re-encoded to gzip by skopeo first. */
function unpackedTree(layoutDir: string, tag: string, viaSkopeo: boolean): string {
  let ref = `${layoutDir}:${tag}`;
  if (viaSkopeo) {
    const gz = `${layoutDir}-gz`;
    execFileSync('skopeo', ['copy', '-q', '--dest-compress', '--dest-compress-format', 'gzip', `oci:${ref}`, `oci:${gz}:x`], { stdio: 'pipe' });
    ref = `${gz}:x`;
  }
  const bundle = `${layoutDir}-bundle`;
  const root = umociUnpack(ref, bundle);
  return execFileSync('find', ['.', '-printf', '%p %y %m %s\n'], { cwd: root, encoding: 'utf8' }).split('\n').sort().join('\n');
}

test('--compression zstd / none: the rewritten layer has it, unchanged layers are the source blobs, verify and umoci agree with gzip', { skip: umoci.skip || skopeo.skip }, async () => {
  const gz = await convert('gzip', []);
  const zs = await convert('zstd', ['--compression', 'zstd', '--compression-level', '19']);
  const none = await convert('none', ['--compression', 'none']);
  const srcDigests = await layerDigests(src);
  const srcTypes = await layerTypes(src);
  for (const [c, r] of [['zstd', zs], ['none', none], ['gzip', gz]] as const) {
    const types = await layerTypes(r.out);
    const digests = await layerDigests(r.out);
    assert.equal(types[0], c === 'none' ? 'application/vnd.oci.image.layer.v1.tar' : `application/vnd.oci.image.layer.v1.tar+${c}`, `${c}: layer 0 is rewritten with ${c}`);
    assert.notEqual(digests[0], srcDigests[0]);
    assert.deepEqual(digests.slice(1, 3), srcDigests.slice(1, 3), `${c}: layers 1 and 2 are the source's blobs`);
    assert.deepEqual(types.slice(1, 3), srcTypes.slice(1, 3));
    const v = await runCli(['verify', r.out, '--keys', r.keys]);
    assert.equal(v.code, 0, `${c}: ${v.stdout}${v.stderr}`);
  }
  // The same files, whatever the compression (the ciphertext differs: fresh keys per run).
  const tree = (r: { dir: string }, viaSkopeo: boolean) => unpackedTree(path.join(r.dir, 'layout'), 'enc', viaSkopeo);
  const t = tree(gz, false);
  assert.ok(t.includes('./app/data/model.bin f'), t);
  assert.equal(tree(none, false), t);
  assert.equal(tree(zs, true), t);
  // The rewritten layer's size follows the compression: none > gzip.
  const size0 = (r: { out: string }) => openImage(r.out).then((i) => i.manifest()).then((m) => m.layers[0]!.size);
  assert.ok((await size0(none)) > (await size0(gz)));
});

test('--compression-level: gzip levels 1 and 9 both verify; bad values are usage errors (exit 2)', async () => {
  const nine = await convert('gzip9', ['--compression-level', '9']);
  assert.equal((await runCli(['verify', nine.out, '--keys', nine.keys])).code, 0);
  for (const [args, msg] of [
    [['--compression', 'lz4'], /--compression: "lz4" is not gzip, zstd or none/],
    [['--compression-level', '0'], /is not a gzip level \(1-9\)/],
    [['--compression-level', '10'], /is not a gzip level \(1-9\)/],
    [['--compression', 'zstd', '--compression-level', '20'], /is not a zstd level \(1-19\)/],
    [['--compression', 'none', '--compression-level', '3'], /not with --compression none/],
    [['--compression-level', 'fast'], /is not a gzip level/],
  ] as const) {
    const r = await runCli(['convert', '--from', src, '--to', `oci:${s.dir}/bad:x`, '--dir', '/app/data', '--keys-out', path.join(s.dir, 'bad-keys.json'), ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});

test('pipeline: a bad compression option is refused (BAD_OPTIONS) before any work', async () => {
  const img = await openImage(src);
  for (const compression of [{ compression: 'gzip', level: 42 }, { compression: 'brotli' }, { compression: 'none', level: 1 }, { compression: 'zstd', level: 0.5 }]) {
    let applied = false;
    await assert.rejects(
      pipeline(img, [{ name: 'probe', apply: () => { applied = true; } }], { compression: compression as never }),
      (e: unknown) => e instanceof EnclavifyError && e.code === 'BAD_OPTIONS',
    );
    assert.equal(applied, false);
  }
});
