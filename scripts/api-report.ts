/**
 * The API report: every name each public entry point (package.json "exports") exports, with its
 * declaration as the emitted .d.ts has it (comments removed), one file per entry point under api/.
 * A change to the public surface changes these files, so it shows in review.
 *
 *   npm run api:report           regenerate api/*.api.md
 *   node --import tsx scripts/api-report.ts --check    exit 1 when a file is out of date
 *
 * It also lists the "forgotten" types: types that a public declaration refers to (parameters,
 * results, properties, base types) but that no entry point exports, so a user cannot name them.
 * spec/api/report.spec.ts fails when the report is stale or when a type is forgotten.
 *
 * No build is needed: the declarations are emitted in memory from lib/.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../', import.meta.url));

/** The entry points: import specifier → source file (package.json "exports" maps them into dist/). */
export const ENTRY_POINTS: Record<string, string> = {
  enclavify: 'lib/index.ts',
  'enclavify/oci': 'lib/oci/index.ts',
  'enclavify/fs': 'lib/fs/index.ts',
  'enclavify/store': 'lib/store/index.ts',
  'enclavify/gramine': 'lib/runtimes/gramine/index.ts',
  'enclavify/scone': 'lib/runtimes/scone/index.ts',
  'enclavify/coco': 'lib/coco/index.ts',
};

/** api/enclavify.api.md, api/enclavify-oci.api.md, ... */
export function reportFile(entry: string): string {
  return path.join(root, 'api', `${entry.replace(/\//g, '-')}.api.md`);
}

export interface ApiReport {
  /** Report file → its content. */
  files: Map<string, string>;
  /** `Type (file) used by entry:name` for every type used in a public declaration but exported by no entry point. */
  forgotten: string[];
}

function compilerOptions(): ts.CompilerOptions {
  const cfg = ts.readConfigFile(path.join(root, 'tsconfig.build.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, root);
  return { ...parsed.options, noEmit: false, declaration: true, emitDeclarationOnly: true, sourceMap: false, declarationMap: false, removeComments: false };
}

export function buildReport(): ApiReport {
  const options = compilerOptions();
  const entryFiles = Object.values(ENTRY_POINTS).map((f) => path.join(root, f));
  const program = ts.createProgram(entryFiles, options);
  const checker = program.getTypeChecker();
  // Declarations emitted in memory, by source file.
  const dts = new Map<string, ts.SourceFile>();
  program.emit(undefined, (fileName, text) => {
    if (!fileName.endsWith('.d.ts')) return;
    const rel = path.relative(path.join(root, 'dist'), fileName).replace(/\.d\.ts$/, '.ts');
    dts.set(path.join(root, 'lib', rel), ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true));
  }, undefined, true);
  const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });

  const resolve = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const ours = (d: ts.Declaration): boolean => {
    const f = d.getSourceFile().fileName;
    return f.startsWith(path.join(root, 'lib')) && !f.includes('node_modules');
  };
  const exportsOf = new Map<string, Map<string, ts.Symbol>>();
  const exported = new Set<ts.Symbol>();
  for (const [entry, file] of Object.entries(ENTRY_POINTS)) {
    const sf = program.getSourceFile(path.join(root, file));
    if (!sf) throw new Error(`api-report: ${file} not found`);
    const mod = checker.getSymbolAtLocation(sf);
    const m = new Map<string, ts.Symbol>();
    for (const s of mod ? checker.getExportsOfModule(mod) : []) {
      const r = resolve(s);
      m.set(s.name, r);
      exported.add(r);
    }
    exportsOf.set(entry, m);
  }

  // Types referred to by public declarations that no entry exports.
  const forgotten = new Map<string, Set<string>>();
  const note = (s: ts.Symbol | undefined, by: string): void => {
    if (!s) return;
    s = resolve(s);
    if (s.flags & ts.SymbolFlags.TypeParameter || s.name.startsWith('__')) return; // anonymous (function, object, type literal)
    const decl = s.declarations?.[0];
    if (!decl || !ours(decl) || exported.has(s)) return;
    // A member (property, method, enum member) is reachable through its parent.
    if (s.flags & (ts.SymbolFlags.Property | ts.SymbolFlags.Method | ts.SymbolFlags.EnumMember)) return;
    const key = `${s.name} (${path.relative(root, decl.getSourceFile().fileName)})`;
    let by_ = forgotten.get(key);
    if (!by_) forgotten.set(key, (by_ = new Set()));
    by_.add(by);
  };
  const seenTypes = new Set<ts.Type>();
  const walkType = (t: ts.Type, by: string, depth = 0): void => {
    if (depth > 4 || seenTypes.has(t)) return;
    seenTypes.add(t);
    note(t.aliasSymbol, by);
    for (const a of t.aliasTypeArguments ?? []) walkType(a, by, depth + 1);
    if (t.isUnionOrIntersection()) for (const u of t.types) walkType(u, by, depth + 1);
    const s = t.getSymbol();
    if (s && !(s.flags & ts.SymbolFlags.TypeLiteral) && !(s.flags & ts.SymbolFlags.ObjectLiteral)) note(s, by);
    if (t.flags & ts.TypeFlags.Object && (t as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference) {
      for (const a of checker.getTypeArguments(t as ts.TypeReference)) walkType(a, by, depth + 1);
    }
  };
  const walkNode = (n: ts.Node, by: string): void => {
    if (ts.isBlock(n)) return; // function bodies
    if ((ts.isPropertyDeclaration(n) || ts.isMethodDeclaration(n) || ts.isGetAccessor(n) || ts.isConstructorDeclaration(n)) && ts.getCombinedModifierFlags(n) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) {
      // a private constructor's parameter properties may still be public
      if (!ts.isConstructorDeclaration(n)) return;
    }
    if (ts.isParameter(n) && ts.isConstructorDeclaration(n.parent) && ts.getCombinedModifierFlags(n) & ts.ModifierFlags.Private) return;
    if (ts.isVariableDeclaration(n) && n.initializer && !n.type) {
      walkType(checker.getTypeAtLocation(n.name), by);
      return;
    }
    if (ts.isParameter(n) && n.initializer) {
      if (n.type) walkNode(n.type, by);
      return;
    }
    if (ts.isTypeReferenceNode(n)) note(checker.getSymbolAtLocation(n.typeName), by);
    else if (ts.isExpressionWithTypeArguments(n)) note(checker.getSymbolAtLocation(n.expression), by);
    else if (ts.isTypeQueryNode(n)) note(checker.getSymbolAtLocation(n.exprName), by);
    if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && !n.type) {
      const sig = checker.getSignatureFromDeclaration(n);
      if (sig) walkType(checker.getReturnTypeOfSignature(sig), by);
    }
    if (ts.isPropertyDeclaration(n) && !n.type && n.initializer) walkType(checker.getTypeAtLocation(n.name), by);
    ts.forEachChild(n, (c) => walkNode(c, by));
  };

  const files = new Map<string, string>();
  for (const [entry, m] of exportsOf) {
    const lines: string[] = [];
    const names = [...m.keys()].sort();
    for (const name of names) {
      const s = m.get(name)!;
      for (const d of s.declarations ?? []) if (ours(d)) walkNode(d, `${entry}:${name}`);
      lines.push(...declarationText(s, name, dts, printer));
    }
    const head = [
      `# API report: \`${entry}\``,
      '',
      `Generated by \`npm run api:report\` from ${ENTRY_POINTS[entry]} (do not edit). Every exported name with its`,
      'declaration as the emitted .d.ts has it, comments removed, sorted by name.',
      '',
      '```ts',
    ];
    files.set(reportFile(entry), [...head, ...lines, '```', ''].join('\n'));
  }
  const list = [...forgotten].map(([k, by]) => `${k} used by ${[...by].sort().slice(0, 3).join(', ')}${by.size > 3 ? `, … (${by.size - 3} more)` : ''}`).sort();
  return { files, forgotten: list };
}

