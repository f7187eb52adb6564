/**
 * Protection-manifest amendments: what a step run on an already converted image (`enclavify sign`)
 * records with refreshProtectionManifest, and how verify, pinned to the keys file's digest, treats
 * it. An amendment only adds paths: it can neither re-pin a changed file nor be forged to, and the
 * pinned manifest stays recoverable byte for byte.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openImage, pipeline, type Image, type LayerItem, type Transform } from '../../lib/index.js';
import { readTar } from '../../lib/fs/tar-read.js';
import { buildManifest, MANIFEST_PATH, manifestBefore, manifestSha256, parseManifest, serializeManifest, type ProtectionManifest } from '../../lib/protect/manifest.js';
import { parseKeysFile } from '../../lib/protect/keys.js';
import { protectionSchemaProblems } from '../../lib/protect/schemas.js';
import { verify } from '../../lib/protect/verify.js';
import { formatFindings } from '../../lib/cli/format.js';
import { encryptFS, refreshProtectionManifest, type ManifestRefresh } from '../../lib/transforms/encrypt-fs.js';
import { fileClassify } from '../../lib/transforms/file-classify.js';
import { injectRuntime } from '../../lib/transforms/inject-runtime.js';
import { PROTECTION, stateKey, type Protection } from '../../lib/transforms/state.js';
import { gramine, signGramineImage } from '../../lib/runtimes/gramine/index.js';
import { scratch } from '../helpers/images.js';
import { standInRuntime, testKey } from '../runtimes/gramine-helpers.js';
import { addLayer, bbRef, collect, convert, editInPlace, fileItem, modify, readImageFiles, sha256, whiteout, type Converted } from './encrypt-helpers.js';
import { progressTo } from '../helpers/progress.js';

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let shared: Promise<Converted> | undefined;
const converted = () =>
  (shared ??= convert().then((c) => {
    cleanup.push(() => c.result.dispose());
    return c;
  }));
const keysTextOf = (c: Converted) => String(c.result.artifacts.get('keys.json')!.data);

async function attacked(image: Image, ...t: Transform[]): Promise<{ image: Image; report: Record<string, unknown> }> {
  const out = await modify(image, ...t);
  cleanup.push(() => out.dispose());
  return out;
}

/** What `enclavify sign` does to the protection manifest: a layer on top, then a refresh outside the converting pipeline. */
const lateStep = (items: LayerItem[], name = 'signature'): Transform => ({
  name,
  async apply(draft) {
    await addLayer(items, name).apply(draft);
    const pm = (await draft.rootfs()).get(MANIFEST_PATH.slice(1))!;
    draft.state.set(PROTECTION, { manifestPath: MANIFEST_PATH, manifestSha256: pm.sha256!, keys: [], manifestLayer: pm.layer } satisfies Protection);
    draft.report.refresh = await refreshProtectionManifest(draft);
  },
});
const SIG = [fileItem('app/entrypoint.sig', 'SIGSTRUCT'), fileItem('app/entrypoint.manifest.sgx', 'manifest.sgx')];

/** Rewrites the image's protection manifest as a document (re-serialized canonically). */
const rewriteManifest = (fn: (m: ProtectionManifest) => ProtectionManifest): Transform =>
  editInPlace({ [MANIFEST_PATH]: (b) => serializeManifest(fn(parseManifest(b))) });

const EVIL = '#!/bin/sh\necho PWNED\n';

