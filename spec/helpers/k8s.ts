/**
 * Validation of rendered Kubernetes objects with `kubernetes-models` (the Kubernetes OpenAPI
 * schemas, 1.27): each object is checked by the model of its apiVersion and kind; an object whose
 * kind the package does not know fails, so nothing we emit goes unchecked.
 */
import assert from 'node:assert/strict';

interface Model { validate(): void }
type ModelClass = new (o: unknown) => Model;

const groups = new Map<string, Promise<Record<string, unknown>>>();

/** Validates every object; the assertion names the object and what the schema found. */
export async function assertValidKubernetes(objects: ReadonlyArray<{ apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } }>, what = ''): Promise<void> {
  assert.ok(objects.length > 0, `${what}: no objects`);
  for (const o of objects) {
    const apiVersion = String(o.apiVersion);
    const kind = String(o.kind);
    if (!groups.has(apiVersion)) groups.set(apiVersion, import(`kubernetes-models/${apiVersion}`) as Promise<Record<string, unknown>>);
    const group = await groups.get(apiVersion)!.catch(() => ({}) as Record<string, unknown>);
    const M = group[kind] as ModelClass | undefined;
    assert.ok(M, `${what}: kubernetes-models has no ${apiVersion} ${kind}`);
    try {
      new M(o).validate();
    } catch (e) {
      assert.fail(`${what}: ${apiVersion} ${kind} ${String(o.metadata?.name)} is not a valid Kubernetes object: ${(e as Error).message}`);
    }
  }
}
