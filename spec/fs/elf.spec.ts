/**
 * parseElf against real host binaries (checked with readelf when it is installed), synthetic ELFs of
 * every class and byte order, and malformed or truncated input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ElfError, isElf, parseElf, type ElfInfo } from '../../lib/fs/elf.js';
import { buildElf, type ElfSpec } from '../helpers/elf-builder.js';

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
const readelf = which('readelf');
const gcc = which('gcc') ?? which('cc');
const hostMachine: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i386', arm: 'arm', s390x: 's390', ppc64: 'ppc64', riscv64: 'riscv' };

/** What readelf -hlWd says about a file, in ElfInfo's terms. */
function readelfFacts(file: string): Partial<ElfInfo> {
  const out = execFileSync(readelf!, ['-hlWd', file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const facts: Partial<ElfInfo> = { needed: [] };
  facts.class = /Class:\s+ELF64/.test(out) ? 64 : 32;
  facts.endian = /Data:.*little endian/.test(out) ? 'little' : 'big';
  facts.type = /Type:\s+(\w+)/.exec(out)![1] as ElfInfo['type'];
  const interp = /\[Requesting program interpreter: (.*)\]/.exec(out);
  if (interp) facts.interpreter = interp[1];
  for (const m of out.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)) facts.needed!.push(m[1]);
  const one = (re: RegExp): string | undefined => re.exec(out)?.[1];
  const soname = one(/\(SONAME\)\s+Library soname: \[(.*)\]/);
  const runpath = one(/\(RUNPATH\)\s+Library runpath: \[(.*)\]/);
  const rpath = one(/\(RPATH\)\s+Library rpath: \[(.*)\]/);
  if (soname !== undefined) facts.soname = soname;
  if (runpath !== undefined) facts.runpath = runpath;
  if (rpath !== undefined) facts.rpath = rpath;
  facts.dynamic = !/There is no dynamic section in this file/.test(out);
  return facts;
}

function assertMatchesReadelf(file: string, info: ElfInfo): void {
  const facts = readelfFacts(file);
  for (const [k, v] of Object.entries(facts)) assert.deepEqual(info[k as keyof ElfInfo], v, `${file}: ${k}`);
  for (const k of ['interpreter', 'soname', 'runpath', 'rpath'] as const) {
    if (!(k in facts)) assert.equal(info[k], undefined, `${file}: readelf shows no ${k}`);
  }
}

/** Host files worth parsing: the ls binary, python3, its libraries and the loader. */
function hostFiles(): string[] {
  const files = ['/bin/ls', '/usr/bin/python3'].filter(existsSync).map((f) => realpathSync(f));
  try {
    const ldd = execFileSync('ldd', ['/bin/ls'], { encoding: 'utf8' });
    for (const m of ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) files.push(realpathSync(m[1]));
  } catch {
    // no ldd (e.g. a static busybox host): the binaries above still count
  }
  return [...new Set(files)];
}

test('isElf checks the magic', () => {
  assert.equal(isElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), true);
  assert.equal(isElf(new TextEncoder().encode('#!/bin/sh\n')), false);
  assert.equal(isElf(new Uint8Array([0x7f, 0x45, 0x4c])), false);
  assert.equal(isElf(new Uint8Array(0)), false);
});

test('parses the host /bin/ls', () => {
  const info = parseElf(readFileSync('/bin/ls'), { path: '/bin/ls' });
  assert.ok(info.type === 'DYN' || info.type === 'EXEC');
  if (hostMachine[process.arch]) assert.equal(info.machineName, hostMachine[process.arch]);
  assert.equal(info.class, process.arch.endsWith('64') || process.arch === 'x64' || process.arch === 's390x' ? 64 : 32);
  if (!info.static) {
    assert.ok(info.interpreter?.startsWith('/'), 'a dynamic ls names its loader');
    assert.ok(info.needed.some((n) => /^libc\.|^libc\.musl/.test(n)), `libc among ${info.needed}`);
  }
});

