/**
 * findStartupFiles on an image made of the host's real /bin/ls (and /bin/sh, /usr/bin/env) with the
 * libraries ldd lists, laid out merged-/usr as on Debian, with expectations computed from ldd at test
 * time; and on synthetic images that pin down the loader's search order (RPATH, LD_LIBRARY_PATH,
 * RUNPATH, ld.so.conf, defaults, $ORIGIN, class checks, hwcaps, musl, preloads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { FsEntry } from '../../lib/fs/entry.js';
import { lexicalPath, memoryLookup, type FileLookup, type MemoryEntry } from '../../lib/fs/lookup.js';
import { RootFs } from '../../lib/fs/merged.js';
import { findStartupFiles, type StartupFiles } from '../../lib/protect/deps.js';
import { fixtures } from '../helpers/tools.js';
import { hostPathEntries, ldd } from '../helpers/host.js';
import { buildElf, type ElfSpec } from '../helpers/elf-builder.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const file = (path: string, content: Uint8Array | string, mode = 0o644): MemoryEntry => {
  const bytes = typeof content === 'string' ? enc(content) : content;
  return { path, type: 'file', mode, uid: 0, gid: 0, mtime: 0, size: bytes.length, content: bytes };
};
const link = (path: string, linkname: string): FsEntry => ({ path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0, linkname });

const found = (r: StartupFiles, soname: string) => r.libraries.find((l) => l.soname === soname);

// ---- an image from host files ----

const MERGED = ['bin', 'sbin', 'lib', 'lib64'];


const lsDeps = existsSync('/bin/ls') ? ldd('/bin/ls') : undefined;
const skipHost = !lsDeps?.interpreter ? 'needs a dynamically linked /bin/ls and ldd on the host' : false;

/** Copy a host path into `into`, recreating the symlinks crossed on the way (host root = image root). */
function addHostEntries(into: Map<string, MemoryEntry>, hostPath: string): void {
  for (const { entry, content } of hostPathEntries(hostPath)) into.set(entry.path, content ? { ...entry, content } : entry);
}

/** Where a host file's real path lands in the merged-/usr image. */
function imagePath(hostPath: string): string {
  const p = realpathSync(hostPath).slice(1);
  return MERGED.includes(p.split('/')[0]) ? `usr/${p}` : p;
}

/** Host programs with every library ldd lists, laid out with Debian's merged-/usr symlinks. */
function hostImage(programs: string[], extra: MemoryEntry[] = []): { entries: MemoryEntry[]; deps: Map<string, NonNullable<ReturnType<typeof ldd>>> } {
  const found = new Map<string, MemoryEntry>();
  const deps = new Map<string, NonNullable<ReturnType<typeof ldd>>>();
  for (const program of programs) {
    const d = ldd(program);
    assert.ok(d, `ldd ${program}`);
    deps.set(program, d);
    for (const p of [program, ...d.libs.map((l) => l.path), ...(d.interpreter ? [d.interpreter] : [])]) addHostEntries(found, p);
  }
  const out = new Map<string, MemoryEntry>();
  for (const [p, e] of found) {
    const top = p.split('/')[0];
    if (!MERGED.includes(top)) out.set(p, e);
    else if (p !== top) out.set(`usr/${p}`, { ...e, path: `usr/${p}` });
  }
  for (const top of MERGED) out.set(top, link(top, `usr/${top}`));
  for (const e of extra) out.set(e.path, e);
  return { entries: [...out.values()], deps };
}

/** A lookup that counts reads per path, to check that each file is read once and reads are batched. */
function counting(lookup: FileLookup & { readdir?: (p: string) => string[] | undefined }) {
  const reads = new Map<string, number>();
  let passes = 0;
  return {
    reads,
    passes: () => passes,
    lookup: {
      lstat: (p: string) => lookup.lstat(p),
      readdir: lookup.readdir?.bind(lookup),
      async readFiles(paths: string[]) {
        passes++;
        for (const p of paths) reads.set(p, (reads.get(p) ?? 0) + 1);
        return lookup.readFiles(paths);
      },
    },
  };
}

