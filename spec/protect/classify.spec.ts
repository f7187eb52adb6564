/**
 * fileClassify: rule matching (longest prefix, file over directory, globs), region names,
 * defaults and their overrides, validation errors and warnings, the startup files of bb-fixture's
 * script entrypoint (kept authenticated, refusal of rules that would encrypt them), and the
 * report (schema and text).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openImage, pipeline, type Transform } from '../../lib/index.js';
import { fileClassify, type ClassificationReport } from '../../lib/transforms/file-classify.js';
import { formatClassificationReport } from '../../lib/cli/format.js';
import { CLASSIFICATION, type Classification } from '../../lib/transforms/state.js';
import { globToRegExp, matchRules, normalizeRulePath, regionName, type Rule } from '../../lib/protect/rules.js';
import { protectionSchemaProblems } from '../../lib/protect/schemas.js';
import type { FileClassifyOptions } from '../../lib/transforms/file-classify.js';
import { bbRef } from './encrypt-helpers.js';

async function classify(rules: FileClassifyOptions, ...before: Transform[]): Promise<{ c: Classification; report: ClassificationReport }> {
  const out = await pipeline(await openImage(bbRef), [...before, fileClassify(rules)]);
  try {
    return { c: out.state.get(CLASSIFICATION) as Classification, report: out.report.fileClassify as ClassificationReport };
  } finally {
    await out.dispose();
  }
}

const cls = (c: Classification, p: string) => c.files.get(p)?.class;

// ---- rules ----

test('region names derive from the directory and are safe key names', () => {
  assert.equal(regionName('/app/data'), 'app_data');
  assert.equal(regionName('/'), 'root');
  assert.equal(regionName('/srv/my-app.v2//data/'), 'srv_my_app_v2_data');
  assert.equal(regionName('/2024/x'), 'd_2024_x');
  assert.equal(regionName('/ünï/çødé'), 'n_d');
});

test('rule paths are normalised; relative paths and ".." are refused', () => {
  assert.equal(normalizeRulePath('/app//data/./', '--dir'), '/app/data');
  assert.equal(normalizeRulePath('/', '--dir'), '/');
  assert.throws(() => normalizeRulePath('app/data', '--dir'), { code: 'RULE_BAD_PATH', message: /--dir "app\/data": the path must be absolute/ });
  assert.throws(() => normalizeRulePath('/app/../etc', '--plain'), { code: 'RULE_BAD_PATH', message: /"\.\." is not allowed/ });
});

test('globs: * and ? stay in one component and match dot files, ** spans components, [...] classes', () => {
  const m = (g: string, p: string) => globToRegExp(g).test(p);
  assert.ok(m('/srv/*/data', '/srv/a/data'));
  assert.ok(!m('/srv/*/data', '/srv/a/b/data'));
  assert.ok(m('/srv/*', '/srv/.env'));
  assert.ok(m('/a/**/b', '/a/b') && m('/a/**/b', '/a/x/y/b') && !m('/a/**/b', '/a/x/c'));
  assert.ok(m('/v?r/[lc]*', '/var/log') && m('/v?r/[lc]*', '/var/cache') && !m('/v?r/[lc]*', '/var/tmp'));
  assert.ok(m('/x/[!a]', '/x/b') && !m('/x/[!a]', '/x/a'));
});

test('the longest matching rule wins; a file rule beats a directory rule on the same depth', () => {
  const rules: Rule[] = [
    { path: '/', class: 'authenticated', kind: 'default', source: 'default' },
    { path: '/app', class: 'encrypted', kind: 'dir', region: 'app', source: '--dir /app' },
    { path: '/app/static', class: 'plain', kind: 'plain', source: '--plain /app/static' },
    { path: '/app/static/keep', class: 'authenticated', kind: 'authenticated', source: '--authenticated /app/static/keep' },
    { path: '/app/x', class: 'plain', kind: 'plain-file', fileOnly: true, source: '--plain-file /app/x' },
  ];
  assert.equal(matchRules(rules, '/etc/passwd')?.class, 'authenticated');
  assert.deepEqual([matchRules(rules, '/app/a')?.class, matchRules(rules, '/app/a')?.region], ['encrypted', 'app']);
  assert.equal(matchRules(rules, '/app/static/a')?.class, 'plain');
  assert.equal(matchRules(rules, '/app/static/keep/a')?.class, 'authenticated');
  assert.equal(matchRules(rules, '/app/x')?.class, 'plain');
  assert.equal(matchRules(rules, '/app/x/y')?.class, 'encrypted', 'a file rule covers only its path');
  assert.equal(matchRules(rules, '/apple')?.class, 'authenticated', 'prefixes match whole components');
});

