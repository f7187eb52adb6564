/**
 * Every command's `--json` output against schemas/cli-result.schema.json, on the bundled fixture
 * (bb-fixture) and the stand-in Gramine runtime: copy (both forms), tree, convert (files only,
 * Gramine, SCONE, CoCo, dry run, the rerun of a completed conversion), sign, verify (intact, with
 * findings, encrypted layers not opened), inspect, and the error object of a failed command.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { cliJson, cliResultErrors } from '../helpers/cli-schema.js';
import { bbOci, scratch } from '../helpers/images.js';
import { standInRuntime, testKey } from '../runtimes/gramine-helpers.js';

const src = `oci:${bbOci}:latest`;
let work: ReturnType<typeof scratch>;
before(() => {
  work = scratch('enclavify-cli-json-');
});
after(() => work.done());
const at = (...p: string[]) => path.join(work.dir, ...p);

async function json(args: string[], code = 0): Promise<{ stdout: string; stderr: string }> {
  const r = await runCli([...args, '--json']);
  assert.equal(r.code, code, r.stderr + r.stdout);
  return r;
}

test('copy --json (SRC DST, and --from/--to): the copy definition, destination named', async () => {
  const a = cliJson((await json(['copy', '-q', src, `oci:${at('copy')}:a`])).stdout, 'copy');
  assert.equal(a.destination, `oci:${at('copy')}:a`);
  const b = cliJson((await json(['copy', '-q', '--from', src, '--to', `oci:${at('copy')}:b`])).stdout, 'copy');
  assert.equal(b.destination, `oci:${at('copy')}:b`);
  assert.equal(b.digest, a.digest, 'the same copy either way');
});

test('tree --json: the tree definition', async () => {
  const t = cliJson((await json(['tree', src])).stdout, 'tree');
  assert.ok(t.entries.some((e: { path: string }) => e.path === 'app/data/secret.txt'));
});

test('convert --json (files only), its rerun, --dry-run; verify --json with keys, without, with findings', async () => {
  const args = ['convert', '-q', '--from', src, '--to', `oci:${at('conv')}:enc`, '--dir', '/app/data', '--output-dir', at('conv-out')];
  const c = cliJson((await json(args)).stdout, 'convert');
  assert.equal(c.destination, `oci:${at('conv')}:enc`);
  assert.equal(c.keysFile, at('conv-out', 'keys.json'));
  assert.equal(c.runtime, null);
  const again = cliJson((await json(args)).stdout, 'convertAlreadyDone');
  assert.equal(again.digest, c.digest);
  const dry = cliJson((await json(['convert', '-q', '--dry-run', '--from', src, '--to', `oci:${at('conv')}:dry`, '--dir', '/app/data'])).stdout, 'convertDryRun');
  assert.equal(dry.destination, `oci:${at('conv')}:dry`);
  cliJson((await json(['verify', `oci:${at('conv')}:enc`, '--keys', c.keysFile])).stdout, 'verify');
  cliJson((await json(['verify', `oci:${at('conv')}:enc`])).stdout, 'verify');
  const bad = cliJson((await json(['verify', src], 3)).stdout, 'verify');
  assert.equal(bad.ok, false);
  cliJson((await json(['inspect', `oci:${at('conv')}:enc`])).stdout, 'inspect');
});

test('convert --json with the Gramine runtime; sign --json (--manifest-sha256); inspect --json of the signed image', async () => {
  const rt = standInRuntime(at('gramine'));
  const c = cliJson((await json(['convert', '-q', '--from', src, '--to', `oci:${at('g')}:unsigned`, '--dir', '/app/data', '--runtime-image', rt, '--output-dir', at('g-out')])).stdout, 'convert');
  assert.equal(c.runtime, 'gramine');
  const pin = c.report.encryptFS.manifestSha256 as string;
  const s = cliJson((await json(['sign', '-q', `oci:${at('g')}:unsigned`, '--sign-key', testKey, '--manifest-sha256', pin, '--to', `oci:${at('g')}:signed`])).stdout, 'sign');
  assert.equal(s.destination, `oci:${at('g')}:signed`);
  const i = cliJson((await json(['inspect', `oci:${at('g')}:signed`])).stdout, 'inspect');
  assert.equal(i.gramine.sigstruct.mrenclave, s.mrenclave);
});

test('convert --json with SCONE (session written) and CoCo (Trustee bundle, encrypted layers); verify --json of layers it cannot open', async () => {
  const sc = cliJson((await json(['convert', '-q', '--from', src, '--to', `oci:${at('s')}:scone`, '--runtime', 'scone', '--namespace', 'ns', '--name', 'bb', '--mrenclave', 'a'.repeat(64), '--output-dir', at('s-out')])).stdout, 'convert');
  assert.equal(sc.sessionId, 'ns/bb');
  const co = cliJson((await json(['convert', '-q', '--from', src, '--to', `oci:${at('c')}:coco`, '--runtime', 'coco', '--tee', 'tdx', '--kbs', 'https://kbs.example:8080', '--output-dir', at('c-out')])).stdout, 'convert');
  assert.equal(co.destination, `oci:${at('c')}:coco`);
  const closed = cliJson((await json(['verify', `oci:${at('c')}:coco`])).stdout, 'verifyLayersClosed');
  assert.equal(typeof closed.protection, 'string');
});

test('copy --json with ocicrypt (jwe); an error with --json: the error definition', async () => {
  const k = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = at('pub.pem');
  writeFileSync(pub, k.publicKey.export({ type: 'spki', format: 'pem' }));
  cliJson((await json(['copy', '-q', '--encryption-key', `jwe:${pub}`, src, `oci:${at('jwe')}:x`])).stdout, 'copy');
  const usage = cliJson((await json(['convert', '--from', src, '--to', `oci:${at('never')}:x`, '--dir', '/app/data'], 2)).stdout, 'error');
  assert.equal(usage.error.code, 'USAGE');
  const failed = cliJson((await json(['tree', `oci:${at('nowhere')}:x`], 1)).stdout, 'error');
  assert.match(failed.error.code, /^[A-Z_]+$/);
});

test('the schema refuses what is not a command result (a destination under another name, an unknown key)', () => {
  const copy = { digest: `sha256:${'0'.repeat(64)}`, size: 1, mediaType: 'application/vnd.oci.image.manifest.v1+json', destination: 'oci:x:y' };
  assert.deepEqual(cliResultErrors(copy, 'copy'), []);
  const { destination, ...rest } = copy;
  assert.notDeepEqual(cliResultErrors({ ...rest, reference: destination }, 'copy'), []);
  assert.notDeepEqual(cliResultErrors({ ...rest, reference: destination }), []);
  assert.notDeepEqual(cliResultErrors({ ...copy, extra: 1 }), []);
});