/** The checks every host-derived result must pass against ldd's answer for `program`. */
function assertMatchesLdd(r: StartupFiles, program: string, d: NonNullable<ReturnType<typeof ldd>>): void {
  const exe = imagePath(program);
  assert.ok(r.executables.includes(exe), `${exe} among executables ${r.executables}`);
  if (d.interpreter) {
    const interp = imagePath(d.interpreter);
    assert.ok(r.interpreters.includes(interp), `interpreter ${interp} in ${r.interpreters}`);
    assert.ok(r.files.includes(interp));
    // The loader is opened by the PT_INTERP path, e.g. /lib64/ld-linux-x86-64.so.2 through lib64 -> usr/lib64.
    const opened = lexicalPath(d.interpreter);
    if (opened !== interp) assert.ok(r.aliases[interp]?.includes(opened), `${opened} in aliases of ${interp}: ${r.aliases[interp]}`);
  }
  for (const lib of d.libs) {
    const want = imagePath(lib.path);
    const got = r.libraries.find((l) => l.soname === lib.name);
    assert.ok(got, `library ${lib.name} found (needed by ${program})`);
    assert.equal(got.path, want, `${lib.name} path`);
    assert.ok(r.files.includes(want));
    const opened = lexicalPath(lib.path);
    if (opened !== want) assert.ok(r.aliases[want]?.includes(opened), `${opened} in aliases of ${want}: ${r.aliases[want]}`);
  }
}

test('host /bin/ls: interpreter and every library ldd lists, with their aliases', { skip: skipHost }, async () => {
  const { entries, deps } = hostImage(['/bin/ls']);
  const c = counting(memoryLookup(entries));
  const r = await findStartupFiles({ lookup: c.lookup, command: '/bin/ls' });
  assert.equal(r.program, imagePath('/bin/ls'));
  assert.deepEqual(r.argv0Paths, [...new Set(['bin/ls', imagePath('/bin/ls')])]);
  assert.deepEqual(r.scriptInterpreters, []);
  assert.equal(r.interpreter, imagePath(lsDeps!.interpreter!));
  assertMatchesLdd(r, '/bin/ls', deps.get('/bin/ls')!);
  // No more libraries than ldd lists (the loader itself appears as the interpreter's soname).
  const lddNames = new Set(lsDeps!.libs.map((l) => l.name));
  for (const l of r.libraries) {
    if (l.via === 'interpreter') assert.equal(l.path, r.interpreter);
    else assert.ok(lddNames.has(l.soname), `${l.soname} is listed by ldd`);
    assert.equal(l.via === 'interpreter' || l.via === 'default', true, `${l.soname} via ${l.via}`);
  }
  assert.deepEqual(r.missing, []);
  assert.ok(r.symlinks.includes('lib') || r.symlinks.includes('lib64'), `merged-/usr symlinks crossed: ${r.symlinks}`);
  // Each file is read once; reads come in a few passes, not one per file.
  for (const [p, n] of c.reads) assert.equal(n, 1, `${p} read ${n} times`);
  assert.ok(c.passes() <= 8, `${c.passes()} passes over the layers`);
});

test('ld.so.conf and its include glob find a library outside the default directories', { skip: skipHost }, async () => {
  const moved = lsDeps!.libs.find((l) => !/^libc\.so/.test(l.name)) ?? lsDeps!.libs[0];
  const { entries } = hostImage(['/bin/ls']);
  const from = imagePath(moved.path);
  const target = `opt/custom/lib/${moved.name}`;
  const image = entries.filter((e) => e.path !== from && !(e.type === 'symlink' && e.path.endsWith('/' + moved.name)));
  image.push(
    { ...entries.find((e) => e.path === from)!, path: target },
    file('etc/ld.so.conf', '# comment\ninclude /etc/ld.so.conf.d/*.conf\n'),
    file('etc/ld.so.conf.d/custom.conf', '/opt/custom/lib  # ours\n'),
    file('etc/ld.so.conf.d/nested.conf', 'include other/*.list\n'),
    file('etc/ld.so.conf.d/other/a.list', '/opt/listed\n'),
    file('etc/ld.so.conf.d/README', '/opt/not-a-conf-file\n'),
  );
  const lookup = memoryLookup(image);
  const r = await findStartupFiles({ lookup, command: 'ls', env: ['PATH=/bin'] });
  const lib = r.libraries.find((l) => l.soname === moved.name)!;
  assert.equal(lib.path, target);
  assert.equal(lib.via, 'ld.so.conf');
  assert.deepEqual(r.missing, []);
  assert.deepEqual(r.argv0Paths, ['bin/ls', imagePath('/bin/ls')]);

  // The nested, relative include is followed; files the glob does not match (README) are not read.
  const libEntry = entries.find((e) => e.path === from)!;
  const elsewhere = (dir: string) => memoryLookup([...image.filter((e) => e.path !== target), { ...libEntry, path: `${dir}/${moved.name}` }]);
  const listed = await findStartupFiles({ lookup: elsewhere('opt/listed'), command: '/bin/ls' });
  assert.deepEqual([found(listed, moved.name)?.path, found(listed, moved.name)?.via], [`opt/listed/${moved.name}`, 'ld.so.conf']);
  const readme = await findStartupFiles({ lookup: elsewhere('opt/not-a-conf-file'), command: '/bin/ls' });
  assert.equal(readme.missing[0]?.soname, moved.name);
  // Both directories listed: the order of the conf files (glob results are sorted) decides.
  const twice = await findStartupFiles({ lookup: memoryLookup([...image, { ...libEntry, path: `opt/listed/${moved.name}` }]), command: '/bin/ls' });
  assert.equal(found(twice, moved.name)?.path, target, 'custom.conf comes before nested.conf');

  // Without a directory listing the glob cannot be expanded: the library is reported missing, with a note.
  const noList: FileLookup = { lstat: (p) => lookup.lstat(p), readFiles: (p) => lookup.readFiles(p) };
  const r3 = await findStartupFiles({ lookup: noList, command: '/bin/ls' });
  assert.ok(r3.missing.some((m) => m.soname === moved.name && m.neededBy.length > 0));
  assert.ok(r3.notes.some((n) => /include \/etc\/ld\.so\.conf\.d\/\*\.conf not expanded/.test(n)), r3.notes.join('\n'));
});

