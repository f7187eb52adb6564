import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { imageFromDirectory, writeImage, type Image } from '../../lib/index.js';
import { RootFs } from '../../lib/fs/merged.js';
import { diskTree } from '../helpers/disk-tree.js';
import { scratch, umociUnpack } from '../helpers/images.js';
import { ociSchemaErrors } from '../helpers/oci-schema.js';
import { tool } from '../helpers/tools.js';

/** A small tree with the interesting kinds of entries. */
function makeTree(root: string): void {
  mkdirSync(path.join(root, 'app/data'), { recursive: true });
  mkdirSync(path.join(root, 'app/empty'));
  mkdirSync(path.join(root, 'etc'));
  writeFileSync(path.join(root, 'app/hello.sh'), '#!/bin/sh\necho hello\n');
  chmodSync(path.join(root, 'app/hello.sh'), 0o755);
  writeFileSync(path.join(root, 'app/data/secret.txt'), 'the secret\n');
  chmodSync(path.join(root, 'app/data/secret.txt'), 0o600);
  writeFileSync(path.join(root, 'app/data/big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
  chmodSync(path.join(root, 'app/data/big.bin'), 0o644);
  linkSync(path.join(root, 'app/data/secret.txt'), path.join(root, 'app/data/secret-hardlink.txt'));
  symlinkSync('hello.sh', path.join(root, 'app/hello'));
  writeFileSync(path.join(root, 'etc/ünïcødé-and-a-rather-long-name-' + 'x'.repeat(90) + '.conf'), 'k=v\n');
  chmodSync(path.join(root, 'etc/ünïcødé-and-a-rather-long-name-' + 'x'.repeat(90) + '.conf'), 0o644);
}

const dropOwner = (tree: string) => tree.split('\n').map((l) => l.replace(/ \d+:\d+( |$)/, '$1')).join('\n');

async function view(img: Image): Promise<RootFs> {
  return RootFs.scan((await img.layers()).map((l) => ({ name: l.name, open: () => l.uncompressed() })));
}

test('imageFromDirectory: umoci unpacks exactly the directory; manifest, config and layout are schema-valid', { skip: tool('umoci').skip }, async () => {
  const s = scratch();
  try {
    const src = path.join(s.dir, 'src');
    makeTree(src);
    const config = { Entrypoint: ['/app/hello.sh'], Cmd: ['--loud'], Env: ['PATH=/bin', 'GREETING=hi'], WorkingDir: '/app', ExposedPorts: { '8080/tcp': {} } };
    const img = await imageFromDirectory({ dir: src, config, tmpDir: s.dir, mtime: 1700000000 });
    await writeImage(img, `oci:${s.dir}/layout:v1`);
    const rootfs = umociUnpack(`${s.dir}/layout:v1`, path.join(s.dir, 'bundle'));
    assert.equal(dropOwner(diskTree(rootfs)), dropOwner(diskTree(src)));
    assert.equal(statSync(path.join(rootfs, 'app/hello.sh')).mtimeMs, 1700000000 * 1000);

    const c = await img.config();
    assert.deepEqual(c.config, config);
    assert.equal(c.created, '2023-11-14T22:13:20.000Z');
    assert.equal(c.os, 'linux');
    assert.deepEqual(ociSchemaErrors('config', c), []);
    assert.deepEqual(ociSchemaErrors('image-manifest', await img.manifest()), []);
    assert.deepEqual(ociSchemaErrors('image-index', JSON.parse(readFileSync(path.join(s.dir, 'layout/index.json'), 'utf8'))), []);
    assert.deepEqual(ociSchemaErrors('image-layout', JSON.parse(readFileSync(path.join(s.dir, 'layout/oci-layout'), 'utf8'))), []);
    // owner root by default, whatever the files' owners on disk
    const fs = await view(img);
    for (const e of fs.entries()) assert.deepEqual([e.path, e.uid, e.gid, e.mtime], [e.path, 0, 0, 1700000000]);
    assert.equal(fs.get('app/data/secret-hardlink.txt')!.nlink, 2);
  } finally {
    s.done();
  }
});

test('imageFromDirectory is deterministic, and its options do what they say', async () => {
  const s = scratch();
  try {
    const src = path.join(s.dir, 'src');
    makeTree(src);
    mkdirSync(path.join(s.dir, 't1'));
    mkdirSync(path.join(s.dir, 't2'));
    const a = await imageFromDirectory({ dir: src, tmpDir: path.join(s.dir, 't1'), config: { Cmd: ['/app/hello.sh'] } });
    const b = await imageFromDirectory({ dir: src, tmpDir: path.join(s.dir, 't2'), config: { Cmd: ['/app/hello.sh'] } });
    assert.equal(await a.digest(), await b.digest());
    assert.equal((await a.config()).created, '1970-01-01T00:00:00.000Z');

    const other = await imageFromDirectory({ dir: src, tmpDir: s.dir, mtime: new Date('2024-01-01T00:00:00Z'), prefix: '/srv/site', owner: { uid: 1000, gid: 100 }, modes: 'normalize', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const fs = await view(other);
    assert.equal(fs.get('srv')!.type, 'dir');
    const secret = fs.get('srv/site/app/data/secret.txt')!;
    assert.deepEqual([secret.mode, secret.uid, secret.gid, secret.mtime], [0o644, 1000, 100, 1704067200]);
    assert.equal(fs.get('srv/site/app/hello.sh')!.mode, 0o755);
    assert.equal(fs.get('srv/site/app/hello')!.linkname, 'hello.sh');
    const c = await other.config();
    assert.deepEqual([c.architecture, c.variant], ['arm64', 'v8']);

    const preserved = await imageFromDirectory({ dir: src, tmpDir: s.dir, owner: 'preserve' });
    assert.equal((await view(preserved)).get('app/hello.sh')!.uid, process.getuid!());
  } finally {
    s.done();
  }
});

test('imageFromDirectory: refuses a missing directory, a file, and a prefix with ..', async () => {
  const s = scratch();
  try {
    writeFileSync(path.join(s.dir, 'f'), 'x');
    await assert.rejects(imageFromDirectory({ dir: path.join(s.dir, 'nope'), tmpDir: s.dir }), /no such directory/);
    await assert.rejects(imageFromDirectory({ dir: path.join(s.dir, 'f'), tmpDir: s.dir }), /is not a directory/);
    await assert.rejects(imageFromDirectory({ dir: s.dir, tmpDir: s.dir, prefix: '/a/../b' }), /\.\./);
  } finally {
    s.done();
  }
});
