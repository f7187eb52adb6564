/**
 * Generates docs/errors.md from ERROR_CODES (lib/oci/errors.ts): `npm run docs:errors`.
 * spec/oci/errors.spec.ts fails when the checked-in file differs from what this prints.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, type ErrorCode } from '../lib/oci/errors.js';

/** Area prefixes (the part of a code before its first `_`) and their section titles, in order. */
const AREAS: Record<string, string> = {
  BLOB: 'Blobs',
  TAR: 'Tar streams',
  LAYER: 'Layers and the merged view',
  FS: 'Files inside an image',
  CLASSIFY: 'Classification',
  RULE: 'Classification rules',
  STARTUP: 'Startup files (the entrypoint and what it loads)',
  ENCRYPT: 'encryptFS',
  PF: 'Gramine encrypted files',
  MANIFEST: 'The protection manifest',
  KEY: 'Keys',
  KEYS: 'Keys files',
  GRAMINE: 'The Gramine runtime and signing',
  SCONE: 'The SCONE runtime',
  SGX: 'SGX enclaves: measurement and SIGSTRUCT',
  SIGSTRUCT: 'SGX enclaves: measurement and SIGSTRUCT',
  CHART: 'Helm charts',
  PIPELINE: 'Pipelines',
};

const EXIT_MEANING: Record<number, string> = { 1: '1 (failure)', 2: '2 (usage)', 3: '3 (findings)' };

function area(code: string): string {
  return AREAS[code.split('_')[0]] ?? 'General';
}

/** The text of docs/errors.md. */
export function renderErrorsDoc(): string {
  const groups = new Map<string, ErrorCode[]>([['General', []]]);
  for (const title of Object.values(AREAS)) if (!groups.has(title)) groups.set(title, []);
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) groups.get(area(code))!.push(code);
  const out = [
    '# Error codes',
    '',
    '<!-- Generated from lib/oci/errors.ts by `npm run docs:errors`; do not edit by hand. -->',
    '',
    'Every error enclavify throws is an `EnclavifyError` (`import { EnclavifyError, ERROR_CODES } from \'enclavify\'`)',
    'whose `code` is one of the codes below; its message names the image, blob or file and what is wrong',
    '(never a key, a password or a token) and, when it wraps another error (a system error, a custom',
    'transform\'s error), that error is its `cause`. The CLI prints `enclavify COMMAND: MESSAGE` on stderr,',
    '`{"error": {"code", "message"}}` on stdout with `--json`, and exits with the code\'s exit status;',
    'it exits 130 on SIGINT and 143 on SIGTERM after removing its temporary files.',
    '',
    `${Object.keys(ERROR_CODES).length} codes.`,
    '',
  ];
  for (const [title, codes] of groups) {
    if (!codes.length) continue;
    out.push(`## ${title}`, '', '| code | exit | meaning |', '|---|---|---|');
    for (const c of codes) out.push(`| \`${c}\` | ${EXIT_MEANING[ERROR_CODES[c].exit]} | ${ERROR_CODES[c].summary.replace(/\|/g, '\\|')} |`);
    out.push('');
  }
  return out.join('\n');
}

/** Where the generated file lives. */
export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(ERRORS_DOC, renderErrorsDoc());
  console.log(`wrote ${ERRORS_DOC}`);
}
