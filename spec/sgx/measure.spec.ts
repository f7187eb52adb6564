/**
 * Enclave layout and MRENCLAVE against gramine-sgx-sign's verbose output, plus the contents of the
 * TCS and TLS pages, EDMM, and what does and does not change the measurement.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fixtures } from '../helpers/tools.js';
import { parseElf } from '../../lib/sgx/elf.js';
import { formatEnclaveAreas, layoutGramineEnclave } from '../../lib/sgx/layout.js';
import { measureGramineEnclave } from '../../lib/sgx/measure.js';

const dir = path.join(fixtures, 'gramine-sign');
const read = (f: string): Buffer => readFileSync(path.join(dir, f));
const pal = read('stand-in-pal.so');
const CASES = ['case1-debug', 'case2-release', 'case3-edmm', 'case4-dcap'];

for (const c of CASES) {
  test(`${c}: measured areas and MRENCLAVE match gramine-sgx-sign's output`, () => {
    const out = read(`${c}.sign-output.txt`).toString('utf8');
    const r = measureGramineEnclave({ manifestSgx: read(`${c}.manifest.sgx`), pal });
    assert.deepEqual(formatEnclaveAreas(r.areas), out.split('Memory:\n')[1].split('Measurement:')[0].trimEnd().split('\n'));
    assert.equal(r.mrenclave, out.split('Measurement:\n')[1].trim());
    assert.equal(r.mrenclave, JSON.parse(read(`${c}.expected.json`).toString('utf8')).mr_enclave);
  });
}

test('the stand-in PAL has four PT_LOAD segments and entry 0x1000', () => {
  const elf = parseElf(pal);
  assert.equal(elf.entry, 0x1000);
  assert.deepEqual(elf.loads.map((s) => [s.offset, s.vaddr, s.filesz, s.memsz, s.flags]), [
    [0, 0, 0x320, 0x320, 4], [0x1000, 0x1000, 0xc, 0xc, 5], [0x2000, 0x2000, 0x6c, 0x6c, 4], [0x2f00, 0x3f00, 0x104, 0x104, 6],
  ]);
});

test('TCS and TLS pages point at each thread\'s SSA, stacks, TLS and the PAL entry', () => {
  const manifestSgx = read('case4-dcap.manifest.sgx');
  const areas = layoutGramineEnclave({ enclaveSize: 0x20000000, maxThreads: 2, edmm: false, manifestSgx, pal: { bytes: pal, elf: parseElf(pal) } });
  const find = (n: string) => areas.filter((a) => a.name === n);
  const [tcs] = find('tcs');
  const [tls] = find('tls');
  const [ssa] = find('ssa');
  const stacks = find('stack');
  const sig = find('sig_stack');
  const palStart = find('data')[0].start;
  const tcsView = new DataView(tcs.content!.buffer);
  const tlsView = new DataView(tls.content!.buffer);
  for (let t = 0; t < 2; t++) {
    const c = t * 4096;
    assert.equal(Number(tcsView.getBigUint64(c + 16, true)), ssa.start + t * 2 * 16384, 'OSSA');
    assert.equal(tcsView.getUint32(c + 28, true), 2, 'NSSA');
    assert.equal(Number(tcsView.getBigUint64(c + 32, true)), palStart + 0x1000, 'OENTRY');
    assert.equal(Number(tcsView.getBigUint64(c + 56, true)), tls.start + t * 4096, 'OGSBASE');
    assert.equal(tcsView.getUint32(c + 64, true), 0xfff);
    assert.equal(tcsView.getUint32(c + 68, true), 0xfff);
    const l = t * 4096;
    const f = (off: number): number => Number(tlsView.getBigUint64(l + off, true));
    assert.equal(f(0), tls.start + t * 4096, 'self');
    assert.equal(f(272), 0x20000000, 'enclave size');
    assert.equal(f(280), tcs.start + t * 4096, 'tcs offset');
    assert.equal(f(288), stacks[t].end, 'initial stack');
    assert.equal(f(304), sig[t].start);
    assert.equal(f(312), sig[t].end);
    assert.equal(f(336), ssa.start + t * 2 * 16384 + 16384 - 184, 'GPR');
    assert.equal(f(416), manifestSgx.length + 1, 'manifest size includes the NUL');
    assert.equal(f(424), 0x10000, 'heap min');
    assert.equal(f(432), palStart, 'heap max');
  }
  assert.deepEqual(areas.at(-1), { name: 'free', start: 0x10000, end: palStart, secinfo: 0x207, measured: false });
});

test('EDMM enclaves add no heap pages', () => {
  const r = measureGramineEnclave({ manifestSgx: 'sgx.edmm_enable = true\nsgx.max_threads = 1\n', pal });
  assert.equal(r.areas.some((a) => a.name === 'free'), false);
  assert.equal(r.areas[0].end, 1024 * 2 ** 30); // default 1024G with EDMM
});

test('every measured input changes MRENCLAVE; PAL bytes outside PT_LOAD segments do not', () => {
  const manifestSgx = read('case1-debug.manifest.sgx');
  const base = measureGramineEnclave({ manifestSgx, pal }).mrenclave;
  const m = Uint8Array.from(manifestSgx);
  m[manifestSgx.indexOf('production') + 1] ^= 1; // one byte of loader.env.APP_MODE
  assert.notEqual(measureGramineEnclave({ manifestSgx: m, pal }).mrenclave, base);
  // even a byte that does not change the parsed manifest: the file is measured, not its meaning
  assert.notEqual(measureGramineEnclave({ manifestSgx: Buffer.concat([manifestSgx, Buffer.from('\n')]), pal }).mrenclave, base);
  const code = Uint8Array.from(pal);
  code[0x1000] ^= 1;
  assert.notEqual(measureGramineEnclave({ manifestSgx, pal: code }).mrenclave, base);
  const sections = Uint8Array.from(pal);
  sections[pal.length - 1] ^= 1; // section headers: not loaded, not measured
  assert.equal(measureGramineEnclave({ manifestSgx, pal: sections }).mrenclave, base);
  const threads = measureGramineEnclave({ manifestSgx: Buffer.from(manifestSgx.toString().replace('max_threads = 4', 'max_threads = 5')), pal });
  assert.notEqual(threads.mrenclave, base);
});

test('an enclave too small for its threads is refused', () => {
  assert.throws(() => measureGramineEnclave({ manifestSgx: 'sgx.enclave_size = "1M"\nsgx.max_threads = 8\n', pal }),
    (e: Error & { code?: string }) => e.code === 'SGX_ENCLAVE_TOO_SMALL' && /not large enough for 8 threads/.test(e.message));
});

test('a PAL that is not a 64-bit x86-64 ELF object is refused', () => {
  const manifestSgx = 'sgx.max_threads = 1\n';
  assert.throws(() => measureGramineEnclave({ manifestSgx, pal: Buffer.from('#!/bin/sh\n'.padEnd(100, ' ')) }), /PAL: not an ELF file/);
  const elf32 = Uint8Array.from(pal);
  elf32[4] = 1;
  assert.throws(() => measureGramineEnclave({ manifestSgx, pal: elf32 }), /PAL: not a 64-bit ELF/);
  const arm = Uint8Array.from(pal);
  arm[18] = 183;
  assert.throws(() => measureGramineEnclave({ manifestSgx, pal: arm }), /machine 183 is not x86-64/);
  assert.throws(() => measureGramineEnclave({ manifestSgx, pal: pal.subarray(0, 0x2000) }), /lies beyond the end of the file/);
});

test('a large non-EDMM enclave (8G, 2M heap pages) is measured in reasonable time', () => {
  const t = Date.now();
  const r = measureGramineEnclave({ manifestSgx: 'sgx.enclave_size = "8G"\nsgx.max_threads = 32\n', pal });
  assert.equal(r.areas.at(-1)!.name, 'free');
  assert.ok(Date.now() - t < 10_000, `took ${Date.now() - t} ms`);
});