test('host binaries and libraries match readelf -hlWd', { skip: !readelf && 'readelf (binutils) is not installed' }, () => {
  const files = hostFiles();
  assert.ok(files.length >= 1);
  for (const f of files) assertMatchesReadelf(f, parseElf(readFileSync(f), { path: f }));
});

test('the C library has a SONAME and the loader needs nothing', () => {
  let ldd = '';
  try {
    ldd = execFileSync('ldd', ['/bin/ls'], { encoding: 'utf8' });
  } catch {
    return; // static host ls
  }
  const libc = /libc\.so\.6 => (\S+)/.exec(ldd)?.[1];
  if (libc) assert.equal(parseElf(readFileSync(libc)).soname, 'libc.so.6');
  const loader = parseElf(readFileSync('/bin/ls')).interpreter;
  if (loader && existsSync(loader)) {
    const info = parseElf(readFileSync(loader));
    assert.equal(info.type, 'DYN');
    assert.deepEqual(info.needed, []);
    assert.equal(info.static, true, 'the loader starts without other files');
  }
});

test('gcc-built static, static-pie, RPATH, RUNPATH and SONAME objects', { skip: !gcc && 'no C compiler' }, (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'enclavify-elf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'main.c'), 'int f(void); int main(void){return f();}\n');
  writeFileSync(path.join(dir, 'lib.c'), 'int f(void){return 0;}\n');
  writeFileSync(path.join(dir, 'plain.c'), 'int main(void){return 0;}\n');
  const cc = (...args: string[]): boolean => {
    try {
      execFileSync(gcc!, args, { cwd: dir, stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  };
  assert.ok(cc('-shared', '-fPIC', '-Wl,-soname,libf.so.1', '-Wl,--disable-new-dtags', '-Wl,-rpath,/opt/r:$ORIGIN/x', '-o', 'libf.so.1', 'lib.c'));
  const lib = parseElf(readFileSync(path.join(dir, 'libf.so.1')));
  assert.equal(lib.soname, 'libf.so.1');
  assert.equal(lib.rpath, '/opt/r:$ORIGIN/x');
  assert.equal(lib.runpath, undefined);
  assert.equal(lib.type, 'DYN');

  assert.ok(cc('-o', 'main', 'main.c', '-L.', '-l:libf.so.1', '-Wl,--enable-new-dtags', '-Wl,-rpath,$ORIGIN/../lib'));
  const exe = parseElf(readFileSync(path.join(dir, 'main')));
  assert.equal(exe.runpath, '$ORIGIN/../lib');
  assert.ok(exe.needed.includes('libf.so.1'));
  assert.equal(exe.static, false);
  if (readelf) {
    assertMatchesReadelf(path.join(dir, 'libf.so.1'), lib);
    assertMatchesReadelf(path.join(dir, 'main'), exe);
  }

  if (cc('-static', '-o', 'static', 'plain.c')) {
    const s = parseElf(readFileSync(path.join(dir, 'static')));
    assert.equal(s.static, true);
    assert.equal(s.interpreter, undefined);
    assert.deepEqual(s.needed, []);
    if (readelf) assertMatchesReadelf(path.join(dir, 'static'), s);
  } else t.diagnostic('gcc -static failed (no static libc); static case skipped');
  if (cc('-static-pie', '-o', 'static-pie', 'plain.c')) {
    const s = parseElf(readFileSync(path.join(dir, 'static-pie')));
    assert.equal(s.static, true);
    assert.equal(s.type, 'DYN');
    assert.equal(s.dynamic, true);
    if (readelf) assertMatchesReadelf(path.join(dir, 'static-pie'), s);
  }
});

// ---- synthetic ELF files ----


const full: ElfSpec = { interp: '/lib/ld-linux.so.3', needed: ['libfoo.so.1', 'libc.so.6'], soname: 'libme.so.2', rpath: '/opt/a', runpath: '$ORIGIN/../lib:/opt/b', flags1: 0x800 };

for (const cls of [32, 64] as const) {
  for (const endian of ['little', 'big'] as const) {
    test(`synthetic ${cls}-bit ${endian}-endian ELF`, (t) => {
      const machine = endian === 'big' ? 22 : cls === 64 ? 62 : 3;
      const { bytes } = buildElf({ ...full, class: cls, endian, machine, type: 3 });
      const info = parseElf(bytes);
      assert.deepEqual(info, {
        class: cls,
        endian,
        osabi: 0,
        machine,
        machineName: machine === 22 ? 's390' : machine === 62 ? 'x86_64' : 'i386',
        type: 'DYN',
        interpreter: '/lib/ld-linux.so.3',
        dynamic: true,
        needed: ['libfoo.so.1', 'libc.so.6'],
        soname: 'libme.so.2',
        rpath: '/opt/a',
        runpath: '$ORIGIN/../lib:/opt/b',
        flags1: 0x800,
        static: false,
      });
      if (readelf) {
        // The builder itself is checked by an independent reader.
        const dir = mkdtempSync(path.join(tmpdir(), 'enclavify-elf-'));
        t.after(() => rmSync(dir, { recursive: true, force: true }));
        writeFileSync(path.join(dir, 'x'), bytes);
        assertMatchesReadelf(path.join(dir, 'x'), info);
      }
    });
  }
}

test('an ELF without dynamic section or interpreter is static', () => {
  const info = parseElf(buildElf({ type: 2 }).bytes);
  assert.equal(info.type, 'EXEC');
  assert.equal(info.dynamic, false);
  assert.equal(info.static, true);
  assert.deepEqual(info.needed, []);
});

// ---- malformed input ----

function expectElfError(bytes: Uint8Array, re: RegExp): void {
  assert.throws(() => parseElf(bytes, { path: '/bad' }), (err: unknown) => {
    assert.ok(err instanceof ElfError, `ElfError expected, got ${String(err)}`);
    assert.match(err.message, /^ELF file \/bad: /);
    assert.match(err.message, re);
    return true;
  });
}

test('rejects non-ELF and truncated headers with a clear error', () => {
  expectElfError(new TextEncoder().encode('#!/bin/sh\necho hi\n'), /no ELF magic/);
  const { bytes } = buildElf(full);
  expectElfError(bytes.subarray(0, 20), /truncated/);
  expectElfError(bytes.subarray(0, 60), /truncated/);
  expectElfError(bytes.subarray(0, 100), /program headers .* run past the end/);
  const badClass = bytes.slice();
  badClass[4] = 7;
  expectElfError(badClass, /EI_CLASS 7/);
  const badData = bytes.slice();
  badData[5] = 0;
  expectElfError(badData, /EI_DATA 0/);
});

test('rejects structures that point outside the file', () => {
  const { bytes, layout } = buildElf(full);
  const at = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  // A huge e_phoff (beyond 2^53) must not lose precision or read anywhere.
  const farPh = bytes.slice();
  at(farPh).setBigUint64(32, 0xfffffffffffffff0n, true);
  expectElfError(farPh, /program headers/);
  // e_phentsize smaller than a program header.
  const smallPh = bytes.slice();
  at(smallPh).setUint16(54, 8, true);
  expectElfError(smallPh, /e_phentsize 8/);
  // PN_XNUM without section headers.
  const xnum = bytes.slice();
  at(xnum).setUint16(56, 0xffff, true);
  expectElfError(xnum, /PN_XNUM/);
  // PT_INTERP (second header) past the end.
  const farInterp = bytes.slice();
  at(farInterp).setBigUint64(layout.phoff + layout.phentsize + 8, BigInt(layout.total + 10), true);
  expectElfError(farInterp, /PT_INTERP/);
  // PT_INTERP that is not NUL-terminated (size cut by one byte).
  const open = bytes.slice();
  const isz = at(open).getBigUint64(layout.phoff + layout.phentsize + 32, true);
  at(open).setBigUint64(layout.phoff + layout.phentsize + 32, isz - 1n, true);
  expectElfError(open, /PT_INTERP path .* not NUL-terminated/);
  // DT_STRTAB outside every PT_LOAD.
  const dyn = (_b: Uint8Array, i: number): number => layout.dynOff + i * layout.entsize;
  const tags = 1 + 2 + 1 + 1 + 1; // 2 needed, soname, rpath, runpath, flags1, then STRTAB
  const unmapped = bytes.slice();
  at(unmapped).setBigUint64(dyn(unmapped, tags) + 8, 0x10n, true);
  expectElfError(unmapped, /DT_STRTAB address 0x10 is not in any PT_LOAD/);
  // A DT_NEEDED offset beyond DT_STRSZ.
  const farName = bytes.slice();
  at(farName).setBigUint64(dyn(farName, 0) + 8, 100000n, true);
  expectElfError(farName, /DT_NEEDED string at offset .* outside/);
  // Strings without a terminating NUL inside DT_STRSZ.
  const noNul = bytes.slice();
  at(noNul).setBigUint64(dyn(noNul, tags + 1) + 8, 3n, true);
  expectElfError(noNul, /not NUL-terminated/);
  // PT_DYNAMIC longer than the file.
  const longDyn = bytes.slice();
  at(longDyn).setBigUint64(layout.phoff + 2 * layout.phentsize + 32, 1n << 40n, true);
  expectElfError(longDyn, /PT_DYNAMIC/);
});

test('hostile sizes are rejected quickly', () => {
  const started = Date.now();
  // 100000 DT_NEEDED entries, all naming one long unterminated string.
  const { bytes } = buildElf({ needed: Array.from({ length: 100000 }, () => 'x') });
  expectElfError(bytes, /more than 65536 dynamic entries|entries \(at most 4096\)/);
  const { bytes: five } = buildElf({ needed: Array.from({ length: 5000 }, () => 'x') });
  expectElfError(five, /5000 DT_NEEDED\/SONAME\/RPATH\/RUNPATH entries/);
  const { bytes: long } = buildElf({ needed: ['y'.repeat(70000)] });
  expectElfError(long, /not NUL-terminated within 65536 bytes/);
  assert.ok(Date.now() - started < 5000);
});

test('every prefix of real and synthetic ELFs parses or fails with ElfError', () => {
  const samples = [buildElf(full).bytes, buildElf({ ...full, class: 32, endian: 'big', machine: 20 }).bytes];
  const ls = readFileSync('/bin/ls');
  for (const sample of samples) {
    for (let n = 0; n <= sample.length; n++) {
      try {
        parseElf(sample.subarray(0, n));
      } catch (err) {
        assert.ok(err instanceof ElfError, `length ${n}: ${String(err)}`);
      }
    }
  }
  for (let n = 0; n < Math.min(ls.length, 8192); n += 7) {
    try {
      parseElf(ls.subarray(0, n));
    } catch (err) {
      assert.ok(err instanceof ElfError, `ls prefix ${n}: ${String(err)}`);
    }
  }
});

test('random corruption never escapes as anything but ElfError', () => {
  // A fixed-seed generator keeps failures reproducible.
  let seed = 0x2545f491;
  const rnd = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const samples = [buildElf(full).bytes, buildElf({ ...full, class: 32 }).bytes, readFileSync('/bin/ls').subarray(0, 4096)];
  const started = Date.now();
  for (let i = 0; i < 3000; i++) {
    const b = Uint8Array.from(samples[i % samples.length]);
    for (let k = 1 + rnd(8); k > 0; k--) b[rnd(Math.min(b.length, 512))] = rnd(256);
    try {
      parseElf(b);
    } catch (err) {
      assert.ok(err instanceof ElfError, `iteration ${i}: ${String(err)}`);
    }
  }
  assert.ok(Date.now() - started < 20000, 'parsing stays fast on garbage');
});
