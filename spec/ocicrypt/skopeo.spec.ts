/**
 * ocicrypt interop with skopeo 1.9.3 (containers/ocicrypt, an independent implementation) both
 * ways, for gzip and zstd layers, RSA and EC keys, one and several recipients; attacks on the
 * ciphertext and its annotations that both must reject; CoCo attestation-agent layers opened by an
 * unwrapper written here (Debian's skopeo has no key-provider support) and then by skopeo itself
 * once their layer options are re-wrapped as JWE.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, readdirSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { ctr, gcm } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { openImage, writeImage } from '../../lib/store/index.js';
import { layersRootFs } from '../../lib/oci/rootfs.js';
import { formatTree } from '../../lib/fs/tree.js';
import { decryptingImage, encryptedImage, type ResolvedRecipient } from '../../lib/ocicrypt/layers.js';
import { jweEncrypt } from '../../lib/ocicrypt/jwe.js';
import { parsePublicKey, readDecryptionKeys } from '../../lib/ocicrypt/keys.js';
import { AA_ANNOTATION } from '../../lib/ocicrypt/keyprovider-aa.js';
import { bbOci, bbZstd, expectedTree, scratch, umociUnpack } from '../helpers/images.js';
import { diskTree } from '../helpers/disk-tree.js';
import { tool } from '../helpers/tools.js';
import type { Manifest, Index } from '../../lib/oci/types.js';

const skopeo = tool('skopeo');
const umoci = tool('umoci');
const skip = skopeo.skip || umoci.skip;
let work: ReturnType<typeof scratch>;
const k: Record<string, { pub: string; priv: string }> = {};

before(() => {
  work = scratch('enclavify-ocicrypt-');
  for (const [name, pair] of [['rsa', generateKeyPairSync('rsa', { modulusLength: 2048 })], ['ec', generateKeyPairSync('ec', { namedCurve: 'P-256' })]] as const) {
    const pub = path.join(work.dir, `${name}.pub.pem`), priv = path.join(work.dir, `${name}.pem`);
    writeFileSync(pub, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(priv, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    k[name] = { pub, priv };
  }
});
after(() => work.done());

let n = 0;
const dir = (what: string) => path.join(work.dir, `${what}-${n++}`);
const sk = (...args: string[]) => spawnSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8' });
const jwe = (file: string): ResolvedRecipient => ({ kind: 'jwe', key: parsePublicKey(readFileSync(file), file), name: file });

function manifestOf(layout: string): { manifest: Manifest; index: Index } {
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as Index;
  const d = index.manifests[0].digest.slice(7);
  return { manifest: JSON.parse(readFileSync(path.join(layout, 'blobs/sha256', d), 'utf8')) as Manifest, index };
}
const blobFile = (layout: string, digest: string) => path.join(layout, 'blobs/sha256', digest.slice(7));
/** Rewrites a layout's manifest (the test plays an attacker with write access to the layout). */
function rewriteManifest(layout: string, edit: (m: Manifest) => void): void {
  const { manifest, index } = manifestOf(layout);
  edit(manifest);
  const raw = Buffer.from(JSON.stringify(manifest));
  const digest = 'sha256:' + createHash('sha256').update(raw).digest('hex');
  writeFileSync(blobFile(layout, digest), raw);
  index.manifests[0] = { ...index.manifests[0], digest, size: raw.length };
  writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
}
/** Replaces a layer blob's bytes and fixes its descriptor, so only the crypto can notice. */
function replaceBlob(layout: string, i: number, bytes: Buffer): void {
  const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
  writeFileSync(blobFile(layout, digest), bytes);
  rewriteManifest(layout, (m) => { m.layers[i] = { ...m.layers[i], digest, size: bytes.length }; });
}
const layerDigests = (layout: string) => manifestOf(layout).manifest.layers.map((l) => l.digest);

async function ourTree(ref: string, keys: string[]): Promise<string> {
  const img = await decryptingImage(await openImage(ref), await readDecryptionKeys(keys));
  return formatTree(await layersRootFs(await img.layers()));
}

async function encryptTo(src: string, recipients: ResolvedRecipient[], layers?: number[]): Promise<string> {
  const out = dir('enc');
  const enc = await encryptedImage(await openImage(`oci:${src}:latest`), { recipients, layers });
  await writeImage(enc, `oci:${out}:latest`);
  return out;
}

