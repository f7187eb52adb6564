/**
 * The CLI's conventions, command by command: help and usage errors (stderr, exit 2; --help on
 * stdout, exit 0), the dispatch table's summaries, copy's two forms, --output-dir required
 * whenever convert writes keys or artifacts (never the current directory), sign's deprecated
 * --protection-sha256, and `enclavify --help` loading no command module (as its own process).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandLoaders, loadCommands } from '../../lib/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { bbOci, scratch } from '../helpers/images.js';
import { standInRuntime } from '../runtimes/gramine-helpers.js';

const src = `oci:${bbOci}:latest`;
let work: ReturnType<typeof scratch>;
before(() => {
  work = scratch('enclavify-cli-usage-');
});
after(() => work.done());
const at = (...p: string[]) => path.join(work.dir, ...p);

test('no arguments: the help on stderr, exit 2; --help and help: on stdout, exit 0; an unknown command: stderr, exit 2', async () => {
  const none = await runCli([]);
  assert.equal(none.code, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /Usage: enclavify COMMAND/);
  for (const h of [['--help'], ['-h'], ['help']]) {
    const r = await runCli(h);
    assert.equal(r.code, 0, h[0]);
    assert.match(r.stdout, /Usage: enclavify COMMAND/);
    assert.equal(r.stderr, '');
  }
  const sub = await runCli(['help', 'copy']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /Usage: enclavify copy/);
  for (const bad of [['nope'], ['help', 'nope']]) {
    const r = await runCli(bad);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /unknown command "nope"/);
  }
  const usage = await runCli(['tree']);
  assert.equal(usage.code, 2);
  assert.equal(usage.stdout, '');
  assert.match(usage.stderr, /Run 'enclavify tree --help' for usage/);
});

test('the dispatch table\'s summaries are the commands\' own, in the same order', async () => {
  const commands = await loadCommands();
  assert.deepEqual(commandLoaders.map((c) => [c.name, c.summary]), commands.map((c) => [c.name, c.summary]));
});

test('enclavify --help (the process) loads no command module and no heavy dependency', () => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  // A loader hook that only records which modules the process evaluates.
  writeFileSync(at('hook.mjs'), 'export async function load(u, c, n) { process.stderr.write("LOADED " + u + "\\n"); return n(u, c); }\n');
  writeFileSync(at('register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(at('hook.mjs')).href)});\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', at('register.mjs'), path.join(repo, 'spec', 'helpers', 'cli-process.ts'), '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Commands:/);
  const loaded = r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
  assert.ok(loaded.some((u) => u.endsWith('/lib/cli/main.ts')), 'the hook saw the CLI load');
  const heavy = loaded.filter((u) => /\/lib\/cli\/(convert|copy|tree|verify|sign|inspect)\.ts$|\/node_modules\/(ajv|yaml|undici|smol-toml|zstd-napi|@noble)\/|\/lib\/(chart|sgx|runtimes|policy|registry|store|protect|transforms)\//.test(u));
  assert.deepEqual(heavy, []);
});

test('copy SRC DST and copy --from SRC --to DST; mixing them, or half of --from/--to, is a usage error', async () => {
  const a = await runCli(['copy', '-q', src, `oci:${at('c')}:a`]);
  assert.equal(a.code, 0, a.stderr);
  const b = await runCli(['copy', '-q', '--from', src, '--to', `oci:${at('c')}:b`]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, a.stdout);
  for (const [args, msg] of [
    [['--from', src, `oci:${at('c')}:x`], /either as arguments or as --from\/--to, not both/],
    [[src, '--to', `oci:${at('c')}:x`], /either as arguments or as --from\/--to, not both/],
    [['--from', src], /--from needs --to DST too/],
    [['--to', `oci:${at('c')}:x`], /--to needs --from SRC too/],
    [[src], /copy needs SRC and DST/],
  ] as const) {
    const r = await runCli(['copy', ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, msg);
  }
  const help = await runCli(['copy', '--help']);
  assert.match(help.stdout, /--from=SRC/);
  assert.match(help.stdout, /--to=DST/);
});

test('convert writes keys or artifacts only where --output-dir (or --keys-out) says: a usage error naming them otherwise, nothing in the current directory', async () => {
  const cwd = at('cwd');
  mkdirSync(cwd, { recursive: true });
  const was = process.cwd();
  process.chdir(cwd);
  try {
    const keys = await runCli(['convert', '--from', src, '--to', `oci:${at('o')}:k`, '--dir', '/app/data']);
    assert.equal(keys.code, 2);
    assert.match(keys.stderr, /--output-dir DIR/);
    assert.match(keys.stderr, /--keys-out FILE/);
    const rt = standInRuntime(at('gramine'));
    const runtime = await runCli(['convert', '--from', src, '--to', `oci:${at('o')}:g`, '--runtime-image', rt]);
    assert.equal(runtime.code, 2);
    assert.match(runtime.stderr, /gramine runtime writes its policy, chart and report into --output-dir DIR/);
    const scone = await runCli(['convert', '--from', src, '--to', `oci:${at('o')}:s`, '--runtime', 'scone', '--mrenclave', 'a'.repeat(64)]);
    assert.equal(scone.code, 2);
    assert.match(scone.stderr, /--output-dir/);
    assert.ok(!existsSync(at('o')), 'no image written');
    // --keys-out alone is enough when the keys are all it writes; an authenticate-only conversion writes nothing but the image.
    const k = await runCli(['convert', '-q', '--from', src, '--to', `oci:${at('o')}:k`, '--dir', '/app/data', '--keys-out', at('keys.json')]);
    assert.equal(k.code, 0, k.stderr);
    assert.ok(existsSync(at('keys.json')));
    const plain = await runCli(['convert', '-q', '--from', src, '--to', `oci:${at('o')}:p`]);
    assert.equal(plain.code, 0, plain.stderr);
    // A dry run writes nothing, and needs neither.
    const dry = await runCli(['convert', '-q', '--dry-run', '--from', src, '--to', `oci:${at('o')}:d`, '--dir', '/app/data']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(readdirSync(cwd), [], 'nothing written to the current directory');
  } finally {
    process.chdir(was);
  }
});
