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

test('--max-entries 10 refuses an image with more entries, naming the image and the limit', async () => {
  for (const cmd of [['tree', `oci:${bbOci}:latest`], ['copy', `oci:${bbOci}:latest`, 'oci:/nonexistent-enclavify-dir/x:y']]) {
    const r = await runCli([cmd[0], '--max-entries', '10', '--json', ...cmd.slice(1)]);
    assert.equal(r.code, 1, `${cmd[0]}: ${r.stderr}`);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    assert.equal(error.code, 'TOO_MANY_ENTRIES', cmd[0]);
    assert.match(error.message, /bb-oci.*more than 10 entries/, cmd[0]);
  }
  const ok = await runCli(['tree', '--max-entries', '100000', `oci:${bbOci}:latest`]);
  assert.equal(ok.stdout + '\n', expected);
  const bad = await runCli(['tree', '--max-entries', 'ten', `oci:${bbOci}:latest`]);
  assert.equal(bad.code, 2);
});

test('enclavify tree --json output parses to one entry per path of the tree', async () => {
  const r = await runCli(['tree', '--json', `oci:${bbOci}:latest`]);
  const doc = JSON.parse(r.stdout) as { entries: Array<{ path: string }> };
  assert.deepEqual(doc.entries.map((e) => e.path), expected.trim().split('\n').map((l) => l.split(' ')[0]));
});
