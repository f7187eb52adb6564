/**
 * Generates lib/schemas/*.ts from schemas/*.schema.json: `npm run schemas`. The JSON files are the
 * public, documented schemas; the library imports these modules instead of reading the files at
 * run time, so that it works when bundled (no path relative to the package). spec/package/schemas.spec.ts
 * fails when a module differs from what this writes.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

/** `scone-session.schema.json` → `sconeSession`. */
export function exportName(file: string): string {
  return file.replace(/\.schema\.json$/, '').replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());
}

/** The modules to write: path relative to the repository → text. */
export function schemaModules(): Map<string, string> {
  const out = new Map<string, string>();
  const files = readdirSync(path.join(root, 'schemas')).filter((f) => f.endsWith('.schema.json')).sort();
  for (const f of files) {
    const schema = JSON.parse(readFileSync(path.join(root, 'schemas', f), 'utf8')) as unknown;
    out.set(
      `lib/schemas/${f.replace(/\.schema\.json$/, '')}.ts`,
      `/* Generated from schemas/${f} by \`npm run schemas\`; do not edit. */\n` +
        `/** The JSON Schema \`schemas/${f}\`, as a module. */\n` +
        `const schema: { readonly $id: string; readonly [key: string]: unknown } = ${JSON.stringify(schema)};\n` +
        `export default schema;\n`,
    );
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  mkdirSync(path.join(root, 'lib', 'schemas'), { recursive: true });
  for (const [rel, text] of schemaModules()) {
    writeFileSync(path.join(root, rel), text);
    console.log(`wrote ${rel}`);
  }
}