test('a library missing from the image is reported with who needs it', { skip: skipHost }, async () => {
  const { entries } = hostImage(['/bin/ls']);
  const libc = lsDeps!.libs.find((l) => /^libc\.so/.test(l.name));
  assert.ok(libc);
  const image = entries.filter((e) => e.path !== imagePath(libc.path));
  const r = await findStartupFiles({ lookup: memoryLookup(image), command: '/bin/ls' });
  const m = r.missing.find((x) => x.soname === libc.name);
  assert.ok(m, 'libc reported missing');
  assert.ok(m.neededBy.includes(imagePath('/bin/ls')));
  assert.ok(m.searched.includes('/usr/lib'));
  assert.ok(!r.libraries.some((l) => l.soname === libc.name));
});

const hasEnv = existsSync('/usr/bin/env') && !!ldd('/usr/bin/env')?.interpreter;
const hasSh = existsSync('/bin/sh') && !!ldd('/bin/sh')?.interpreter;

test('#!/bin/sh script entrypoint resolves to the shell and its libraries', { skip: skipHost || (!hasSh && 'no dynamic /bin/sh') }, async () => {
  const { entries, deps } = hostImage(['/bin/sh'], [file('app/run.sh', '#!/bin/sh\nexec echo hi\n', 0o755)]);
  const r = await findStartupFiles({ lookup: memoryLookup(entries), command: './run.sh', workingDir: '/app' });
  const sh = imagePath('/bin/sh');
  assert.equal(r.program, 'app/run.sh');
  assert.deepEqual(r.scriptInterpreters, [{ script: 'app/run.sh', line: '/bin/sh', interpreterPath: '/bin/sh', interpreter: sh }]);
  assert.deepEqual(r.executables, [sh]);
  assert.ok(r.aliases[sh].includes('bin/sh'), `bin/sh among ${r.aliases[sh]}`);
  assertMatchesLdd(r, '/bin/sh', deps.get('/bin/sh')!);
  assert.ok(r.files.includes('app/run.sh'));
});

