/**
 * The API report (api/*.api.md) is the public surface as it is checked in: a change to an entry
 * point's exports or to an exported declaration must come with a regenerated report (`npm run
 * api:report`), so that it is seen in review. Every type a public declaration uses must be
 * exported by some entry point. No build needed: declarations are emitted in memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildReport, ENTRY_POINTS, reportFile, writeReport } from '../../scripts/api-report.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

const report = buildReport();

test('the API report is up to date (run `npm run api:report` and commit api/ when this fails)', () => {
  const stale = writeReport(report, true);
  assert.deepEqual(stale, [], `out of date: ${stale.join(', ')}. The public API changed: run \`npm run api:report\`, review the diff of api/ and commit it.`);
});

test('every type used in a public declaration is exported by some entry point', () => {
  assert.deepEqual(report.forgotten, [], 'export these types from an entry point (lib/index.ts or a subpath), or stop using them in public declarations');
});

test('package.json exports every entry point of the report, into dist/, with types, import and default', () => {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
  for (const [entry, src] of Object.entries(ENTRY_POINTS)) {
    const sub = entry === 'enclavify' ? '.' : `./${entry.slice('enclavify/'.length)}`;
    const e = pkg.exports[sub];
    assert.ok(e, `package.json exports lacks ${sub}`);
    const js = `./${src.replace(/^lib\//, 'dist/').replace(/\.ts$/, '.js')}`;
    assert.equal(e.import, js, sub);
    assert.equal(e.types, js.replace(/\.js$/, '.d.ts'), sub);
    if (sub !== '.') assert.equal(e.default, js, sub); // "." is another change's
    assert.ok(reportFile(entry).endsWith('.api.md'));
  }
});

test('no CLI-only helper is exported from an entry point', () => {
  const all = [...report.files.values()].join('\n');
  // lib/cli/format.ts renders reports as CLI text; the others serve the CLI's own defaults and checks.
  const cliOnly = ['formatClassificationReport', 'formatEncryptReport', 'formatFindings', 'formatInspection', 'formatSigningFindings', 'DEBIAN_LAYOUT', 'checkSconeFileProtection', 'writeFileAtomic'];
  for (const name of cliOnly) assert.doesNotMatch(all, new RegExp(`\\b(function|const|class) ${name}\\b`), name);
});
