/**
 * Encrypting and decrypting layers and images with ocicrypt, as lazy wrappers over the layer
 * model: an encrypted layer is the source layer's stored blob through AES-CTR (deterministic for
 * its key and nonce, so it can be streamed again to the writer and verified against the digest
 * found in the first pass); a decrypted layer checks, in order, the ciphertext's descriptor
 * digest, the HMAC, the plain blob's digest (which skopeo does not) and the diff_id.
 */
import { createHash } from 'node:crypto';
import { pipeline as pipe } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { EnclavifyError, shortDigest } from '../oci/errors.js';
import { VerifyingStream } from '../oci/digest.js';
import { chain } from '../oci/layer.js';
import { decompressor } from '../oci/compression.js';
import { toOciImage } from '../oci/convert.js';
import { sha256Digest } from '../oci/digest.js';
import { encodeJson } from '../oci/json.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import type { Image, Layer } from '../oci/image.js';
import { layerCompression, MT, ociLayerType, type Compression } from '../oci/media-types.js';
import { withSignal } from '../oci/abort.js';
import { LayerDecryptStream, LayerEncryptStream, newLayerKey, type LayerKey } from './cipher.js';
import { decodePrivateOptions, decodePublicOptions, encodePrivateOptions, encodePublicOptions, encryptedType, isEncryptedType, JWE_ANNOTATION, KEYS_PREFIX, plainType, PUBOPTS, withoutEncAnnotations, type PrivateOptions } from './annotations.js';
import { jweDecrypt, jweEncrypt } from './jwe.js';
import { AA_ANNOTATION, aaParse, aaUnwrap, aaWrap } from './keyprovider-aa.js';
import type { DecryptionKeys, Recipient } from './keys.js';

/** A recipient whose key material is complete (an attestation-agent recipient with its KEK). */
export type ResolvedRecipient = Exclude<Recipient, { kind: 'attestation-agent' }> | (Extract<Recipient, { kind: 'attestation-agent' }> & { readonly kek: Uint8Array });

/** Options of {@link encryptLayer}. */
export interface EncryptLayerOptions {
  /** Who can open the layer (at least one). */
  recipients: readonly ResolvedRecipient[];
  signal?: AbortSignal | undefined;
}

/** The annotations carrying a layer's wrapped key for each kind of recipient. */
function keyAnnotations(priv: PrivateOptions, recipients: readonly ResolvedRecipient[]): Record<string, string> {
  const opts = encodePrivateOptions(priv);
  const out: Record<string, string> = {};
  const jwe = recipients.filter((r) => r.kind === 'jwe');
  // ocicrypt writes one JWE per recipient, joined by commas; one multi-recipient JWE would also be
  // read by ocicrypt, but separate JWEs keep each recipient's entry independent.
  if (jwe.length) out[JWE_ANNOTATION] = jwe.map((r) => Buffer.from(jweEncrypt(opts, [r.key])).toString('base64')).join(',');
  const aa = recipients.filter((r) => r.kind === 'attestation-agent');
  if (aa.length) out[AA_ANNOTATION] = aa.map((r) => aaWrap(opts, r.kek, r.kid, r.algorithm)).join(',');
  return out;
}

/** An ocicrypt-encrypted layer made from a plain one (see {@link encryptLayer}). */
export class EncryptedLayer implements Layer {
  readonly mediaType: string;
  readonly compression: Compression;
  readonly name: string;
  constructor(
    private readonly plain: Layer,
    private readonly key: LayerKey,
    private readonly cipherDigest: string,
    private readonly cipherSize: number,
    readonly annotations: Record<string, string>,
  ) {
    this.compression = plain.compression;
    this.mediaType = encryptedType(plain.mediaType.startsWith('application/vnd.docker.') ? ociLayerType(plain.compression) : plain.mediaType);
    this.name = plain.name;
  }
  async digest(): Promise<string> { return this.cipherDigest; }
  async size(): Promise<number> { return this.cipherSize; }
  diffId(): Promise<string> { return this.plain.diffId(); }
  async compressed(): Promise<Readable> {
    const enc = chain(await this.plain.compressed(), new LayerEncryptStream(this.key, this.name));
    return chain(enc, new VerifyingStream({ digest: this.cipherDigest, size: this.cipherSize }, `${this.name} (encrypted)`));
  }
  uncompressed(): Promise<Readable> { return this.plain.uncompressed(); }
}