test('an amendment adds the signature files; verify pinned by the keys file accepts and lists them', async () => {
  const conv = await converted();
  const keysText = keysTextOf(conv);
  const signed = await attacked(conv.image, lateStep(SIG));
  const r = signed.report.refresh as ManifestRefresh;
  assert.equal(r.mode, 'amendment');
  assert.deepEqual(r.added, ['/app/entrypoint.manifest.sgx', '/app/entrypoint.sig']);
  assert.deepEqual([r.changed, r.removed, r.skipped], [[], [], []]);
  assert.notEqual(r.manifestSha256, conv.protection.manifestSha256);
  const bytes = (await readImageFiles(signed.image, [MANIFEST_PATH])).get(MANIFEST_PATH)!;
  assert.equal(sha256(bytes), r.manifestSha256);
  const m = parseManifest(bytes);
  assert.equal(m.amendments!.length, 1);
  assert.equal(m.amendments![0].base, conv.protection.manifestSha256);
  assert.deepEqual(m.amendments![0].files.map((f) => [f.path, f.class]), [['/app/entrypoint.manifest.sgx', 'authenticated'], ['/app/entrypoint.sig', 'authenticated']]);
  assert.deepEqual(protectionSchemaProblems('protectionManifest', JSON.parse(bytes.toString())), []);
  const forged = JSON.parse(bytes.toString());
  forged.amendments[0].files[0].mode = 0o4755;
  assert.ok(protectionSchemaProblems('protectionManifest', forged).length > 0, 'the schema refuses setuid bits in an amendment');
  // The manifest before the amendment is recoverable byte for byte.
  const original = (await readImageFiles(conv.image, [MANIFEST_PATH])).get(MANIFEST_PATH)!;
  assert.ok(manifestBefore(m, 0).bytes.equals(original));

  const v = await verify(signed.image, { keys: keysText });
  assert.deepEqual(v.findings, []);
  assert.deepEqual(v.pin, { sha256: conv.protection.manifestSha256, source: 'keys file', matched: true, amended: ['/app/entrypoint.manifest.sgx', '/app/entrypoint.sig'] });
  assert.match(formatFindings(v), /note: 2 path\(s\) recorded after the pinned manifest/);
  // Strict: every record the pin does not cover is a finding.
  const strict = await verify(signed.image, { keys: keysText, amendments: 'refuse' });
  assert.deepEqual(strict.findings.map((f) => [f.path, f.code]), [['/app/entrypoint.manifest.sgx', 'AMENDED'], ['/app/entrypoint.sig', 'AMENDED']]);
  // A policy pinning the new digest covers everything.
  const pinned = await verify(signed.image, { keys: keysText, expectedManifestSha256: r.manifestSha256 });
  assert.deepEqual([pinned.findings, pinned.pin?.amended], [[], []]);
  // A second amendment chains on the first; each pin covers its own prefix.
  const again = await attacked(signed.image, lateStep([fileItem('app/late.txt', 'x')], 'later'));
  const m2 = parseManifest((await readImageFiles(again.image, [MANIFEST_PATH])).get(MANIFEST_PATH)!);
  assert.equal(m2.amendments![1].base, r.manifestSha256);
  assert.deepEqual((await verify(again.image, { keys: keysText })).pin?.amended, ['/app/entrypoint.manifest.sgx', '/app/entrypoint.sig', '/app/late.txt']);
  assert.deepEqual((await verify(again.image, { keys: keysText, expectedManifestSha256: r.manifestSha256 })).pin?.amended, ['/app/late.txt']);
});

test('an amendment never re-pins a changed, removed or re-owned file: verify still reports it', async () => {
  const conv = await converted();
  const progress: string[] = [];
  const out = await pipeline(
    conv.image,
    [
      addLayer([fileItem('app/server.sh', EVIL, 0o755), { entry: { path: 'bin/busybox', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: 0, size: 3 }, content: Buffer.from('bb!') }]),
      lateStep(SIG),
    ],
    { onProgress: progressTo(progress) },
  );
  cleanup.push(() => out.dispose());
  const r = out.report.refresh as ManifestRefresh;
  assert.deepEqual(r.changed, ['/app/server.sh', '/bin/busybox']);
  assert.match(progress.join('\n'), /warning: protection manifest: 2 recorded entries changed since it was made, not re-recorded/);
  for (const expectedManifestSha256 of [undefined, r.manifestSha256]) {
    const v = await verify(out.image, { keys: keysTextOf(conv), ...(expectedManifestSha256 ? { expectedManifestSha256 } : {}) });
    assert.deepEqual(v.findings.map((f) => [f.path, f.code]), [['/app/server.sh', 'HASH_MISMATCH'], ['/bin/busybox', 'METADATA_CHANGED'], ['/bin/busybox', 'HASH_MISMATCH']]);
  }
});

