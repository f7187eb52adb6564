/**
 * The README's library example is examples/quick-start.ts, which `npm run typecheck` checks under
 * strict and exactOptionalPropertyTypes: the two must stay the same code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { repoRoot } from '../helpers/tools.js';
import path from 'node:path';

test('the README quick start is examples/quick-start.ts (type-checked)', () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const block = /## Quick start \(library\)\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'README has a ts block under "Quick start (library)"');
  const example = readFileSync(path.join(repoRoot, 'examples/quick-start.ts'), 'utf8').replace("from '../lib/index.js'", "from 'enclavify'");
  assert.equal(block, example);
});
