/**
 * Structure-aware mutations for the fuzzer: tar archives are mutated header field by header field
 * (numbers in octal and base-256, types, names, PAX records, links, whiteouts, truncation), JSON
 * documents node by node (nesting, types, ranges), compressed streams byte by byte. Everything is
 * driven by a seeded PRNG, so a finding is reproduced by its seed and iteration.
 */
import { base256, BLOCK, FIELDS, fixChecksum, header, NUMERIC_FIELDS, octal, padded, paxHeader, type Field } from './tar-build.js';

/** A small seeded PRNG (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Offsets of the header blocks of a tar (walking sizes as the reader would; stops at garbage). */
export function headerOffsets(tar: Buffer): number[] {
  const out: number[] = [];
  let off = 0;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    out.push(off);
    const s = h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim();
    const size = /^[0-7]+$/.test(s) ? parseInt(s, 8) : 0;
    const t = String.fromCharCode(h[156]);
    const hasData = t === '0' || t === '\0' || t === '7' || t === 'x' || t === 'g' || t === 'L' || t === 'K';
    off += BLOCK + (hasData ? Math.ceil(size / BLOCK) * BLOCK : 0);
  }
  return out;
}

const INTERESTING_NUMBERS: bigint[] = [0n, 1n, -1n, 511n, 512n, 513n, -512n, (1n << 31n) - 1n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, 1n << 63n, -(1n << 63n), 1n << 90n, -(1n << 94n)];

function numericValue(rng: Rng, len: number): Buffer {
  switch (rng.int(6)) {
    case 0: return base256(rng.pick(INTERESTING_NUMBERS), len);
    case 1: return base256(BigInt(rng.int(2 ** 31)) * (rng.chance(0.5) ? -1n : 1n) * BigInt(1 + rng.int(1 << 20)), len);
    case 2: return octal(rng.int(2 ** 30), len).subarray(0, len);
    case 3: return Buffer.from(rng.pick(['', ' ', '8', '-1', '0x10', '7777777777777777777', ' 12 ', '1e9', '\u00ff\u00ff']), 'latin1');
    case 4: return rng.bytes(len);
    default: return Buffer.from('7'.repeat(len), 'latin1');
  }
}

const NAMES = ['a', 'dir/', '../escape', '/abs/path', './dot', 'a/../../b', 'x\0y', '.wh.a', 'dir/.wh..wh..opq', '.wh.', '.wh..', 'a'.repeat(256), 'é'.repeat(200), 'd/'.repeat(2100)];
const TYPES = ['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'D', 'M', 'V', '\0', 'Z'];

function nameBytes(rng: Rng): Buffer {
  if (rng.chance(0.15)) return rng.bytes(1 + rng.int(100)); // not UTF-8, most likely
  return Buffer.from(rng.pick(NAMES), 'utf8');
}

/** A PAX header with random, often hostile records. */
function hostilePax(rng: Rng): Buffer {
  const recs: Record<string, string | Buffer> = {};
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    const key = rng.pick(['size', 'path', 'linkpath', 'uid', 'gid', 'mtime', 'atime', 'GNU.sparse.major', 'SCHILY.xattr.user.x', 'uname']);
    const num = rng.pick(['-1', '0', '1.5', '99999999999999999999', '1e3', 'NaN', '', String(rng.int(1e9)), '-9007199254740993', '1'.repeat(30)]);
    recs[key] = key === 'path' || key === 'linkpath' ? nameBytes(rng) : key.startsWith('SCHILY') ? rng.bytes(rng.int(20)) : num;
  }
  const pax = paxHeader(recs);
  if (rng.chance(0.2)) {
    // a malformed record: wrong length prefix, missing newline, or no key
    const data = Buffer.from(rng.pick(['5 a=b\n', '30 path=x\n', '3 =\n', 'abc def\n', '10 nonewline']));
    return Buffer.concat([header({ name: 'PaxHeader', type: rng.pick(['x', 'g']), size: data.length }), padded(data)]);
  }
  return pax;
}

