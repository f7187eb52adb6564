import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRef, formatRef } from '../../lib/store/ref.js';

test('oci references: directory, tag, digest', () => {
  assert.deepEqual(parseRef('oci:/tmp/x'), { transport: 'oci', dir: '/tmp/x' });
  assert.deepEqual(parseRef('oci:/tmp/x:latest'), { transport: 'oci', dir: '/tmp/x', tag: 'latest' });
  const d = 'sha256:' + 'a'.repeat(64);
  assert.deepEqual(parseRef(`oci:/tmp/x@${d}`), { transport: 'oci', dir: '/tmp/x', digest: d });
  assert.equal(formatRef(parseRef('oci:rel/dir:v1.2')), 'oci:rel/dir:v1.2');
});

test('docker-archive references with and without NAME:TAG', () => {
  assert.deepEqual(parseRef('docker-archive:/a.tar'), { transport: 'docker-archive', file: '/a.tar' });
  assert.deepEqual(parseRef('docker-archive:/a.tar:bb-fixture:latest'), { transport: 'docker-archive', file: '/a.tar', name: 'bb-fixture:latest' });
  assert.deepEqual(parseRef('docker-archive:a.tar:docker.io/library/bb:1'), { transport: 'docker-archive', file: 'a.tar', name: 'docker.io/library/bb:1' });
});

test('registry references are parsed and normalised (Docker Hub short forms); malformed ones show the accepted forms', () => {
  assert.deepEqual(parseRef('docker://registry.example/app:1'), { transport: 'docker', reference: 'registry.example/app:1', registry: 'registry.example', repository: 'app', tag: '1' });
  assert.deepEqual(parseRef('docker://alpine'), { transport: 'docker', reference: 'alpine', registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' });
  assert.equal(formatRef(parseRef('docker://index.docker.io/gramineproject/gramine:1.9')), 'docker://registry-1.docker.io/gramineproject/gramine:1.9');
  assert.throws(() => parseRef('docker://Reg.example/UPPER'), /invalid image reference .*is not a valid repository name[^]*accepted forms/);
});

test('malformed references name the problem and show the accepted forms', () => {
  for (const bad of ['nothing', 'oci:', 'oci:/x:bad tag', 'oci:/x@sha256:zz', 'docker-archive:', 'docker-archive:/a.tar:notag', 'ftp:/x', 'docker:/x']) {
    assert.throws(() => parseRef(bad), (e: Error) => {
      assert.match(e.message, /invalid image reference/);
      assert.match(e.message, /oci:DIR\[:TAG\]/);
      assert.match(e.message, /docker-archive:FILE/);
      return true;
    }, bad);
  }
});
