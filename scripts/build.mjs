// `npm run build`: dist/ from lib/ in two passes of tsc, so that the package stays small: the
// JavaScript without comments (tsconfig.build.json), the declarations with their TSDoc
// (tsconfig.types.json). Plain JavaScript so that it runs before anything is compiled.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(new URL('../dist/', import.meta.url), { recursive: true, force: true });
for (const project of ['tsconfig.build.json', 'tsconfig.types.json']) {
  execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
}