/**
 * Declarations shown in short: the error code table changes with every new code (docs/errors.md,
 * generated and checked by spec/oci/errors.spec.ts, lists them), and a report that changed with
 * each would make every branch that adds a code conflict with every other.
 */
const SHORT: Record<string, string> = {
  ERROR_CODES: 'export declare const ERROR_CODES: { readonly [code in ErrorCode]: { readonly exit: 1 | 2 | 3; readonly summary: string } }; // every code: docs/errors.md',
  ErrorCode: "export type ErrorCode = keyof typeof ERROR_CODES; // 'ABORTED' | 'AMBIGUOUS' | ... (docs/errors.md)",
};

/** The declaration(s) of `s` as emitted, printed without comments; `export { X as name }` when the name differs. */
function declarationText(s: ts.Symbol, name: string, dts: Map<string, ts.SourceFile>, printer: ts.Printer): string[] {
  const short = SHORT[s.name];
  if (short) return [short];
  const out: string[] = [];
  const seen = new Set<string>();
  for (const d of s.declarations ?? []) {
    const srcFile = d.getSourceFile().fileName;
    const emitted = dts.get(srcFile);
    const declName = s.name;
    if (!emitted) continue;
    for (const st of emitted.statements) {
      if (!namesOf(st).includes(declName)) continue;
      let text = printer.printNode(ts.EmitHint.Unspecified, st, emitted);
      if (declName !== name) text += `\n// exported as ${name}`;
      if (ts.isVariableStatement(st) && st.declarationList.declarations.length > 1) text = `// (one of) ${text}`;
      if (!seen.has(text)) {
        seen.add(text);
        out.push(text);
      }
    }
    break; // one file holds them all (overloads, merged declarations)
  }
  if (!out.length) out.push(`// ${name}: declaration not found`);
  return out;
}

function namesOf(st: ts.Statement): string[] {
  if (ts.isVariableStatement(st)) return st.declarationList.declarations.map((d) => (ts.isIdentifier(d.name) ? d.name.text : ''));
  if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st) || ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isEnumDeclaration(st)) && st.name) return [st.name.text];
  return [];
}

/** Writes the report files (or, with `check`, compares them); returns the stale files' paths. */
export function writeReport(report: ApiReport, check = false): string[] {
  const stale: string[] = [];
  for (const [file, text] of report.files) {
    const old = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    if (old === text) continue;
    stale.push(path.relative(root, file));
    if (!check) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
    }
  }
  return stale;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const check = process.argv.includes('--check');
  const report = buildReport();
  const stale = writeReport(report, check);
  if (report.forgotten.length) {
    console.error(`api-report: ${report.forgotten.length} type(s) used in public declarations but exported by no entry point:\n  ${report.forgotten.join('\n  ')}`);
  }
  if (check && stale.length) console.error(`api-report: out of date: ${stale.join(', ')}; run \`npm run api:report\``);
  else if (!check) console.log(stale.length ? `api-report: wrote ${stale.join(', ')}` : 'api-report: up to date');
  if ((check && stale.length) || report.forgotten.length) process.exit(1);
}
