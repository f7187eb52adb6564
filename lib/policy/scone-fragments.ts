/**
 * User-supplied policy fragments: `--secrets FILE` (secrets) and `--injectedfiles FILE` (injected
 * files). A fragment is either a bare YAML list or a mapping with the one key `secrets` /
 * `injection_files`, as in a full session. Entries are checked against the session schema here so
 * that errors name the file.
 *
 * Fragments may hold explicit secret values, so errors give the file, the entry index and the rule,
 * never the content.
 */
import { yaml } from '../oci/lazy-deps.js';
import type { SconeInjectionFile, SconeSecret } from './scone-types.js';
import { formatProblems, validateSconeDefinition } from './validate.js';
import { EnclavifyError } from '../oci/errors.js';

/** A policy fragment and where it came from (a file name, used in error messages). */
export interface PolicyFragment {
  /** Where the fragment came from, e.g. the `--secrets` file name. */
  source: string;
  /** The fragment as YAML text... */
  text?: string;
  /** ...or already parsed. Exactly one of `text` and `value`. */
  value?: unknown;
}

/** Parses a fragment's YAML text, or returns its value. `option` is the CLI option for errors. */
function fragmentValue(f: PolicyFragment, option: string): unknown {
  const where = `${option} ${f.source}`;
  if ((f.text === undefined) === (f.value === undefined)) {
    throw new EnclavifyError('BAD_POLICY', `${where}: give exactly one of text and value`);
  }
  if (f.text === undefined) return f.value;
  // prettyErrors off: the pretty form quotes source lines, which may hold secret values.
  const { LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(f.text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const pos = lineCounter.linePos(e.pos[0]);
    throw new EnclavifyError('BAD_POLICY', `${where}: invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''} (${e.code})`);
  }
  return doc.toJS();
}

/** The list inside a fragment: a bare list, `{<key>: [...]}`, or nothing (empty file). */
function fragmentList(f: PolicyFragment, option: string, key: string): unknown[] {
  const v = fragmentValue(f, option);
  if (v === null || v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    const inner = (v as Record<string, unknown>)[key];
    if (keys.length === 1 && keys[0] === key) {
      if (inner === null) return [];
      if (Array.isArray(inner)) return inner;
    }
  }
  throw new EnclavifyError('BAD_POLICY', `${option} ${f.source}: expected a list, or a mapping with the single key "${key}" holding a list`);
}

/** The secrets of a `--secrets` fragment, each checked against the session schema's `secret`. */
export function secretsFromFragment(f: PolicyFragment): SconeSecret[] {
  const list = fragmentList(f, '--secrets', 'secrets');
  list.forEach((entry, i) => {
    const problems = validateSconeDefinition('secret', entry);
    if (problems.length) {
      throw new EnclavifyError('BAD_POLICY', `--secrets ${f.source}: secret #${i + 1} is invalid:\n${formatProblems(problems, '(secret)')}`);
    }
  });
  return list as SconeSecret[];
}

/** The injected files of an `--injectedfiles` fragment, each checked against `injectionFile`. */
export function injectionFilesFromFragment(f: PolicyFragment): SconeInjectionFile[] {
  const list = fragmentList(f, '--injectedfiles', 'injection_files');
  list.forEach((entry, i) => {
    const problems = validateSconeDefinition('injectionFile', entry);
    if (problems.length) {
      throw new EnclavifyError(
        'BAD_POLICY',
        `--injectedfiles ${f.source}: injected file #${i + 1} is invalid (expected an absolute path, or {path, content, permission}):\n${formatProblems(problems, '(file)')}`,
      );
    }
  });
  return list as SconeInjectionFile[];
}
