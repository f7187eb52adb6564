/**
 * The package as a consumer gets it: `npm pack` (which builds dist/ through `prepare`), the
 * tarball installed into a fresh project with `--ignore-scripts` (so the optional zstd-napi addon
 * is never built), consumer scripts (spec/package/consumer/: ESM `.mts` and CommonJS `.cts` with
 * `require`) type-checked with tsc under `strict` and `exactOptionalPropertyTypes`, compiled and
 * run: open, read a file, pipeline with a custom transform, write, verify, cancel through an
 * AbortSignal, `await using`, zstd layers read without the addon; under `node --enable-source-maps`
 * a stack trace from inside the library names the lib/*.ts lines; the bin answers --help without
 * the ES module loader loading any file of the package. Sizes and times are measured by
 * the bench (bench/startup.ts), not asserted here, except the tarball's size budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bbOci, bbZstd } from '../helpers/images.js';
import { repoRoot } from '../helpers/tools.js';

const here = path.join(repoRoot, 'spec', 'package', 'consumer');
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

/** The environment of npm and node children: without the variables `npm test` sets for itself. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS') env[k] = v;
  return env;
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Relative Markdown links of a packed document: each must name a file of the package. */
function relativeLinks(text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l));
}

test('the packed package installs with --ignore-scripts, type-checks for ESM and require() consumers, and runs', async () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-consumer-'));
  try {
    // npm pack runs `prepare` (npm run build) first.
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tmp], repoRoot)) as Array<{ filename: string; size: number; files: Array<{ path: string }> }>;
    const { filename, size, files } = packed[0]!;
    assert.ok(size < 500_000, `tarball ${size} bytes: over the 500 kB budget`);
    const paths = new Set(files.map((f) => f.path));
    for (const p of ['LICENSE', 'README.md', 'package.json', 'bin/enclavify.cjs', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/store/ref.js.map', 'schemas/keys.schema.json', 'docs/api.md']) {
      assert.ok(paths.has(p), `${p} is in the package`);
    }
    for (const p of paths) assert.match(p, /^(LICENSE|README\.md|package\.json|bin\/|dist\/|schemas\/|docs\/)/, `${p} should not be shipped`);
    assert.match(readFileSync(path.join(repoRoot, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004[\s\S]*END OF TERMS AND CONDITIONS/);
    // Every relative link of the shipped README and docs resolves inside the package.
    for (const doc of [...paths].filter((p) => p.endsWith('.md'))) {
      for (const link of relativeLinks(readFileSync(path.join(repoRoot, doc), 'utf8'))) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(doc), link)).replace(/\/$/, '');
        assert.ok(paths.has(target) || [...paths].some((p) => p.startsWith(`${target}/`)), `${doc}: link ${link} -> ${target} is not in the package`);
      }
    }

    const project = path.join(tmp, 'project');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    // Dependencies from the npm cache when it has them (`--prefer-offline`), else the registry.
    run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, filename)], project);
    // The addon was not built: zstd must work without it.
    assert.notEqual(spawnSync(process.execPath, ['-e', "require('zstd-napi')"], { cwd: project, env: cleanEnv() }).status, 0, 'zstd-napi should not load after --ignore-scripts');

    for (const f of ['esm.mts', 'cjs.cts']) cpSync(path.join(here, f), path.join(project, f));
    const tsconfig = JSON.parse(readFileSync(path.join(here, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    tsconfig.compilerOptions.typeRoots = [path.join(repoRoot, 'node_modules', '@types')];
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    run(process.execPath, [tsc, '-p', project], project);

    const work = path.join(tmp, 'work');
    mkdirSync(path.join(work, 'staging'), { recursive: true });
    const esm = JSON.parse(run(process.execPath, [path.join(project, 'out', 'esm.mjs'), bbOci, bbZstd, work], project)) as Record<string, unknown>;
    assert.equal(esm.verifyOk, true, JSON.stringify(esm));
    assert.deepEqual(esm.findings, []);
    assert.equal(esm.written, true);
    assert.ok((esm.regions as number) >= 1);
    assert.equal(esm.label, 'yes');
    assert.equal(esm.stagedWhileOpen, 1, 'the pipeline stages its layers in a directory of its own');
    assert.equal(esm.stagedAfterDispose, 0, '`await using` removed the staging directory');
    assert.equal(esm.aborted, 'ABORTED');
    assert.equal(esm.abortedExit, 1);
    assert.equal(esm.stagedAfterAbort, 0);
    const read = Object.values(esm.read as Record<string, string>);
    assert.equal(read.length, 1);
    assert.ok(read[0]!.length > 0);
    assert.equal(esm.zstdRead, read[0], 'the zstd fixture read through fzstd gives the same file');
    assert.equal(esm.zstdOutput, 'ZSTD_UNAVAILABLE');
    assert.match(esm.zstdMessage as string, /npm install zstd-napi/);

    const cjs = JSON.parse(run(process.execPath, [path.join(project, 'out', 'cjs.cjs'), bbOci], project)) as Record<string, unknown>;
    assert.equal(cjs.layers, 3);
    assert.match(cjs.digest as string, /^sha256:[0-9a-f]{64}$/);
    assert.equal(cjs.transport, 'oci');
    assert.equal(cjs.badRef, 'BAD_REFERENCE');
    assert.equal(cjs.codes, true);
    // The shipped source maps: an error thrown inside the library, under --enable-source-maps, names
    // the lines of lib/store/ref.ts where it was made and thrown (the sources are not shipped).
    const refSource = readFileSync(path.join(repoRoot, 'lib', 'store', 'ref.ts'), 'utf8').split('\n');
    const made = refSource.findIndex((l) => l.startsWith('function bad(')) + 2;
    const thrown = refSource.findIndex((l) => l.includes("throw bad(ref, 'no directory')")) + 1;
    assert.ok(made > 1 && thrown > 0, 'lib/store/ref.ts still has bad() and the "no directory" throw');
    const script = "import { parseRef } from 'enclavify'; try { parseRef('oci:'); } catch (e) { console.log(e.stack); }";
    const mapped = run(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', script], project);
    const frames = mapped.split('\n').filter((l) => /^\s+at /.test(l));
    assert.match(frames[0] ?? '', new RegExp(`^\\s+at bad \\(.*/node_modules/enclavify/lib/store/ref\\.ts:${made}:\\d+\\)$`), mapped);
    assert.match(frames[1] ?? '', new RegExp(`^\\s+at (Module\\.)?parseRef \\(.*/node_modules/enclavify/lib/store/ref\\.ts:${thrown}:\\d+\\)$`), mapped);
    assert.match(run(process.execPath, ['--input-type=module', '-e', script], project), /node_modules\/enclavify\/dist\/store\/ref\.js:\d+:\d+\)/, 'without the flag the frames are the JavaScript\'s');
    // The CLI of the package runs too.
    assert.match(execFileSync(path.join(project, 'node_modules', '.bin', 'enclavify'), ['--version'], { encoding: 'utf8', env: cleanEnv() }), /0\.1\.0/);
    const bin = path.join(project, 'node_modules', '.bin', 'enclavify');
    const helped = spawnSync(bin, ['--help'], { cwd: project, encoding: 'utf8', env: cleanEnv() });
    assert.equal(helped.status, 0, helped.stderr);
    assert.match(helped.stdout, /Usage: enclavify COMMAND[\s\S]*Commands:\n  convert /);
    const bare = spawnSync(bin, [], { cwd: project, encoding: 'utf8', env: cleanEnv() });
    assert.equal(bare.status, 2);
    assert.equal(bare.stdout, '');
    assert.equal(bare.stderr, helped.stdout);
    // The top-level help comes from the CommonJS bin and dist/cli/help.cjs: the ES module loader
    // (whose hooks see every module it loads, and no require()) loads nothing of dist/. The hook
    // writes synchronously: the process may exit before its thread's stderr is flushed.
    writeFileSync(path.join(project, 'hook.mjs'), 'import { writeSync } from "node:fs";\nexport async function load(u, c, n) { writeSync(2, "LOADED " + u + "\\n"); return n(u, c); }\n');
    writeFileSync(path.join(project, 'register.mjs'), "import { register } from 'node:module';\nregister('./hook.mjs', import.meta.url);\n");
    const binFile = path.join(project, 'node_modules', 'enclavify', 'bin', 'enclavify.cjs');
    for (const args of [['--help'], ['--version'], ['tree', '--help']]) {
      const traced = spawnSync(process.execPath, ['--import', './register.mjs', binFile, ...args], { cwd: project, encoding: 'utf8', env: cleanEnv() });
      assert.equal(traced.status, 0, traced.stderr);
      const loaded = traced.stderr.split('\n').filter((l) => l.startsWith('LOADED ') && l.includes('/node_modules/enclavify/'));
      assert.ok(loaded.some((l) => l.endsWith('/bin/enclavify.cjs')), `the hook saw the bin (${args.join(' ')})`);
      const fromDist = loaded.filter((l) => l.includes('/node_modules/enclavify/dist/'));
      if (args[0] === 'tree') assert.ok(fromDist.some((l) => l.endsWith('/dist/cli/main.js')), 'a command loads dist/cli/main.js');
      else assert.deepEqual(fromDist, [], `${args[0]} loads no ES module of dist/`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