test('forged amendments are refused: re-recording a path, special bits, a wrong base, a file from below the manifest', async () => {
  const conv = await converted();
  const keysText = keysTextOf(conv);
  const signed = (await attacked(conv.image, lateStep(SIG))).image;
  const amend = (extra: ProtectionManifest['amendments'] & object) => rewriteManifest((m) => buildManifest({ ...m, amendments: [...(m.amendments ?? []), ...extra] }));
  const base = sha256((await readImageFiles(signed, [MANIFEST_PATH])).get(MANIFEST_PATH)!);
  const evil = { path: '/app/server.sh', class: 'authenticated' as const, size: EVIL.length, sha256: sha256(Buffer.from(EVIL)), mode: 0o755, uid: 0, gid: 0 };
  const codes = async (image: Image) => (await verify(image, { keys: keysText })).findings.map((f) => [f.path, f.code]);

  // The backdoor re-recorded by a second amendment: a path recorded twice.
  const repin = (await attacked(signed, addLayer([fileItem('app/server.sh', EVIL, 0o755)]), amend([{ base, files: [evil], entries: [] }]))).image;
  assert.deepEqual(await codes(repin), [[MANIFEST_PATH, 'MANIFEST_INVALID'], [MANIFEST_PATH, 'MANIFEST_DIGEST']]);
  assert.match((await verify(repin, { keys: keysText })).findings[0].message, /\/app\/server\.sh is recorded twice \(again by amendment 1/);
  // A new setuid file.
  const suid = { ...evil, path: '/usr/bin/su2', mode: 0o4755 };
  const bits = (await attacked(signed, addLayer([fileItem('usr/bin/su2', EVIL, 0o4755)]), amend([{ base, files: [suid], entries: [] }]))).image;
  assert.match((await verify(bits, { keys: keysText })).findings[0].message, /an amendment cannot add setuid\/setgid bits/);
  // A base that is not the manifest before it.
  const newFile = { ...evil, path: '/usr/bin/tool' };
  const wrongBase = (await attacked(signed, addLayer([fileItem('usr/bin/tool', EVIL, 0o755)]), amend([{ base: '0'.repeat(64), files: [newFile], entries: [] }]))).image;
  assert.deepEqual(await codes(wrongBase), [[MANIFEST_PATH, 'MANIFEST_INVALID']]);
  // An edit of the pinned part, amendments kept: the prefix no longer hashes to the pin.
  const edited = (await attacked(signed, addLayer([fileItem('app/server.sh', EVIL, 0o755)]), rewriteManifest((m) => ({ ...m, files: m.files.map((f) => (f.path === evil.path ? evil : f)) })))).image;
  assert.deepEqual(await codes(edited), [[MANIFEST_PATH, 'MANIFEST_DIGEST']]);
  // A file slipped into a layer below the manifest, and "amended" in.
  const lower: Transform = {
    name: 'rewrite base layer',
    async apply(draft) {
      const l = draft.layers[0];
      async function* items(): AsyncGenerator<LayerItem> {
        for await (const { entry, content } of readTar(await l.uncompressed(), { source: l.name })) yield content ? { entry, content: await collect(content) } : { entry };
        yield fileItem('usr/bin/tool', EVIL, 0o755);
      }
      draft.replaceLayer(0, await draft.buildLayer(items(), 'base with a tool'), 'rewritten');
    },
  };
  const below = (await attacked(signed, lower, amend([{ base, files: [newFile], entries: [] }]))).image;
  const b = await verify(below, { keys: keysText });
  assert.deepEqual(b.findings.map((f) => [f.path, f.code]), [['/usr/bin/tool', 'AMENDED']]);
  assert.match(b.findings[0].message, /not from a layer added after the protection manifest/);
  // What an amendment can do: add a new plain-mode file in a later layer. Accepted against the
  // keys file, but listed; refused in strict mode; a policy pinning the final digest covers it.
  const added = (await attacked(signed, addLayer([fileItem('usr/bin/tool', EVIL, 0o755)]), amend([{ base, files: [newFile], entries: [] }]))).image;
  const a = await verify(added, { keys: keysText });
  assert.deepEqual([a.findings, a.pin?.amended], [[], ['/app/entrypoint.manifest.sgx', '/app/entrypoint.sig', '/usr/bin/tool']]);
  assert.ok((await verify(added, { keys: keysText, amendments: 'refuse' })).findings.some((f) => f.path === '/usr/bin/tool' && f.code === 'AMENDED'));
});

test('refresh outside the converting pipeline: refuses a non-canonical manifest and region plaintext, leaves special entries unrecorded', async () => {
  const conv = await converted();
  const rewritten = await attacked(conv.image, editInPlace({ [MANIFEST_PATH]: (b) => Buffer.from(JSON.stringify(JSON.parse(b.toString()))) }));
  await assert.rejects(modify(rewritten.image, lateStep(SIG)), { code: 'MANIFEST_NOT_CANONICAL' });
  await assert.rejects(modify(conv.image, lateStep([fileItem('app/data/late.txt', 'plain')])), { code: 'MANIFEST_REFRESH_ENCRYPTED' });
  const link: LayerItem = { entry: { path: 'app/link', type: 'symlink', linkname: 'server.sh', mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0 } };
  const fifo: LayerItem = { entry: { path: 'app/fifo', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 } };
  const out = await attacked(conv.image, lateStep([...SIG, fileItem('app/su', 'x', 0o4755), link, fifo, fileItem('opt/new/file', 'y')]));
  const r = out.report.refresh as ManifestRefresh;
  assert.deepEqual(r.added, ['/app/entrypoint.manifest.sgx', '/app/entrypoint.sig', '/opt/new/file']);
  assert.deepEqual(r.addedEntries, ['/opt', '/opt/new']);
  assert.deepEqual(r.skipped.map((s) => s.path), ['/app/fifo', '/app/link', '/app/su']);
  const v = await verify(out.image, { keys: keysTextOf(conv) });
  assert.deepEqual(v.findings.map((f) => [f.path, f.code]), [['/app/fifo', 'UNLISTED'], ['/app/link', 'UNLISTED'], ['/app/su', 'UNLISTED']]);
});

test('enclavify sign on a converted Gramine image: verify with the conversion keys file still passes', async () => {
  const s = scratch('enclavify-amend-');
  cleanup.push(s.done);
  const rt = standInRuntime(path.join(s.dir, 'rt'));
  const out = await pipeline(await openImage(bbRef), [fileClassify({ dirs: ['/app/data'] }), encryptFS(), injectRuntime(gramine({ runtimeDir: rt }))], { tmpDir: s.dir });
  cleanup.push(() => out.dispose());
  const keysText = String(out.artifacts.get('keys.json')!.data);
  assert.equal(JSON.parse(keysText).manifest.sha256, (out.state.get(PROTECTION) as Protection).manifestSha256, 'the keys file has the digest after the runtime refresh');
  const signed = await pipeline(out.image, [signGramineImage({ signKey: readFileSync(testKey), signDate: '2026-01-01' })], { tmpDir: s.dir });
  cleanup.push(() => signed.dispose());
  const v = await verify(signed.image, { keys: keysText });
  assert.deepEqual(v.findings, [], formatFindings(v));
  assert.deepEqual(v.pin?.amended, ['/gramine/app/entrypoint.manifest.sgx', '/gramine/app/entrypoint.sig']);
  const pm = (signed.report.signGramine as { protectionManifestSha256: string }).protectionManifestSha256;
  assert.equal(manifestSha256((await readImageFiles(signed.image, [MANIFEST_PATH])).get(MANIFEST_PATH)!), pm);
});

test('parseKeysFile: the manifest digest and regions, and errors that never quote the file', () => {
  const key = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const ks = parseKeysFile(JSON.stringify({ kind: 'enclavify.keys', version: 1, manifest: { path: MANIFEST_PATH, sha256: 'AB'.repeat(32) }, keys: [{ name: 'app_data', region: '/app/data', regions: ['/app/data', '/srv'], key }] }));
  assert.deepEqual([...ks.keys.keys()], ['app_data']);
  assert.deepEqual(ks.regions.get('app_data'), ['/app/data', '/srv']);
  assert.deepEqual(ks.manifest, { path: MANIFEST_PATH, sha256: 'ab'.repeat(32) });
  const bad = (text: string, message: RegExp) => assert.throws(() => parseKeysFile(text, 'k.json'), (e: Error & { code?: string }) => e.code === 'KEYS_FILE_INVALID' && message.test(e.message) && !e.message.includes('a1b2'));
  bad(`{"kind":"enclavify.keys","version":1,"keys":[{"name":"x","key":"${key}"}\n`, /^k\.json: not valid JSON( at line 2, column \d+)?$/);
  bad(`{"kind":"enclavify.keys","version":1,"keys":[{"name":"x","key": ${key}}]}`, /^k\.json: not valid JSON$/);
  bad(`{"kind":"enclavify.keys","version":1,"keys":[{"name":"x","key":"${key}0"}]}`, /keys\[0\] \(x\): "key" must be 32 hex digits/);
  bad(`{"kind":"enclavify.keys","version":1,"keys":[{"name":"${key} ","key":"${key}"}]}`, /keys\[0\]: invalid key name/);
  bad(`{"kind":"enclavify.keys","version":1,"manifest":{"path":"/x","sha256":"${key}"},"keys":[]}`, /"manifest" needs/);
});

test('a refresh in the converting pipeline joins the records it made with the view: the same manifest as re-reading the file', async () => {
  const masterKey = new Uint8Array(32).fill(3);
  const created = new Date('2026-01-01T00:00:00Z');
  // Without the held records, refresh re-reads and parses the manifest in the image (the path it
  // takes when the manifest layer was edited since): both must give the same manifest.
  const forget: Transform = { name: 'forget', apply: (d) => void d.state.delete(stateKey('enclavify.encryptFS.manifestSource')) };
  const refresh = (name: string): Transform => ({ name, apply: async (d) => void (d.report[name] = await refreshProtectionManifest(d)) });
  const run = async (reread: boolean) => {
    const r = await pipeline(await openImage(bbRef), [
      fileClassify({ dirs: ['/app/data'] }),
      encryptFS({ deterministic: { masterKey } }),
      addLayer([fileItem('app/new.txt', 'new'), fileItem('etc/passwd', 'root:x:0:0::/root:/bin/sh\n'), whiteout('etc/group'), fileItem('zz/last.txt', 'z')], 'runtime'),
      ...(reread ? [forget] : []),
      refresh('first'),
      addLayer([fileItem('app/second.txt', '2'), fileItem('a-first.txt', 'a')], 'signature'),
      ...(reread ? [forget] : []),
      refresh('second'),
    ], { created });
    cleanup.push(() => r.dispose());
    return { digest: await r.image.digest(), first: r.report.first as ManifestRefresh, second: r.report.second as ManifestRefresh };
  };
  const joined = await run(false);
  const reread = await run(true);
  assert.deepEqual(joined, reread);
  assert.equal(joined.first.mode, 'merged');
  assert.deepEqual(joined.first.added, ['/app/new.txt', '/zz/last.txt']);
  assert.deepEqual(joined.first.changed, ['/etc/passwd']);
  assert.deepEqual(joined.first.removed, ['/etc/group']);
  assert.deepEqual(joined.second.added, ['/a-first.txt', '/app/second.txt']);
  assert.notEqual(joined.second.manifestSha256, joined.first.manifestSha256);
});
