// `npm run build`: dist/ from lib/ in two passes of tsc, so that the package stays small (issue
// 8's 500 kB budget; the measurements are in docs/performance.md, "Packaging and start-up"):
//  1. the JavaScript without comments (tsconfig.build.json) and its source maps, which this
//     script then shrinks: each map keeps one segment per generated line and original line (a
//     stack trace under `node --enable-source-maps` names the lib/*.ts file and line, the column
//     of the statement), and the JavaScript is indented with tabs instead of tsc's 4 spaces.
//     The maps name ../lib/*.ts: in a checkout these are the sources; the package does not ship
//     them (sources and compiled code together cannot fit the budget).
//  2. the declarations with their TSDoc (tsconfig.types.json), without declaration maps (they
//     would point at sources the package does not ship).
// Plain JavaScript so that it runs before anything is compiled.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../', import.meta.url));
const dist = path.join(root, 'dist');
const tsc = require.resolve('typescript/bin/tsc');
rmSync(dist, { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.types.json']) {
  execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
}

const ts = require('typescript');
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DIGIT = Object.fromEntries([...B64].map((c, i) => [c, i]));

/** The numbers of one Base64 VLQ segment. */
function decodeSegment(s) {
  const out = [];
  let v = 0;
  let shift = 0;
  for (const c of s) {
    const d = DIGIT[c];
    if (d === undefined) throw new Error(`build: bad source map segment ${JSON.stringify(s)}`);
    v += (d & 31) << shift;
    if (d & 32) shift += 5;
    else {
      out.push(v & 1 ? -(v >>> 1) : v >>> 1);
      v = 0;
      shift = 0;
    }
  }
  return out;
}

function encode(n) {
  let v = n < 0 ? (-n << 1) | 1 : n << 1;
  let s = '';
  do {
    let d = v & 31;
    v >>>= 5;
    if (v) d |= 32;
    s += B64[d];
  } while (v);
  return s;
}

/**
 * The map at line granularity: per generated line, the segments where the original line changes
 * (usually one), the first at generated column 0; `shift[i]` is what the re-indentation took off
 * the start of generated line i. `names` are dropped (tsc emits none for this code anyway).
 */
export function lineMap(map, shift) {
  let src = 0, line = 0, col = 0;
  let pSrc = 0, pLine = 0, pCol = 0;
  const lines = map.mappings.split(';').map((generated, i) => {
    let genCol = 0;
    let pGenCol = 0;
    let lastLine = -1;
    const kept = [];
    for (const seg of generated ? generated.split(',') : []) {
      const f = decodeSegment(seg);
      genCol += f[0];
      if (f.length < 4) continue;
      src += f[1];
      line += f[2];
      col += f[3];
      if (line === lastLine && src === pSrc) continue;
      lastLine = line;
      const at = kept.length === 0 ? 0 : genCol - (shift[i] ?? 0);
      kept.push(encode(at - pGenCol) + encode(src - pSrc) + encode(line - pLine) + encode(col - pCol));
      pGenCol = at;
      pSrc = src;
      pLine = line;
      pCol = col;
    }
    return kept.join(',');
  });
  return { version: 3, file: map.file, sources: map.sources, names: [], mappings: lines.join(';') };
}

/**
 * tsc's output re-indented with a tab a level (tsc writes 4 spaces): 11 kB less in the tarball.
 * Lines that start inside a string or template literal are left alone (their spaces are data).
 * Returns the text and, per line, how many characters came off its start.
 */
export function reindent(text, file) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const literals = [];
  const visit = (n) => {
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) {
      literals.push([n.getStart(sf), n.end]);
    }
    n.forEachChild(visit);
    // The literal parts of a template are tokens, not children: record them too.
    if (ts.isTemplateExpression(n)) {
      literals.push([n.head.getStart(sf), n.head.end]);
      for (const span of n.templateSpans) literals.push([span.literal.getStart(sf), span.literal.end]);
    }
  };
  visit(sf);
  literals.sort((a, b) => a[0] - b[0]);
  let pos = 0;
  let k = 0;
  const shift = [];
  const lines = text.split('\n').map((l) => {
    const start = pos;
    pos += l.length + 1;
    while (k < literals.length && literals[k][1] <= start) k++;
    for (let i = k; i < literals.length && literals[i][0] < start; i++) {
      if (start < literals[i][1]) {
        shift.push(0);
        return l;
      }
    }
    const out = l.replace(/^(?: {4})+/, (s) => '\t'.repeat(s.length / 4));
    shift.push(l.length - out.length);
    return out;
  });
  return { text: lines.join('\n'), shift };
}

for (const rel of readdirSync(dist, { recursive: true })) {
  if (!/\.c?js$/.test(rel)) continue;
  const file = path.join(dist, rel);
  const { text, shift } = reindent(readFileSync(file, 'utf8'), rel);
  writeFileSync(file, text);
  writeFileSync(`${file}.map`, JSON.stringify(lineMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')), shift)));
}

// Declarations no entry point reaches are never read by a consumer's compiler (lib/cli, the
// protected-file internals, ...): they are removed, 20 kB less in the tarball. Reachability
// follows the declarations' own relative imports from the `types` of every export.
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const reached = new Set();
const todo = Object.values(pkg.exports).filter((v) => typeof v === 'object' && v.types).map((v) => path.join(root, v.types));
while (todo.length) {
  const file = todo.pop();
  if (reached.has(file)) continue;
  reached.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:\bfrom|\bimport\()\s*['"](\.\.?\/[^'"]+)['"]/g)) {
    todo.push(path.join(path.dirname(file), m[1].replace(/\.js$/, '.d.ts')));
  }
}
for (const rel of readdirSync(dist, { recursive: true })) {
  const file = path.join(dist, rel);
  if (file.endsWith('.d.ts') && !reached.has(file)) rmSync(file);
}
