import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';
import { cliJson } from '../helpers/cli-schema.js';
import { bbArchive, bbOci, bbZstd, expectedTree } from '../helpers/images.js';

const expected = readFileSync(expectedTree, 'utf8');

for (const [label, ref] of [
  ['OCI gzip', `oci:${bbOci}:latest`],
  ['OCI zstd', `oci:${bbZstd}`],
  ['docker-archive', `docker-archive:${bbArchive}`],
  ['docker-archive by name', `docker-archive:${bbArchive}:bb-fixture:latest`],
]) {
  test(`enclavify tree on ${label} equals the tree umoci sees`, async () => {
    const r = await runCli(['tree', ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout + '\n', expected);
  });
}

test('enclavify tree --json gives entries with paths, types and digests', async () => {
  const r = await runCli(['tree', '--json', `oci:${bbOci}:latest`]);
  assert.equal(r.code, 0, r.stderr);
  const doc = cliJson(r.stdout) as { image: string; digest: string; entries: Array<{ path: string; type: string; mode: string; sha256?: string }> };
  assert.match(doc.digest, /^sha256:/);
  const entries = doc.entries;
  assert.equal(entries.find((e) => e.path === 'tmp')?.mode, '1777');
  const secret = entries.find((e) => e.path === 'app/data/secret.txt');
  assert.equal(secret?.type, 'file');
  assert.equal(secret?.sha256, 'a81d87fcee567c9365a5354ae95ca03a661bb4e7a2d4acc9a10fda6af1886bb9');
});

test('a docker archive with an unknown image name fails naming the images it has', async () => {
  const r = await runCli(['tree', `docker-archive:${bbArchive}:nope:latest`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no image named nope:latest \(images: docker\.io\/library\/bb-fixture:latest\)/);
});