test('#!/usr/bin/env python3 resolves python3 through PATH (both processes counted)', { skip: skipHost || (!hasEnv && 'no dynamic /usr/bin/env') }, async () => {
  const lsBytes = readFileSync('/bin/ls'); // an ELF stand-in for python
  const { entries, deps } = hostImage(['/usr/bin/env', '/bin/ls'], [
    file('usr/bin/python3.11', lsBytes, 0o755),
    link('usr/bin/python3', 'python3.11'),
    file('usr/local/bin/python3', 'not executable', 0o644),
    file('opt/tools/mytool', lsBytes, 0o755),
    file('app/main.py', '#!/usr/bin/env python3\nprint(1)\n', 0o755),
    file('app/split.py', '#!/usr/bin/env -S python3 -u\n', 0o755),
    file('app/unsplit.py', '#!/usr/bin/env python3 -u\n', 0o755),
    file('app/path.sh', '#!/usr/bin/env -S PATH=/opt/tools mytool --flag\n', 0o755),
  ]);
  const lookup = memoryLookup(entries);
  const env = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/root'];
  const envPath = imagePath('/usr/bin/env');
  const r = await findStartupFiles({ lookup, command: '/app/main.py', env });
  assert.deepEqual(r.executables, [envPath, 'usr/bin/python3.11']);
  assert.equal(r.scriptInterpreters.length, 1);
  assert.deepEqual(r.scriptInterpreters[0].envCommand, { name: 'python3', path: 'usr/bin/python3.11' });
  assert.equal(r.scriptInterpreters[0].argument, 'python3');
  assert.ok(r.aliases['usr/bin/python3.11'].includes('usr/bin/python3'));
  assert.ok(r.symlinks.includes('usr/bin/python3'));
  assertMatchesLdd(r, '/usr/bin/env', deps.get('/usr/bin/env')!);
  // Libraries shared by the two processes are listed once, needed by both.
  const libc = r.libraries.filter((l) => /^libc\.so/.test(l.soname));
  assert.equal(libc.length, 1);
  assert.ok(libc[0].neededBy.includes(envPath) && libc[0].neededBy.includes('usr/bin/python3.11'));

  const split = await findStartupFiles({ lookup, command: '/app/split.py', env });
  assert.deepEqual(split.scriptInterpreters[0].envCommand, { name: 'python3', path: 'usr/bin/python3.11' });
  // Linux hands env "python3 -u" as one argument, which names no program.
  await assert.rejects(findStartupFiles({ lookup, command: '/app/unsplit.py', env }), /"python3 -u" not found in the image/);
  const viaPath = await findStartupFiles({ lookup, command: '/app/path.sh', env });
  assert.deepEqual(viaPath.scriptInterpreters[0].envCommand, { name: 'mytool', path: 'opt/tools/mytool' });
});

test('bare command names go through the image PATH, skipping non-executables', { skip: skipHost }, async () => {
  const { entries } = hostImage(['/bin/ls'], [file('usr/local/bin/ls', 'not executable', 0o644)]);
  const lookup = memoryLookup(entries);
  const r = await findStartupFiles({ lookup, command: 'ls', env: ['PATH=/usr/local/bin:/bin'] });
  assert.equal(r.program, imagePath('/bin/ls'));
  assert.deepEqual(r.argv0Paths, ['bin/ls', imagePath('/bin/ls')]);
  // Without PATH in Env the runtime's default applies (/usr/bin before /bin).
  const d = await findStartupFiles({ lookup, command: 'ls', env: ['HOME=/'] });
  assert.equal(d.argv0Paths[0], 'usr/bin/ls');
  await assert.rejects(findStartupFiles({ lookup, command: 'nosuch', env: [] }), /program "nosuch" not found in the image: searched PATH \/usr\/local\/sbin:/);
  await assert.rejects(findStartupFiles({ lookup, command: '/app/missing' }), /program "\/app\/missing" not found in the image/);
  await assert.rejects(findStartupFiles({ lookup, command: 'ls', env: ['PATH=/usr/local/bin'] }), /not executable: \/usr\/local\/bin\/ls/);
});

test('symlink loops: a looping program is an error, a looping library candidate is skipped', { skip: skipHost }, async () => {
  const libc = lsDeps!.libs.find((l) => /^libc\.so/.test(l.name))!;
  const { entries } = hostImage(['/bin/ls'], [
    link('app/a', 'b'),
    link('app/b', '/app/a'),
    file('etc/ld.so.conf', '/opt/loop\n'),
    link(`opt/loop/${libc.name}`, `/opt/loop/${libc.name}`),
  ]);
  const lookup = memoryLookup(entries);
  await assert.rejects(findStartupFiles({ lookup, command: '/app/a' }), /program "\/app\/a" cannot be resolved.*more than 40 symlinks/);
  const r = await findStartupFiles({ lookup, command: '/bin/ls' });
  assert.equal(r.libraries.find((l) => l.soname === libc.name)?.path, imagePath(libc.path));
  assert.ok(r.notes.some((n) => /more than 40 symlinks/.test(n)), r.notes.join('\n'));
});

test('the bb fixture image through the merged view: a script run by static busybox', async () => {
  // Entrypoint /app/server.sh, WorkingDir /app (fixtures/README.md); layers are tar+gzip.
  const dir = path.join(fixtures, 'images', 'bb-oci');
  const blob = (digest: string) => path.join(dir, 'blobs', ...digest.split(':'));
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const layers = manifest.layers.map((l: { digest: string }, i: number) => ({
    name: `layer ${i} of bb-oci`,
    async open() {
      return createReadStream(blob(l.digest)).pipe(createGunzip()) as unknown as Readable;
    },
  }));
  const rootfs = await RootFs.scan(layers);
  const r = await findStartupFiles({ lookup: rootfs, command: '/app/server.sh', env: ['APP_MODE=production'], workingDir: '/app' });
  assert.equal(r.program, 'app/server.sh');
  assert.equal(r.scriptInterpreters.length, 1);
  assert.equal(r.scriptInterpreters[0].interpreter, 'bin/busybox');
  assert.ok(r.aliases['bin/busybox'].length > 0, 'busybox is reached through an applet symlink');
  assert.deepEqual(r.executables, ['bin/busybox']);
  assert.deepEqual([r.interpreter, r.libraries, r.missing], [undefined, [], []]);
  assert.deepEqual(r.files, ['app/server.sh', 'bin/busybox']);
});

