/**
 * Locating the real, independent tools the interop tests check us against (skopeo, umoci, the
 * distribution registry, chart-render). A test that needs a missing tool is skipped, unless
 * REQUIRE_INTEROP=1 (set by .ci/run), in which case the missing tool is an error: CI must always
 * run these tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The shared folder beside the repository (fixtures, reference notes, tools). */
export const shared = path.resolve(repoRoot, '..', 'shared');
export const fixtures = path.join(shared, 'fixtures');

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Where chart-render lives: $CHART_RENDER, or the path .ci/run builds it to. */
export function chartRenderPath(): string | undefined {
  const candidates = [process.env.CHART_RENDER, '/tmp/enclavify-tools/chart-render', which('chart-render')];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

export type ToolName = 'skopeo' | 'umoci' | 'docker-registry' | 'htpasswd' | 'chart-render';

/**
 * Returns the tool's path, or a skip reason for node:test's `{ skip }` option. With
 * REQUIRE_INTEROP=1 a missing tool throws, failing the test run instead of skipping.
 */
export function tool(name: ToolName): { path?: string; skip: string | false } {
  const p = name === 'chart-render' ? chartRenderPath() : which(name);
  if (p) return { path: p, skip: false };
  if (process.env.REQUIRE_INTEROP === '1') {
    throw new Error(`REQUIRE_INTEROP=1 but ${name} is not installed (run ../shared/tools/install-interop-tools, or build chart-render to /tmp/enclavify-tools/chart-render)`);
  }
  return { skip: `${name} is not installed` };
}
