/**
 * Dependencies loaded on first use, not when `enclavify` is imported: ajv (JSON Schema
 * validation), yaml (SCONE sessions, Helm charts) and smol-toml (Gramine manifests) together cost
 * about 0.2 s of module loading, which a program that only copies images should not pay.
 *
 * They are CommonJS packages, so Node's `require` loads them synchronously from the functions
 * that need them (validation and parsing are synchronous APIs). A bundler does not follow these
 * calls: keep `ajv`, `yaml` and `smol-toml` as run-time dependencies (external) when bundling.
 */
import { createRequire } from 'node:module';
import type * as AjvModule from 'ajv';
import type * as YamlModule from 'yaml';
import type * as TomlModule from 'smol-toml';

const load = createRequire(import.meta.url);

let ajvModule: typeof AjvModule | undefined;
let yamlModule: typeof YamlModule | undefined;
let tomlModule: typeof TomlModule | undefined;

/** The `ajv` package, loaded on the first call. */
export function ajv(): typeof AjvModule {
  return (ajvModule ??= load('ajv') as typeof AjvModule);
}

/** The `yaml` package, loaded on the first call. */
export function yaml(): typeof YamlModule {
  return (yamlModule ??= load('yaml') as typeof YamlModule);
}

/** The `smol-toml` package, loaded on the first call. */
export function toml(): typeof TomlModule {
  return (tomlModule ??= load('smol-toml') as typeof TomlModule);
}