// ---- bb-fixture ----

test('bb-fixture, no rules: defaults (authenticated, /var and friends plain) and the startup files', async () => {
  const { c, report } = await classify({});
  assert.equal(cls(c, '/etc/passwd'), 'authenticated');
  assert.equal(cls(c, '/app/data/secret.txt'), 'authenticated');
  assert.equal(cls(c, '/var/cache/old/c'), 'plain');
  assert.equal(c.files.get('/var/cache/old/c')!.reason, 'default: plain');
  assert.deepEqual(c.startup, ['/app/server.sh', '/bin/busybox']);
  assert.deepEqual(c.entrypoint, { program: '/app/server.sh', argv: ['/app/server.sh'] });
  assert.equal(c.files.get('/bin/busybox')!.reason, 'startup: the interpreter of /app/server.sh (#!/bin/sh)');
  assert.equal(c.files.get('/app/server.sh')!.startup, true);
  assert.deepEqual(c.regions, []);
  assert.deepEqual(report.totals.plain, { files: 1, bytes: 6 });
  assert.equal(report.totals.authenticated.files + report.totals.plain.files, 13);
  // Hard links: both names are listed.
  assert.equal(cls(c, '/app/static/index.html'), 'authenticated');
  assert.equal(cls(c, '/app/static/index-hardlink.html'), 'authenticated');
  assert.equal(c.files.get('/etc/passwd')!.sha256, '7a8a6ad7d404fc76a659a5fa19bcd9f5df96fc33cb04549e0af9bda3342ad35c');
  assert.deepEqual(c.warnings, []);
});