/**
 * Encrypts a layer for `recipients` with a fresh key and nonce: one pass over the stored blob
 * computes the ciphertext's digest and HMAC (nothing is staged on disk); the writer streams it
 * again. Returns a layer with `+encrypted` media type and ocicrypt's annotations.
 */
export async function encryptLayer(layer: Layer, options: EncryptLayerOptions): Promise<EncryptedLayer> {
  if (!options.recipients.length) throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `${layer.name}: encryption needs at least one recipient`);
  if (isEncryptedType(layer.mediaType)) throw new EnclavifyError('OCICRYPT_UNSUPPORTED', `${layer.name} is already encrypted`);
  const key = newLayerKey();
  const enc = new LayerEncryptStream(key, layer.name);
  const hash = createHash('sha256');
  let size = 0;
  await pipe(await layer.compressed(), enc, new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _e, cb) { hash.update(chunk); size += chunk.length; cb(); },
  }), withSignal(options.signal));
  const priv: PrivateOptions = { ...key, digest: await layer.digest() };
  const annotations = {
    ...(layer.annotations ?? {}),
    ...keyAnnotations(priv, options.recipients),
    [PUBOPTS]: encodePublicOptions({ hmac: enc.hmac! }),
  };
  return new EncryptedLayer(layer, key, `sha256:${hash.digest('hex')}`, size, annotations);
}

