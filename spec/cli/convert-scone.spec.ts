/** `convert --runtime scone`: the command as the kernel starts it, and --binary checked against it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { runCli } from '../helpers/cli.js';
import { bbOci, scratch } from '../helpers/images.js';

test('convert --runtime scone: a --binary that is not the #! interpreter is a usage error that names the right one (exit 2, nothing written)', async () => {
  const s = scratch();
  try {
    const r = await runCli(['convert', '-q', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/out:x`, '--runtime', 'scone', '--binary', '/app/setuid-tool', '--output-dir', path.join(s.dir, 'art')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\/app\/server\.sh is a script; the kernel runs it with \/bin\/sh \(#!\/bin\/sh\), which is \/bin\/busybox/);
    assert.match(r.stderr, /Give --binary \/bin\/busybox/);
    assert.ok(!existsSync(path.join(s.dir, 'out')));

    // the default: the interpreter's file is the binary, argv[0] stays /bin/sh; SCONE_FORK=0 warns (a shell)
    const ok = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/ok:x`, '--runtime', 'scone', '--namespace', 'ns', '--name', 'bb', '--mrenclave', 'e'.repeat(64), '--output-dir', path.join(s.dir, 'art')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /warning: scone: SCONE_FORK=0 .*looks like it forks \(it is a shell \(sh\)/);
    const session = YAML.parse(readFileSync(path.join(s.dir, 'art', 'policy', 'session.yaml'), 'utf8'));
    assert.equal(session.services[0].command, '/bin/sh /app/server.sh');
    const report = JSON.parse(readFileSync(path.join(s.dir, 'art', 'report.json'), 'utf8'));
    assert.equal(report.injectRuntime.binary, '/bin/busybox');
    assert.deepEqual(report.injectRuntime.entrypoint, ['/bin/sh', '/app/server.sh']);
    // --fork 1: no warning
    const fork = await runCli(['convert', '--from', `oci:${bbOci}:latest`, '--to', `oci:${s.dir}/fork:x`, '--runtime', 'scone', '--fork', '1', '--output-dir', path.join(s.dir, 'art2')]);
    assert.equal(fork.code, 0, fork.stderr);
    assert.doesNotMatch(fork.stderr, /looks like it forks/);
  } finally {
    s.done();
  }
});