// ---- synthetic images: the search order ----


const LOADER = '/lib64/ld-linux-x86-64.so.2';
const elf = (path: string, s: ElfSpec, mode = 0o755): MemoryEntry => file(path, buildElf(s).bytes, mode);
const lib = (path: string, s: ElfSpec = {}): MemoryEntry => elf(path, { soname: path.slice(path.lastIndexOf('/') + 1), ...s }, 0o644);
const app = (s: ElfSpec, path = 'usr/bin/app'): MemoryEntry => elf(path, { type: 2, interp: LOADER, ...s });
/** A merged-/usr base with the loader. */
const base = (): MemoryEntry[] => [link('lib', 'usr/lib'), link('lib64', 'usr/lib64'), link('bin', 'usr/bin'), lib('usr/lib64/ld-linux-x86-64.so.2', { soname: 'ld-linux-x86-64.so.2' })];

async function run(entries: MemoryEntry[], opts: { command?: string; env?: string[]; workingDir?: string } = {}): Promise<StartupFiles> {
  return findStartupFiles({ lookup: memoryLookup(entries), command: opts.command ?? '/usr/bin/app', env: opts.env ?? [], workingDir: opts.workingDir ?? '/' });
}

test('search order: DT_RPATH, LD_LIBRARY_PATH, DT_RUNPATH (which disables DT_RPATH), then defaults', async () => {
  const libs = ['opt/r', 'opt/p', 'opt/env', 'usr/lib'].map((d) => lib(`${d}/libx.so.1`));
  const withRpath = [...base(), ...libs, app({ needed: ['libx.so.1'], rpath: '/opt/r' })];
  assert.deepEqual([found(await run(withRpath), 'libx.so.1')?.path, found(await run(withRpath), 'libx.so.1')?.via], ['opt/r/libx.so.1', 'rpath']);
  const rpathEnv = await run(withRpath, { env: ['LD_LIBRARY_PATH=/opt/env'] });
  assert.equal(found(rpathEnv, 'libx.so.1')?.path, 'opt/r/libx.so.1', 'DT_RPATH comes before LD_LIBRARY_PATH');

  const both = [...base(), ...libs, app({ needed: ['libx.so.1'], rpath: '/opt/r', runpath: '/opt/p' })];
  assert.deepEqual(found(await run(both), 'libx.so.1'), { soname: 'libx.so.1', path: 'opt/p/libx.so.1', openedAs: 'opt/p/libx.so.1', neededBy: ['usr/bin/app'], via: 'runpath' });
  const bothEnv = await run(both, { env: ['LD_LIBRARY_PATH=/nowhere;/opt/env'] });
  assert.deepEqual([found(bothEnv, 'libx.so.1')?.path, found(bothEnv, 'libx.so.1')?.via], ['opt/env/libx.so.1', 'LD_LIBRARY_PATH']);

  const none = await run([...base(), ...libs, app({ needed: ['libx.so.1'] })]);
  assert.deepEqual([found(none, 'libx.so.1')?.path, found(none, 'libx.so.1')?.via], ['usr/lib/libx.so.1', 'default']);
  assert.ok(found(none, 'libx.so.1')!.openedAs === 'lib/libx.so.1', 'the default /lib comes before /usr/lib');
  assert.ok(none.aliases['usr/lib/libx.so.1'].includes('lib/libx.so.1'));
});

test('every search directory that reaches the chosen file gives an alias', async () => {
  // ld.so opens whatever path ld.so.cache names; any search directory reaching the file may be it.
  const r = await run([...base(), lib('usr/lib/x86_64-linux-gnu/libx.so.1'), file('etc/ld.so.conf', '/usr/lib/x86_64-linux-gnu\n'), app({ needed: ['libx.so.1'] })]);
  const l = found(r, 'libx.so.1')!;
  assert.deepEqual([l.openedAs, l.via], ['usr/lib/x86_64-linux-gnu/libx.so.1', 'ld.so.conf']);
  assert.deepEqual(r.aliases[l.path], ['lib/x86_64-linux-gnu/libx.so.1']);
  assert.ok(r.symlinks.includes('lib'));
});

