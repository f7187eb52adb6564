/**
 * CoCo's `attestation-agent` key provider, natively (no provider server): the layer's private
 * options are wrapped under a key-encryption key (KEK) that a Trustee KBS releases to the guest
 * after attestation, and the annotation names the KEK by its KBS resource id. Format as read in
 * guest-components (coco_keyprovider src/enc_mods/mod.rs; confidential-data-hub
 * annotation_packet): standard padded base64 of compact JSON `{"kid","wrapped_data","iv","wrap_type"}`;
 * `A256GCM`: AES-256-GCM, 12-byte IV, no AAD, `wrapped_data` = ciphertext || 16-byte tag;
 * `A256CTR`: 16-byte IV as the initial counter, no integrity (accepted for interoperability only).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EnclavifyError } from '../oci/errors.js';

/** Wrap algorithms of the AnnotationPacket. */
export type AaAlgorithm = 'A256GCM' | 'A256CTR';

/** The annotation key of this provider. */
export const AA_ANNOTATION = 'org.opencontainers.image.enc.keys.provider.attestation-agent';

/** A parsed AnnotationPacket. */
export interface AnnotationPacket {
  kid: string;
  wrapped_data: string;
  iv: string;
  wrap_type: AaAlgorithm;
}

/**
 * Checks a KBS resource id `kbs:///REPO/TYPE/TAG` (a host part is allowed and ignored by the
 * KBS); the guest refuses anything else. Returns the `REPO/TYPE/TAG` path.
 */
export function parseKbsId(kid: string, what: string): string {
  const m = /^kbs:\/\/[^/]*\/([A-Za-z0-9._-]+)\/([A-Za-z0-9._-]+)\/([A-Za-z0-9._-]+)$/.exec(kid);
  if (!m || [m[1], m[2], m[3]].some((s) => s === '.' || s === '..')) {
    throw new EnclavifyError('OCICRYPT_BAD_RECIPIENT', `${what}: ${JSON.stringify(kid)} is not a KBS resource id kbs:///REPO/TYPE/TAG (the guest fetches only kbs:// resources)`);
  }
  return `${m[1]}/${m[2]}/${m[3]}`;
}

function checkKek(kek: Uint8Array): void {
  if (kek.length !== 32) throw new EnclavifyError('OCICRYPT_BAD_KEY', 'an attestation-agent key-encryption key is 32 bytes');
}

/** Wraps `optsData` (ocicrypt's private options JSON) under `kek`: the annotation value. */
export function aaWrap(optsData: Uint8Array, kek: Uint8Array, kid: string, algorithm: AaAlgorithm = 'A256GCM'): string {
  checkKek(kek);
  parseKbsId(kid, 'attestation-agent keyid');
  let iv: Buffer, wrapped: Buffer;
  if (algorithm === 'A256GCM') {
    iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', kek, iv);
    wrapped = Buffer.concat([c.update(optsData), c.final(), c.getAuthTag()]);
  } else {
    iv = randomBytes(16);
    const c = createCipheriv('aes-256-ctr', kek, iv);
    wrapped = Buffer.concat([c.update(optsData), c.final()]);
  }
  const packet: AnnotationPacket = { kid, wrapped_data: wrapped.toString('base64'), iv: iv.toString('base64'), wrap_type: algorithm };
  return Buffer.from(JSON.stringify(packet)).toString('base64');
}

/** Parses an annotation value into its packet (no key needed). */
export function aaParse(annotation: string, what: string): AnnotationPacket {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(Buffer.from(annotation, 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: the attestation-agent annotation is not base64 JSON`);
  }
  if (!p || typeof p !== 'object') throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: the attestation-agent annotation is not a JSON object`);
  const { kid, wrapped_data, iv, wrap_type } = p;
  if (typeof kid !== 'string' || typeof wrapped_data !== 'string' || typeof iv !== 'string' || (wrap_type !== 'A256GCM' && wrap_type !== 'A256CTR')) {
    throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: the attestation-agent packet needs kid, wrapped_data, iv and wrap_type A256GCM|A256CTR`);
  }
  if (p.version !== undefined && p.version !== '0.1.0') throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: packet version ${String(p.version)} is not supported (0.1.0)`);
  parseKbsId(kid, `${what}: kid`);
  return { kid, wrapped_data, iv, wrap_type };
}

/** Unwraps a packet with `kek` (as the confidential-data hub does with the KBS resource). */
export function aaUnwrap(packet: AnnotationPacket, kek: Uint8Array, what: string): Buffer {
  checkKek(kek);
  const iv = Buffer.from(packet.iv, 'base64');
  const data = Buffer.from(packet.wrapped_data, 'base64');
  if (packet.wrap_type === 'A256GCM') {
    if (iv.length !== 12 || data.length < 16) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: A256GCM packet with a ${iv.length}-byte IV or no tag`);
    const d = createDecipheriv('aes-256-gcm', kek, iv);
    d.setAuthTag(data.subarray(data.length - 16));
    try {
      return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
    } catch {
      throw new EnclavifyError('OCICRYPT_NO_KEY', `${what}: the key-encryption key does not open the packet of ${packet.kid} (wrong KEK, or the packet was changed)`);
    }
  }
  if (iv.length !== 16) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${what}: A256CTR packet with a ${iv.length}-byte IV`);
  const d = createDecipheriv('aes-256-ctr', kek, iv);
  return Buffer.concat([d.update(data), d.final()]);
}