/** Finds the private options of an encrypted layer with any of `keys`. */
export function unwrapLayerOptions(annotations: Record<string, string> | undefined, keys: DecryptionKeys, what: string): PrivateOptions {
  const a = annotations ?? {};
  const schemes = Object.keys(a).filter((k) => k.startsWith(KEYS_PREFIX));
  if (!schemes.length) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: encrypted layer with no ${KEYS_PREFIX}* annotation`);
  let sawAa = false, sawJwe = false;
  for (const value of (a[JWE_ANNOTATION] ?? '').split(',').filter(Boolean)) {
    sawJwe = true;
    if (!keys.jwe.length) break;
    try {
      return decodePrivateOptions(jweDecrypt(Buffer.from(value, 'base64').toString('utf8'), keys.jwe, what), what);
    } catch (e) {
      if (!(e instanceof EnclavifyError) || e.code !== 'OCICRYPT_NO_KEY') throw e;
    }
  }
  for (const value of (a[AA_ANNOTATION] ?? '').split(',').filter(Boolean)) {
    sawAa = true;
    const packet = aaParse(value, what);
    for (const kek of keys.keks) {
      try {
        return decodePrivateOptions(aaUnwrap(packet, kek, what), what);
      } catch (e) {
        if (!(e instanceof EnclavifyError) || e.code !== 'OCICRYPT_NO_KEY') throw e;
      }
    }
  }
  const kids = [...new Set((a[AA_ANNOTATION] ?? '').split(',').filter(Boolean).map((v) => { try { return aaParse(v, what).kid; } catch { return undefined; } }).filter((k): k is string => !!k))];
  const has = [sawJwe && 'jwe', sawAa && `provider.attestation-agent (KEK ${kids.join(', ')})`, ...schemes.filter((s) => s !== JWE_ANNOTATION && s !== AA_ANNOTATION).map((s) => s.slice(KEYS_PREFIX.length) + ' (not supported)')].filter(Boolean).join(', ');
  throw new EnclavifyError('OCICRYPT_NO_KEY', `${what} is encrypted (ocicrypt, keys for: ${has}); none of the given decryption keys opens it (--decryption-key: a JWE private key, or the 32-byte KEK of an attestation-agent layer)`);
}

/** A plain layer from an encrypted one (see {@link decryptLayer}). */
export class DecryptedLayer implements Layer {
  readonly mediaType: string;
  readonly compression: Compression;
  readonly name: string;
  readonly annotations: Record<string, string> | undefined;
  constructor(private readonly encrypted: Layer, private readonly opts: PrivateOptions, private readonly hmac: Uint8Array) {
    this.mediaType = plainType(encrypted.mediaType);
    const c = layerCompression(this.mediaType);
    if (c === undefined) throw new EnclavifyError('UNSUPPORTED_MEDIA_TYPE', `${encrypted.name}: unsupported layer media type ${encrypted.mediaType}`);
    this.compression = c;
    this.name = encrypted.name;
    this.annotations = withoutEncAnnotations(encrypted.annotations);
  }
  async digest(): Promise<string> { return this.opts.digest; }
  size(): Promise<number> { return this.encrypted.size(); }
  diffId(): Promise<string> { return this.encrypted.diffId(); }
  async compressed(): Promise<Readable> {
    const dec = chain(await this.encrypted.compressed(), new LayerDecryptStream(this.opts, this.hmac, this.name));
    return chain(dec, new VerifyingStream({ digest: this.opts.digest, size: await this.encrypted.size() }, `${this.name} (decrypted; the plain digest its wrapped options name)`));
  }
  async uncompressed(): Promise<Readable> {
    const diffId = await this.diffId();
    const comp = await this.compressed();
    const compDone = new Promise<void>((resolve, reject) => {
      comp.once('end', resolve);
      comp.once('error', reject);
    });
    compDone.catch(() => undefined);
    const dec = decompressor(this.compression);
    const out = new VerifyingStream({ digest: diffId }, `${this.name} (decrypted, uncompressed, diff_id ${shortDigest(diffId)})`, compDone);
    comp.on('error', (e) => out.destroy(e));
    dec.on('error', (e: Error) => {
      // Plaintext that fails to decompress may be forged: the HMAC at the end of the ciphertext
      // decides what is reported, so drain it first and report its failure if it fails.
      comp.unpipe(dec);
      comp.resume();
      compDone.then(() => out.destroy(new EnclavifyError('BAD_LAYER', `${this.name}: the decrypted layer does not decompress (${e.message})`)), (ce: unknown) => out.destroy(ce as Error));
    });
    dec.once('end', () => {
      if (!comp.readableEnded) {
        comp.unpipe(dec);
        comp.resume();
      }
    });
    out.on('close', () => {
      if (!comp.readableEnded && !comp.destroyed && out.errored === null) comp.destroy();
      dec.destroy();
    });
    comp.pipe(dec);
    dec.pipe(out);
    return out;
  }
}

/** Opens an encrypted layer with `keys`; throws `OCICRYPT_NO_KEY` naming the layer when none fits. */
export function decryptLayer(layer: Layer, keys: DecryptionKeys): DecryptedLayer {
  if (!isEncryptedType(layer.mediaType)) throw new EnclavifyError('OCICRYPT_UNSUPPORTED', `${layer.name} is not encrypted`);
  const pub = decodePublicOptions(layer.annotations?.[PUBOPTS], layer.name);
  return new DecryptedLayer(layer, unwrapLayerOptions(layer.annotations, keys, layer.name), pub.hmac);
}

/**
 * Which layer indexes `--encrypt-layer` values select (0-based, negative from the top; none given:
 * every layer). Out-of-range values are an error, never silently dropped.
 */
export function selectLayers(count: number, indexes: readonly number[] | undefined, what: string): Set<number> {
  if (!indexes?.length) return new Set(Array.from({ length: count }, (_, i) => i));
  const out = new Set<number>();
  for (const i of indexes) {
    const j = i < 0 ? count + i : i;
    if (!Number.isInteger(i) || j < 0 || j >= count) throw new EnclavifyError('BAD_LAYER_INDEX', `${what}: --encrypt-layer ${i} is out of range (the image has ${count} layers: 0..${count - 1}, or -1..-${count})`);
    out.add(j);
  }
  return out;
}

/** Options of {@link encryptedImage}. */
export interface EncryptImageOptions extends EncryptLayerOptions {
  /** Layers to encrypt (0-based, negative from the top); default every layer. */
  layers?: readonly number[] | undefined;
  /** Name of the result, for messages. */
  name?: string | undefined;
}

/**
 * The image with some layers replaced, keeping everything else of the manifest as it was (field
 * order, config descriptor and the config's bytes, other descriptors' fields), as c/image does
 * when it encrypts or decrypts: an image encrypted and then decrypted gets its manifest digest
 * back. Docker schema2 images become OCI first (encrypted media types are OCI's).
 */
async function withLayers(source: Image, replace: ReadonlyMap<number, Layer>): Promise<Image> {
  const image = await toOciImage(source);
  const src = await image.manifest();
  const layers = (await image.layers()).map((l, i) => replace.get(i) ?? l);
  const descs = await Promise.all(src.layers.map(async (d, i) => {
    const l = replace.get(i);
    if (!l) return d;
    const out: Descriptor = { ...d, mediaType: l.mediaType, digest: await l.digest(), size: await l.size() };
    if (l.annotations && Object.keys(l.annotations).length) out.annotations = l.annotations;
    else delete out.annotations;
    return out;
  }));
  const manifest: Manifest = { ...src, layers: descs };
  const raw = encodeJson(manifest);
  const digest = sha256Digest(raw);
  return {
    name: image.name,
    mediaType: async () => MT.ociManifest,
    manifest: async () => manifest,
    rawManifest: async () => raw,
    digest: async () => digest,
    config: () => image.config(),
    rawConfig: () => image.rawConfig(),
    layers: async () => layers,
  };
}

/** The image with the selected layers encrypted (an OCI manifest; the config is unchanged in content). */
export async function encryptedImage(image: Image, options: EncryptImageOptions): Promise<Image> {
  const layers = await image.layers();
  const chosen = selectLayers(layers.length, options.layers, image.name);
  const out = new Map<number, Layer>();
  for (const [i, l] of layers.entries()) {
    if (!chosen.has(i)) continue;
    if (isEncryptedType(l.mediaType)) throw new EnclavifyError('OCICRYPT_UNSUPPORTED', `${l.name} is already encrypted; decrypt the image first (--decryption-key) to encrypt it for other recipients`);
    out.set(i, await encryptLayer(l, options));
  }
  const img = await withLayers(image, out);
  return options.name ? { ...img, name: options.name } : img;
}

/** Whether any layer of the image is encrypted. */
export async function isEncryptedImage(image: Image): Promise<boolean> {
  return (await image.layers()).some((l) => isEncryptedType(l.mediaType));
}

/**
 * The image with every encrypted layer decrypted by `keys` (nothing is read until asked for); an
 * image without encrypted layers is returned as it is.
 */
export async function decryptingImage(image: Image, keys: DecryptionKeys): Promise<Image> {
  const layers = await image.layers();
  // No keys at all: the image stays as read, its encrypted layers refusing reads (ENCRYPTED_LAYER).
  if (!keys.jwe.length && !keys.keks.length) return image;
  if (!layers.some((l) => isEncryptedType(l.mediaType))) return image;
  const out = new Map<number, Layer>();
  for (const [i, l] of layers.entries()) if (isEncryptedType(l.mediaType)) out.set(i, decryptLayer(l, keys));
  return withLayers(image, out);
}