test('DT_RPATH is inherited from the loading objects; DT_RUNPATH is not', async () => {
  const common = [...base(), lib('usr/lib/liba.so', { needed: ['libb.so'] }), lib('opt/r/libb.so')];
  const inherited = await run([...common, app({ needed: ['liba.so'], rpath: '/opt/r' })]);
  assert.deepEqual([found(inherited, 'libb.so')?.path, found(inherited, 'libb.so')?.via], ['opt/r/libb.so', 'rpath']);
  assert.deepEqual(found(inherited, 'libb.so')?.neededBy, ['usr/lib/liba.so']);

  const notRunpath = await run([...common, app({ needed: ['liba.so'], runpath: '/opt/r' })]);
  assert.deepEqual(notRunpath.missing, [{ soname: 'libb.so', neededBy: ['usr/lib/liba.so'], searched: notRunpath.missing[0]?.searched }]);
  assert.ok(!notRunpath.missing[0].searched.includes('/opt/r'));

  // A RUNPATH on the intermediate object stops the inherited RPATH too.
  const blocked = await run([...base(), lib('usr/lib/liba.so', { needed: ['libb.so'], runpath: '/nowhere' }), lib('opt/r/libb.so'), app({ needed: ['liba.so'], rpath: '/opt/r' })]);
  assert.equal(blocked.missing[0]?.soname, 'libb.so');
});

test('$ORIGIN is the real directory of the executable and the opened directory of a library', async () => {
  const entries = [
    ...base(),
    elf('opt/app/bin/app', { type: 3, interp: LOADER, needed: ['libapp.so'], runpath: '$ORIGIN/../lib' }),
    link('usr/local/bin/app', '/opt/app/bin/app'),
    lib('opt/app/lib/libapp.so', { needed: ['libplug.so'], rpath: '${ORIGIN}/plugins' }),
    lib('opt/app/lib/plugins/libplug.so'),
  ];
  const r = await run(entries, { command: 'app', env: ['PATH=/usr/local/bin'] });
  assert.deepEqual(r.argv0Paths, ['usr/local/bin/app', 'opt/app/bin/app']);
  assert.deepEqual([found(r, 'libapp.so')?.path, found(r, 'libapp.so')?.via], ['opt/app/lib/libapp.so', 'runpath']);
  assert.deepEqual([found(r, 'libplug.so')?.path, found(r, 'libplug.so')?.via], ['opt/app/lib/plugins/libplug.so', 'rpath']);
  assert.equal(found(r, 'libapp.so')?.openedAs, 'opt/app/lib/libapp.so');
});

test('candidates of another class, machine or kind are skipped with a note', async () => {
  const r = await run([
    ...base(),
    lib('opt/r/libx.so.1', { class: 32, machine: 3 }),
    lib('opt/s/libx.so.1', { machine: 183 }),
    file('opt/t/libx.so.1', 'INPUT(-lx)\n'),
    lib('usr/lib/x86_64-linux-gnu/libx.so.1'),
    app({ needed: ['libx.so.1'], rpath: '/opt/r:/opt/s:/opt/t' }),
  ]);
  assert.equal(found(r, 'libx.so.1')?.path, 'usr/lib/x86_64-linux-gnu/libx.so.1');
  assert.equal(r.notes.filter((n) => /^skipped \/opt\/[rst]\/libx\.so\.1/.test(n)).length, 3, r.notes.join('\n'));
  assert.ok(r.notes.some((n) => /32-bit i386/.test(n)));
});

test('DF_1_NODEFLIB keeps the loader out of ld.so.conf and the default directories', async () => {
  const r = await run([...base(), lib('usr/lib/libx.so.1'), file('etc/ld.so.conf', '/usr/lib\n'), app({ needed: ['libx.so.1'], flags1: 0x800 })]);
  assert.equal(r.missing[0]?.soname, 'libx.so.1');
  assert.deepEqual(r.missing[0].searched, []);
});

test('glibc-hwcaps variants are reported beside the baseline library and walked too', async () => {
  const r = await run([
    ...base(),
    lib('usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfast.so.1', { needed: ['libdep.so'] }),
    lib('usr/lib/x86_64-linux-gnu/libfast.so.1'),
    lib('usr/lib/libdep.so'),
    app({ needed: ['libfast.so.1'] }),
  ]);
  const l = found(r, 'libfast.so.1');
  assert.equal(l?.path, 'usr/lib/x86_64-linux-gnu/libfast.so.1');
  assert.deepEqual(l?.hwcaps, ['usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfast.so.1']);
  assert.ok(r.files.includes('usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfast.so.1'));
  assert.equal(found(r, 'libdep.so')?.path, 'usr/lib/libdep.so');
});