test('ours → skopeo: skopeo decrypts our JWE layers (gzip and zstd; RSA, EC, both) into the original blobs; umoci unpacks the result', { skip }, async () => {
  for (const [src, recipients, keys] of [
    [bbOci, [jwe(k.rsa.pub)], [k.rsa.priv]],
    [bbOci, [jwe(k.ec.pub)], [k.ec.priv]],
    [bbZstd, [jwe(k.rsa.pub), jwe(k.ec.pub)], [k.ec.priv]],
    [bbOci, [jwe(k.rsa.pub), jwe(k.ec.pub)], [k.rsa.priv]],
  ] as const) {
    const enc = await encryptTo(src, [...recipients]);
    const { manifest } = manifestOf(enc);
    assert.ok(manifest.layers.every((l) => l.mediaType.endsWith('+encrypted') && l.annotations?.['org.opencontainers.image.enc.keys.jwe']));
    assert.notDeepEqual(layerDigests(enc), layerDigests(src));
    const dec = dir('dec');
    const r = sk('copy', ...keys.flatMap((f) => ['--decryption-key', f]), `oci:${enc}:latest`, `oci:${dec}:latest`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(layerDigests(dec), layerDigests(src), 'skopeo recovers the original layer blobs byte for byte');
    if (src === bbOci) assert.equal(diskTree(umociUnpack(`${dec}:latest`, dir('bundle'))), readFileSync(expectedTree, 'utf8'));
  }
});

test('skopeo → ours: we decrypt what skopeo encrypted (RSA and EC, gzip and zstd) and the merged tree is the fixture\'s', { skip }, async () => {
  for (const [src, pub, priv] of [[bbOci, k.rsa.pub, k.rsa.priv], [bbOci, k.ec.pub, k.ec.priv], [bbZstd, k.rsa.pub, k.rsa.priv]] as const) {
    const enc = dir('senc');
    const r = sk('copy', '--encryption-key', `jwe:${pub}`, `oci:${src}:latest`, `oci:${enc}:latest`);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(manifestOf(enc).manifest.layers.every((l) => l.mediaType.endsWith('+encrypted')));
    assert.equal(await ourTree(`oci:${enc}:latest`, [priv]), readFileSync(expectedTree, 'utf8'));
    const img = await decryptingImage(await openImage(`oci:${enc}:latest`), await readDecryptionKeys([priv]));
    const back = dir('odec');
    await writeImage(img, `oci:${back}:latest`);
    assert.deepEqual(layerDigests(back), layerDigests(src));
  }
});

test('only the layers asked for are encrypted (0-based, negative from the top); without keys an encrypted layer is refused by name', { skip }, async () => {
  const enc = await encryptTo(bbOci, [jwe(k.rsa.pub)], [-1]);
  const layers = manifestOf(enc).manifest.layers;
  assert.deepEqual(layers.map((l) => l.mediaType.endsWith('+encrypted')), [false, false, true]);
  assert.deepEqual(layerDigests(enc).slice(0, 2), layerDigests(bbOci).slice(0, 2), 'unencrypted layers stay byte-identical');
  await assert.rejects(ourTree(`oci:${enc}:latest`, []), (e: Error & { code?: string }) => e.code === 'ENCRYPTED_LAYER' && /layer/.test(e.message));
  await assert.rejects(ourTree(`oci:${enc}:latest`, [k.ec.priv]), { code: 'OCICRYPT_NO_KEY' });
  assert.equal(await ourTree(`oci:${enc}:latest`, [k.rsa.priv]), readFileSync(expectedTree, 'utf8'));
  await assert.rejects(encryptedImage(await openImage(`oci:${bbOci}:latest`), { recipients: [jwe(k.rsa.pub)], layers: [3] }), { code: 'BAD_LAYER_INDEX' });
  await assert.rejects(writeImage(await openImage(`oci:${enc}:latest`), `docker-archive:${dir('a')}.tar:x:y`), { code: 'OCICRYPT_UNSUPPORTED' });
});

test('attacks: a flipped ciphertext byte, a truncated layer, annotations swapped between layers: we and skopeo both reject', { skip }, async () => {
  const attacks: Array<[string, (layout: string) => void]> = [
    ['flipped byte', (l) => { const d = manifestOf(l).manifest.layers[2].digest; const b = readFileSync(blobFile(l, d)); b[b.length >> 1] ^= 0x40; replaceBlob(l, 2, b); }],
    ['truncated', (l) => { const d = manifestOf(l).manifest.layers[2].digest; const b = readFileSync(blobFile(l, d)); replaceBlob(l, 2, b.subarray(0, b.length - 100)); }],
    ['swapped annotations', (l) => rewriteManifest(l, (m) => { const a = m.layers[1].annotations!; m.layers[1].annotations = m.layers[2].annotations!; m.layers[2].annotations = a; })],
  ];
  for (const [what, attack] of attacks) {
    const enc = await encryptTo(bbOci, [jwe(k.rsa.pub)]);
    attack(enc);
    await assert.rejects(ourTree(`oci:${enc}:latest`, [k.rsa.priv]), (e: Error & { code?: string }) => {
      assert.ok(['OCICRYPT_HMAC_MISMATCH', 'BLOB_DIGEST_MISMATCH', 'BLOB_SIZE_MISMATCH'].includes(e.code ?? ''), `${what}: ${e.code} ${e.message}`);
      return true;
    });
    const r = sk('copy', '--decryption-key', k.rsa.priv, `oci:${enc}:latest`, `oci:${dir('sdec')}:latest`);
    assert.notEqual(r.status, 0, `${what}: skopeo must fail too`);
  }
});

test('attack: a downgraded media type (encrypted → plain) gives no plaintext tree, to us or to skopeo + umoci', { skip }, async () => {
  const enc = await encryptTo(bbOci, [jwe(k.rsa.pub)]);
  rewriteManifest(enc, (m) => { for (const l of m.layers) l.mediaType = l.mediaType.replace('+encrypted', ''); });
  // Ciphertext read as gzip: the decompressor or the diff_id check refuses it.
  await assert.rejects(ourTree(`oci:${enc}:latest`, [k.rsa.priv]), /incorrect header check|diff_id|BAD_LAYER/);
  const out = dir('down');
  const r = sk('copy', '--decryption-key', k.rsa.priv, `oci:${enc}:latest`, `oci:${out}:latest`);
  if (r.status === 0) {
    const u = spawnSync('umoci', ['unpack', '--image', `${out}:latest`, dir('bundle')], { encoding: 'utf8' });
    assert.notEqual(u.status, 0, 'umoci must not unpack ciphertext as a tree');
  }
});

/** The CoCo guest's path, written here from coco.md §2 with @noble: unwrap the packet, decrypt the layer. */
function guestDecrypt(blob: Buffer, annotations: Record<string, string>, kek: Uint8Array): Buffer {
  const p = JSON.parse(Buffer.from(annotations[AA_ANNOTATION], 'base64').toString()) as { kid: string; wrapped_data: string; iv: string };
  const opts = JSON.parse(Buffer.from(gcm(kek, Buffer.from(p.iv, 'base64')).decrypt(Buffer.from(p.wrapped_data, 'base64'))).toString()) as { symkey: string; cipheroptions: { nonce: string } };
  const key = Buffer.from(opts.symkey, 'base64');
  const pub = JSON.parse(Buffer.from(annotations['org.opencontainers.image.enc.pubopts'], 'base64').toString()) as { hmac: string };
  assert.equal(Buffer.from(hmac(sha256, key, blob)).toString('base64'), pub.hmac, 'HMAC over the ciphertext');
  return Buffer.from(ctr(key, Buffer.from(opts.cipheroptions.nonce, 'base64')).decrypt(blob));
}

test('attestation-agent layers: one KEK for every layer, kbs:/// kid; the guest\'s unwrap yields the original blobs; re-wrapped as JWE, skopeo decrypts them; a wrong KEK fails', { skip }, async () => {
  const kek = randomBytes(32);
  const kid = 'kbs:///default/image-kek/bb';
  const enc = await encryptTo(bbOci, [{ kind: 'attestation-agent', kid, algorithm: 'A256GCM', kek }]);
  const { manifest } = manifestOf(enc);
  const original = layerDigests(bbOci);
  for (const [i, l] of manifest.layers.entries()) {
    const plain = guestDecrypt(readFileSync(blobFile(enc, l.digest)), l.annotations!, kek);
    assert.equal('sha256:' + createHash('sha256').update(plain).digest('hex'), original[i]);
    assert.equal(JSON.parse(Buffer.from(l.annotations![AA_ANNOTATION], 'base64').toString()).kid, kid);
    assert.throws(() => guestDecrypt(readFileSync(blobFile(enc, l.digest)), l.annotations!, randomBytes(32)));
  }
  const kekFile = path.join(work.dir, 'kek.bin');
  writeFileSync(kekFile, kek, { mode: 0o600 });
  assert.equal(await ourTree(`oci:${enc}:latest`, [kekFile]), readFileSync(expectedTree, 'utf8'));
  const wrong = path.join(work.dir, 'wrong.bin');
  writeFileSync(wrong, randomBytes(32), { mode: 0o600 });
  await assert.rejects(ourTree(`oci:${enc}:latest`, [wrong]), { code: 'OCICRYPT_NO_KEY' });
  // Re-wrap each layer's options (as the guest unwrapped them) as a JWE for skopeo's ocicrypt.
  const pubKey = parsePublicKey(readFileSync(k.rsa.pub), 'rsa');
  rewriteManifest(enc, (m) => {
    for (const l of m.layers) {
      const p = JSON.parse(Buffer.from(l.annotations![AA_ANNOTATION], 'base64').toString()) as { wrapped_data: string; iv: string };
      const opts = gcm(kek, Buffer.from(p.iv, 'base64')).decrypt(Buffer.from(p.wrapped_data, 'base64'));
      delete l.annotations![AA_ANNOTATION];
      l.annotations!['org.opencontainers.image.enc.keys.jwe'] = Buffer.from(jweEncrypt(opts, [pubKey])).toString('base64');
    }
  });
  const dec = dir('aadec');
  const r = sk('copy', '--decryption-key', k.rsa.priv, `oci:${enc}:latest`, `oci:${dec}:latest`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(layerDigests(dec), original);
  void readdirSync; void truncateSync; void execFileSync;
});