test('bb-fixture --dir /app/data: a report that matches its schema, readable as text', async () => {
  const { c, report } = await classify({ dirs: ['/app/data'] });
  assert.deepEqual(c.regions, [{ name: 'app_data', path: '/app/data' }]);
  for (const p of ['/app/data/secret.txt', '/app/data/model.bin', '/app/data/empty']) {
    assert.deepEqual([cls(c, p), c.files.get(p)!.region, c.files.get(p)!.reason], ['encrypted', 'app_data', '--dir /app/data'], p);
  }
  assert.deepEqual(protectionSchemaProblems('classificationReport', report), []);
  assert.deepEqual(report.totals.encrypted, { files: 3, bytes: 300020 });
  assert.deepEqual(report.regions, [{ name: 'app_data', path: '/app/data', files: 3, bytes: 300020 }]);
  assert.deepEqual(report.startup!.scripts, [{ script: '/app/server.sh', line: '/bin/sh', interpreter: '/bin/busybox' }]);
  const text = formatClassificationReport(report);
  assert.match(text, /encrypted\s+3 files\s+300,020 bytes/);
  assert.match(text, /\/app\/data\s+key app_data\s+3 files, 300,020 bytes/);
  assert.match(text, /script\s+\/app\/server\.sh \(#!\/bin\/sh\) -> \/bin\/busybox/);
  assert.match(text, /libraries\s+none \(static executable\)/);
});

test('overriding defaults: --authenticated /var, no defaults, --plain-file, --host-path', async () => {
  assert.equal(cls((await classify({ authenticated: ['/var'] })).c, '/var/cache/old/c'), 'authenticated');
  assert.equal(cls((await classify({ defaults: false })).c, '/var/cache/old/c'), 'authenticated');
  assert.equal(cls((await classify({ defaults: { plainDirs: ['/app/static'], plainFiles: [] } })).c, '/app/static/index.html'), 'plain');
  const { c } = await classify({ plainFiles: ['/etc/passwd'], hostPaths: ['/etc/group', '/etc/resolv.conf'] });
  assert.equal(cls(c, '/etc/passwd'), 'plain');
  assert.deepEqual(c.files.get('/etc/group'), { ...c.files.get('/etc/group')!, class: 'plain', hostPath: true, reason: '--host-path /etc/group' });
  assert.deepEqual(c.hostPaths, ['/etc/group', '/etc/resolv.conf']);
  const rule = c.rules!.find((r) => r.path === '/etc/resolv.conf')!;
  assert.equal(rule.kind, 'host-path', 'a user rule replaces the default for the same path');
});

test('nested rules: plain and authenticated exceptions inside an encrypted region', async () => {
  const { c, report } = await classify({ dirs: ['/app'], plain: ['/app/static'], authenticated: ['/app/server.sh'] });
  assert.equal(cls(c, '/app/setuid-tool'), 'encrypted');
  assert.equal(cls(c, '/app/data/secret.txt'), 'encrypted');
  assert.equal(c.files.get('/app/data/secret.txt')!.region, 'app');
  assert.equal(cls(c, '/app/static/index.html'), 'plain');
  assert.equal(cls(c, '/app/server.sh'), 'authenticated');
  assert.equal(report.regions[0].files, 4);
});

test('globs expand against the image, hidden layer entries included; unmatched globs warn', async () => {
  const { c } = await classify({ dirs: ['/app/*'], plainFiles: ['/nothing/*.txt'] });
  assert.deepEqual(c.regions.map((r) => r.name), ['app_data', 'app_empty_dir', 'app_static']);
  assert.equal(c.rules!.find((r) => r.path === '/app/data')!.source, '--dir /app/*');
  assert.ok(c.warnings.includes('--plain-file /nothing/*.txt matches nothing in the image'));
  assert.ok(c.warnings.includes('encrypted region /app/empty-dir (app_empty_dir) holds no regular file'));
  // /var/cache/old/a exists only in a layer whose entry a later layer deletes.
  const hidden = await classify({ plainFiles: ['/var/cache/old/[ab]'] });
  assert.deepEqual(hidden.c.rules!.filter((r) => r.kind === 'plain-file').map((r) => r.path), ['/var/cache/old/a', '/var/cache/old/b']);
});

test('validation: conflicts, symlinks, wrong kinds and bad names are errors with the rule named', async () => {
  await assert.rejects(classify({ dirs: ['/app/data'], plain: ['/app/data'] }), { code: 'RULE_CONFLICT', message: 'conflicting rules for /app/data: --dir /app/data makes it encrypted, --plain /app/data makes it plain; keep one' });
  await assert.rejects(classify({ dirs: ['/app/static/secret-link'] }), { code: 'RULE_SYMLINK', message: /--dir \/app\/static\/secret-link: .*resolves to \/app\/data\/secret\.txt; rules match real paths/ });
  await assert.rejects(classify({ plainFiles: ['/bin/sh'] }), { code: 'RULE_SYMLINK', message: /resolves to \/bin\/busybox/ });
  await assert.rejects(classify({ dirs: ['/app/server.sh'] }), { code: 'RULE_NOT_A_DIRECTORY', message: '--dir /app/server.sh: /app/server.sh is a file in the image, not a directory' });
  await assert.rejects(classify({ plain: ['/etc/passwd'] }), { code: 'RULE_NOT_A_DIRECTORY', message: /use --plain-file for a file/ });
  await assert.rejects(classify({ plainFiles: ['/app/data'] }), { code: 'RULE_NOT_A_FILE' });
  await assert.rejects(classify({ dirs: [{ path: '/app/data', name: 'bad name' }] }), { code: 'RULE_BAD_NAME' });
  await assert.rejects(classify({ dirs: [{ path: '/app/data', name: 'k' }, { path: '/app/static', name: 'k' }] }), { code: 'RULE_CONFLICT', message: /key name k is given to both/ });
  await assert.rejects(classify({ dirs: ['data'] }), { code: 'RULE_BAD_PATH' });
});

test('warnings: missing paths, repeated rules, defaults inside a region', async () => {
  const { c } = await classify({ dirs: ['/app/data', '/app/data', '/srv/none'], plainFiles: ['/etc/nope'] });
  assert.deepEqual(c.regions.map((r) => r.name), ['app_data', 'srv_none']);
  assert.ok(c.warnings.includes('--dir /app/data repeats --dir /app/data; counted once'));
  assert.ok(c.warnings.some((w) => w.startsWith('--dir /srv/none: /srv/none does not exist in the image; the region gets a key')));
  assert.ok(c.warnings.includes('--plain-file /etc/nope: /etc/nope does not exist in the image'));
  const root = await classify({ dirs: ['/'], authenticated: ['/app/server.sh', '/bin/busybox'] });
  assert.deepEqual(root.c.regions, [{ name: 'root', path: '/' }]);
  assert.ok(root.c.warnings.some((w) => w.startsWith('/var stays plain (default) inside encrypted region /')));
  assert.equal(cls(root.c, '/etc/passwd'), 'encrypted');
  assert.equal(cls(root.c, '/var/cache/old/c'), 'plain');
});

test('explicit region names and a single image key', async () => {
  const named = await classify({ dirs: [{ path: '/app/data', name: 'model-key' }, '/app/static'] });
  assert.deepEqual(named.c.regions, [{ name: 'model-key', path: '/app/data' }, { name: 'app_static', path: '/app/static' }]);
  const single = await classify({ dirs: ['/app/data', '/app/static'], singleKey: 'image' });
  assert.deepEqual(single.c.regions.map((r) => r.name), ['image', 'image']);
});

test('startup files: a rule that would encrypt the entrypoint script or its interpreter is refused with an explanation', async () => {
  await assert.rejects(classify({ dirs: ['/bin'] }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'CLASSIFY_STARTUP_ENCRYPTED');
    assert.match(e.message, /--dir \/bin would encrypt 1 startup file of \/app\/server\.sh:\n\s+\/bin\/busybox: the interpreter of \/app\/server\.sh \(#!\/bin\/sh\)/);
    assert.match(e.message, /opened by the TEE runtime before the enclave is attested and receives its keys/);
    assert.match(e.message, /--authenticated PATH/);
    return true;
  });
  await assert.rejects(classify({ dirs: ['/app'] }), { code: 'CLASSIFY_STARTUP_ENCRYPTED', message: /\/app\/server\.sh: the entrypoint script/ });
  // A plain rule over a startup file: kept authenticated, with a warning.
  const { c } = await classify({ plain: ['/bin'] });
  assert.equal(cls(c, '/bin/busybox'), 'authenticated');
  assert.ok(c.warnings.some((w) => w.startsWith('/bin/busybox is the interpreter of /app/server.sh (#!/bin/sh): authenticated although --plain /bin says plain')));
});

test('startup files follow the command: an override, and an image without Entrypoint', async () => {
  const other = await classify({ command: ['/bin/busybox', 'httpd'], dirs: ['/app'] });
  assert.deepEqual(other.c.startup, ['/bin/busybox']);
  assert.equal(cls(other.c, '/app/server.sh'), 'encrypted');
  const noEntry: Transform = { name: 'no entrypoint', apply: (d) => { delete d.config.config!.Entrypoint; } };
  const { c, report } = await classify({ dirs: ['/app'] }, noEntry);
  assert.deepEqual(c.startup, []);
  assert.equal(report.startup, null);
  assert.ok(c.warnings.includes('the image has no Entrypoint or Cmd: no startup files to keep authenticated'));
  const missing = await classify({ command: ['/usr/bin/python3'] });
  assert.ok(missing.c.warnings.some((w) => w.startsWith('cannot find the startup files of "/usr/bin/python3"')));
});

// ---- the files index ----

test('classification files: a read-only map by exact absolute path, in bytewise order, each read a new object', async () => {
  const { c, report } = await classify({ dirs: ['/app/data'] });
  const files = c.files;
  const keys = [...files.keys()];
  assert.equal(files.size, keys.length);
  assert.equal(report.files.length, keys.length);
  assert.ok(keys.length > 10);
  // Bytewise order, and the report lists the same paths.
  assert.deepEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), keys);
  assert.deepEqual(report.files.map((f) => f.path).sort(), [...keys].sort());
  // entries, values, iteration and forEach agree with get.
  const viaForEach: string[] = [];
  files.forEach((v, k, m) => {
    assert.equal(m, files);
    assert.equal(v.path, k);
    viaForEach.push(k);
  });
  assert.deepEqual(viaForEach, keys);
  assert.deepEqual([...files.values()].map((f) => f.path), keys);
  for (const [k, v] of files) assert.deepEqual(files.get(k), v, k);
  // A new object per read: changing one does not change the classification.
  const secret = files.get('/app/data/secret.txt')!;
  assert.deepEqual({ class: secret.class, region: secret.region }, { class: 'encrypted', region: 'app_data' });
  assert.notEqual(files.get('/app/data/secret.txt'), secret);
  secret.class = 'plain';
  assert.equal(files.get('/app/data/secret.txt')!.class, 'encrypted');
  // Exact keys, as a Map's: no relative, unnormalised or directory paths; the root is no file.
  for (const p of ['app/data/secret.txt', '/app//data/secret.txt', '/app/data/./secret.txt', '/app/data/secret.txt/', '/app/data', '/', '', '/nope']) {
    assert.equal(files.get(p), undefined, p);
    assert.equal(files.has(p), false, p);
  }
  assert.equal(files.has('/app/data/secret.txt'), true);
  // Sizes and digests are the view's.
  const passwd = files.get('/etc/passwd')!;
  assert.equal(passwd.sha256, '7a8a6ad7d404fc76a659a5fa19bcd9f5df96fc33cb04549e0af9bda3342ad35c');
  assert.equal(typeof passwd.size, 'number');
  assert.equal(Object.prototype.toString.call(files), '[object ClassifiedFiles]');
});

test('classification files after encryptFS: detached from the view (copied out, the view let go), every read answers as before', async () => {
  const { addLayer, fileItem } = await import('./encrypt-helpers.js');
  const { encryptFS } = await import('../../lib/transforms/encrypt-fs.js');
  const { ClassifiedFiles } = await import('../../lib/protect/classified-files.js');
  // Paths whose bytewise order differs from UTF-16 order and from a per-component sort.
  const tricky = ['/t/a-b', '/t/a/b', '/t/a0', '/t/é', '/t/\uFFFD', '/t/😀', '/t/z', '/app/data/x.bin'];
  let before: { keys: string[]; rows: unknown[]; got: Map<string, unknown> } | undefined;
  const snapshot = (c: Classification) => ({ keys: [...c.files.keys()], rows: [...c.files.values()], got: new Map([...c.files.keys(), '/t/a', '/t', '/nope', 't/z', '/t/z/'].map((k) => [k, [c.files.get(k), c.files.has(k)]])) });
  let view: unknown;
  const take: Transform = {
    name: 'take',
    async apply(d) {
      const c = d.state.get(CLASSIFICATION)!;
      view = await d.rootfs();
      assert.equal((c.files as InstanceType<typeof ClassifiedFiles>).classifies(view as never), true, 'made on the view');
      before = snapshot(c);
    },
  };
  const out = await pipeline(await openImage(bbRef), [addLayer(tricky.map((p, i) => fileItem(p.slice(1), `content ${i}`))), fileClassify({ dirs: ['/app/data'] }), take, encryptFS()]);
  try {
    const c = out.state.get(CLASSIFICATION)!;
    assert.ok(c.files instanceof ClassifiedFiles);
    assert.equal((c.files as InstanceType<typeof ClassifiedFiles>).classifies(view as never), false, 'no longer tied to the view');
    const after = snapshot(c);
    assert.deepEqual(after.keys, before!.keys);
    assert.deepEqual(after.rows, before!.rows);
    assert.deepEqual(after.got, before!.got);
    for (const p of tricky) assert.ok(c.files.has(p), p);
    assert.equal(c.files.size, before!.keys.length);
    assert.equal(c.files.get('/app/data/x.bin')!.class, 'encrypted');
    assert.equal(c.files.get('/t/😀')!.sha256, createHash('sha256').update('content 5').digest('hex'));
  } finally {
    await out.dispose();
  }
});