test('musl: the loader is libc, and the path file replaces ld.so.conf', async () => {
  const musl = '/lib/ld-musl-x86_64.so.1';
  const entries = [
    lib('lib/ld-musl-x86_64.so.1', { soname: 'libc.musl-x86_64.so.1' }),
    link('lib/libc.musl-x86_64.so.1', 'ld-musl-x86_64.so.1'),
    file('etc/ld-musl-x86_64.path', '/opt/musl/lib\n/usr/lib\n'),
    lib('opt/musl/lib/libz.so.1'),
    lib('usr/lib/libz.so.1'),
    file('etc/ld.so.conf', '/elsewhere\n'),
    elf('bin/app', { type: 3, interp: musl, needed: ['libc.musl-x86_64.so.1', 'libz.so.1', 'libpthread.so.0'] }),
  ];
  const r = await run(entries, { command: '/bin/app' });
  assert.equal(r.interpreter, 'lib/ld-musl-x86_64.so.1');
  assert.deepEqual([found(r, 'libc.musl-x86_64.so.1')?.path, found(r, 'libc.musl-x86_64.so.1')?.via], ['lib/ld-musl-x86_64.so.1', 'interpreter']);
  assert.deepEqual([found(r, 'libz.so.1')?.path, found(r, 'libz.so.1')?.via], ['opt/musl/lib/libz.so.1', 'ld-musl-path']);
  // libpthread, libm, libdl, ... are the loader too and are never searched for.
  assert.deepEqual([found(r, 'libpthread.so.0')?.path, found(r, 'libpthread.so.0')?.via], ['lib/ld-musl-x86_64.so.1', 'interpreter']);
  assert.deepEqual(r.missing, []);
  assert.ok(r.loaderFiles.includes('etc/ld-musl-x86_64.path'));
  assert.ok(!r.loaderFiles.includes('etc/ld.so.conf'));
});

test('LD_PRELOAD and /etc/ld.so.preload libraries load at start too', async () => {
  const r = await run(
    [...base(), lib('usr/lib/libpre.so'), lib('opt/p/libp2.so', { needed: ['libdeep.so'] }), lib('usr/lib/libdeep.so'), file('etc/ld.so.preload', '/opt/p/libp2.so\n'), file('etc/ld.so.cache', 'cache'), app({})],
    { env: ['LD_PRELOAD=libpre.so'] },
  );
  assert.deepEqual([found(r, 'libpre.so')?.preload, found(r, 'libpre.so')?.path], ['LD_PRELOAD', 'usr/lib/libpre.so']);
  assert.deepEqual([found(r, '/opt/p/libp2.so')?.preload, found(r, '/opt/p/libp2.so')?.via], ['ld.so.preload', 'path']);
  assert.equal(found(r, 'libdeep.so')?.path, 'usr/lib/libdeep.so');
  assert.deepEqual(r.loaderFiles.sort(), ['etc/ld.so.cache', 'etc/ld.so.preload']);
});

test('a needed name is resolved once; names with a slash and loaded sonames need no search', async () => {
  const r = await run([
    ...base(),
    lib('opt/abs/libq.so', { soname: 'libq.so.2' }),
    lib('usr/lib/liba.so', { needed: ['libq.so.2', 'libx.so.1'] }),
    lib('usr/lib/libx.so.1'),
    app({ needed: ['/opt/abs/libq.so', 'liba.so', 'libx.so.1'] }),
  ]);
  assert.deepEqual(r.missing, []);
  assert.deepEqual([found(r, '/opt/abs/libq.so')?.via, found(r, '/opt/abs/libq.so')?.neededBy], ['path', ['usr/bin/app', 'usr/lib/liba.so']]);
  assert.equal(r.libraries.filter((l) => l.soname === 'libx.so.1').length, 1);
  assert.deepEqual(found(r, 'libx.so.1')?.neededBy, ['usr/bin/app', 'usr/lib/liba.so']);
});

test('static executables need nothing; a missing program interpreter is reported', async () => {
  const s = await run([elf('usr/bin/app', { type: 2 })]);
  assert.deepEqual([s.interpreter, s.interpreters, s.libraries, s.missing], [undefined, [], [], []]);
  assert.deepEqual(s.files, ['usr/bin/app']);
  const m = await run([app({ needed: ['libc.so.6'] })]);
  assert.equal(m.missing[0]?.soname, LOADER);
  assert.deepEqual(m.missing[0]?.neededBy, ['usr/bin/app']);
});

