/**
 * `npm test`: every spec file under node's test runner (files run concurrently), with TMPDIR set
 * to a fresh directory; afterwards the run fails if an `enclavify-*` temporary directory created
 * by it survives (the library's, or a test's scratch directory). Arguments replace the file list.
 * XDG_CACHE_HOME points into that directory too: `convert`'s scan cache never touches the user's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

function specs(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? specs(path.join(dir, d.name)) : d.name.endsWith('.spec.ts') ? [path.join(dir, d.name)] : []))
    .sort();
}

const tmp = mkdtempSync(path.join(tmpdir(), 'enclavify-suite-'));
const files = process.argv.length > 2 ? process.argv.slice(2) : specs('spec');
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], { cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: path.join(tmp, 'xdg-cache') } });
const left = readdirSync(tmp).filter((n) => n.startsWith('enclavify-'));
rmSync(tmp, { recursive: true, force: true });
if (left.length) {
  console.error(`\nnpm test: ${left.length} temporary director${left.length > 1 ? 'ies' : 'y'} survived the run (not disposed, not removed):\n  ${left.join('\n  ')}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