/** One structure-aware mutation of a tar archive. */
export function mutateTar(tar: Buffer, rng: Rng): Buffer {
  const out = Buffer.from(tar);
  const heads = headerOffsets(out);
  const at = heads.length ? rng.pick(heads) : 0;
  const fixSum = rng.chance(0.85);
  const finish = (b: Buffer) => {
    if (fixSum && at + BLOCK <= b.length) fixChecksum(b.subarray(at, at + BLOCK));
    return b;
  };
  if (at + BLOCK > out.length) return rng.bytes(rng.int(2048));
  switch (rng.int(10)) {
    case 0:
    case 1: {
      const f = rng.pick(NUMERIC_FIELDS);
      const [off, len] = FIELDS[f];
      out.fill(0, at + off, at + off + len);
      numericValue(rng, len).copy(out, at + off, 0, len);
      return finish(out);
    }
    case 2:
      out[at + 156] = rng.pick(TYPES).charCodeAt(0);
      return finish(out);
    case 3: {
      const f: Field = rng.pick(['name', 'linkname', 'prefix', 'uname', 'magic'] as const);
      const [off, len] = FIELDS[f];
      out.fill(0, at + off, at + off + len);
      nameBytes(rng).copy(out, at + off, 0, len);
      return finish(out);
    }
    case 4: // insert a hostile PAX header before the entry
      return Buffer.concat([out.subarray(0, at), hostilePax(rng), out.subarray(at)]);
    case 5: // insert an entry: a whiteout, a hard link, a symlink or a directory over something
    {
      const t = rng.pick(['1', '2', '5', '0', '3']);
      const e = header({ name: rng.pick(['.wh.a', 'a', 'a/b', 'dir/.wh..wh..opq', 'link', 'dir']), type: t, linkname: rng.pick(['a', 'missing', '/etc/passwd', '../x', 'dir']) });
      return Buffer.concat([out.subarray(0, at), e, out.subarray(at)]);
    }
    case 6: // truncate
      return out.subarray(0, rng.int(out.length));
    case 7: // flip bytes inside a header
      for (let i = 0; i < 1 + rng.int(8); i++) out[at + rng.int(BLOCK)] ^= 1 << rng.int(8);
      return finish(out);
    case 8: // duplicate or drop a block
      if (rng.chance(0.5)) return Buffer.concat([out.subarray(0, at + BLOCK), out.subarray(at)]);
      return Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + BLOCK))]);
    default: // garbage after the header or in place of the end marker
      return Buffer.concat([out.subarray(0, at + BLOCK), rng.bytes(rng.int(1500)), out.subarray(at + BLOCK)]);
  }
}

/** One mutation of a JSON document (structure-aware when it parses, textual otherwise). */
export function mutateJson(text: string, rng: Rng): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  if (doc === undefined || rng.chance(0.2)) {
    switch (rng.int(5)) {
      case 0: return text.slice(0, rng.int(text.length));
      case 1: return '['.repeat(65 + rng.int(100_000)) + text;
      case 2: { const i = rng.int(text.length + 1); return text.slice(0, i) + rng.pick(['{', '}', '[', ']', '"', '\\', ',', ':', '\u0000', '\ud800']) + text.slice(i); }
      case 3: return text + rng.pick([' ', 'x', '}', '\n\n']);
      default: return rng.bytes(rng.int(200)).toString('latin1');
    }
  }
  const nodes: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach((v, i) => { nodes.push({ parent: x, key: i }); walk(v); });
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) { nodes.push({ parent: x as Record<string, unknown>, key: k }); walk(v); }
  };
  walk(doc);
  if (!nodes.length) return JSON.stringify(doc);
  const { parent, key } = rng.pick(nodes);
  const deep = (d: number): unknown => { let v: unknown = 1; for (let i = 0; i < d; i++) v = rng.chance(0.5) ? [v] : { a: v }; return v; };
  const values: Array<() => unknown> = [
    () => null, () => -1, () => 1.5, () => 2 ** 64, () => -(2 ** 60), () => '', () => 'x'.repeat(5000), () => [], () => ({}),
    () => deep(63), () => deep(70), () => 'sha256:' + 'a'.repeat(64), () => 'sha256:zz', () => 'sha999:' + '0'.repeat(64), () => true,
    () => '../../etc/passwd', () => ({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: 'sha256:' + '0'.repeat(64), size: 2 }),
  ];
  if (rng.chance(0.15)) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
  } else (parent as Record<string | number, unknown>)[key] = rng.pick(values)();
  if (rng.chance(0.1) && !Array.isArray(doc) && doc && typeof doc === 'object') (doc as Record<string, unknown>)[rng.pick(['schemaVersion', 'mediaType', 'layers', 'manifests', 'config', 'rootfs'])] = rng.pick(values)();
  // JSON.stringify recurses: a document nested past a few thousand levels is built as text above
  return JSON.stringify(doc);
}

/** One mutation of a compressed (or any) byte stream. */
export function mutateBytes(b: Buffer, rng: Rng): Buffer {
  const out = Buffer.from(b);
  switch (rng.int(6)) {
    case 0: for (let i = 0; i < 1 + rng.int(4); i++) if (out.length) out[rng.int(out.length)] ^= 1 << rng.int(8); return out;
    case 1: return out.subarray(0, rng.int(out.length));
    case 2: return Buffer.concat([out, rng.bytes(1 + rng.int(64))]);
    case 3: return Buffer.concat([out, out]); // two members / frames
    case 4: if (out.length > 20) out.fill(0, 10 + rng.int(out.length - 20), out.length - rng.int(10)); return out;
    default: { const i = rng.int(out.length + 1); return Buffer.concat([out.subarray(0, i), rng.bytes(1 + rng.int(16)), out.subarray(i)]); }
  }
}