test('scripts: nested interpreters, too deep chains, non-executables', async () => {
  const entries = [
    ...base(),
    app({}, 'usr/bin/interp'),
    file('app/a', '#!/app/b -x\n', 0o755),
    file('app/b', '#! /usr/bin/interp\n', 0o755),
    file('app/loop', '#!/app/loop\n', 0o755),
    file('app/data', 'plain text', 0o755),
    file('app/noint', '#!/usr/bin/none\n', 0o755),
  ];
  const r = await run(entries, { command: '/app/a' });
  assert.deepEqual(
    r.scriptInterpreters.map((s) => [s.script, s.interpreter, s.argument]),
    [['app/a', 'app/b', '-x'], ['app/b', 'usr/bin/interp', undefined]],
  );
  assert.deepEqual(r.executables, ['usr/bin/interp']);
  await assert.rejects(run(entries, { command: '/app/loop' }), /more than 8 nested #! interpreters/);
  await assert.rejects(run(entries, { command: '/app/data' }), /\/app\/data is neither an ELF executable nor a #! script/);
  await assert.rejects(run(entries, { command: '/app/noint' }), /interpreter \/usr\/bin\/none not found/);
});

/**
 * The whole answer of the search, byte for byte, for images that take every branch of the loader's
 * search at once (taken on the code before StartupSearch.loadProcess was split into steps). Run with
 * GOLDEN_UPDATE=1 to rewrite spec/protect/golden/startup-files.json on purpose.
 */
test('golden: the whole StartupFiles answer is what it was, over every branch of the search', async () => {
  const glibc = [
    ...base(),
    file('etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n/opt/conf\n'),
    file('etc/ld.so.conf.d/a.conf', '/opt/a\n'),
    file('etc/ld.so.preload', '/opt/p/libp2.so\n'),
    file('etc/ld.so.cache', 'cache'),
    lib('opt/p/libp2.so', { needed: ['libdeep.so'] }),
    lib('usr/lib/libdeep.so'),
    lib('usr/lib/libpre.so'),
    lib('opt/a/liba.so', { needed: ['libb.so', 'libq.so.2'], runpath: '$ORIGIN/../b' }),
    lib('opt/b/libb.so'),
    lib('opt/abs/libq.so', { soname: 'libq.so.2' }),
    lib('opt/r/libx.so.1', { class: 32, machine: 3 }),
    lib('opt/conf/libx.so.1'),
    lib('usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfast.so.1'),
    lib('usr/lib/x86_64-linux-gnu/libfast.so.1'),
    elf('opt/app/bin/app', { type: 3, interp: LOADER, needed: ['liba.so', 'libx.so.1', 'libfast.so.1', '/opt/abs/libq.so', 'libmissing.so'], rpath: '/opt/r' }),
    link('usr/local/bin/app', '/opt/app/bin/app'),
    file('app/run', '#!/app/wrap -x\n', 0o755),
    file('app/wrap', '#!/usr/bin/env app\n', 0o755),
    app({}, 'usr/bin/env'),
  ];
  const musl = [
    lib('lib/ld-musl-x86_64.so.1', { soname: 'libc.musl-x86_64.so.1' }),
    link('lib/libc.musl-x86_64.so.1', 'ld-musl-x86_64.so.1'),
    file('etc/ld-musl-x86_64.path', '/opt/musl/lib\n/usr/lib\n'),
    lib('opt/musl/lib/libz.so.1'),
    lib('usr/lib/libz.so.1'),
    elf('bin/app', { type: 3, interp: '/lib/ld-musl-x86_64.so.1', needed: ['libc.musl-x86_64.so.1', 'libz.so.1', 'libpthread.so.0'] }),
  ];
  const got = {
    glibcScript: await run(glibc, { command: '/app/run', env: ['PATH=/usr/local/bin:/usr/bin', 'LD_PRELOAD=libpre.so', 'LD_LIBRARY_PATH=/nowhere'] }),
    glibcPath: await run(glibc, { command: 'app', env: ['PATH=/usr/local/bin'], workingDir: '/app' }),
    musl: await run(musl, { command: '/bin/app' }),
    nodeflib: await run([...base(), lib('usr/lib/libx.so.1'), file('etc/ld.so.conf', '/usr/lib\n'), app({ needed: ['libx.so.1'], flags1: 0x800 })]),
  };
  const text = `${JSON.stringify(got, null, 2)}\n`;
  const goldenFile = path.join(import.meta.dirname, 'golden', 'startup-files.json');
  if (process.env.GOLDEN_UPDATE === '1') writeFileSync(goldenFile, text);
  assert.deepEqual(JSON.parse(text), JSON.parse(readFileSync(goldenFile, 'utf8')));
});
