/**
 * Checking an ocicrypt image: which layers are encrypted and whether their annotations are well
 * formed (no key needed); with keys, that every encrypted layer decrypts, passes its HMAC, hashes
 * to the plain digest its wrapped options name and to its diff_id; with a Trustee bundle, that the
 * bundle holds the KEK of every attestation-agent kid and that its files agree with each other.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { EnclavifyError } from '../oci/errors.js';
import type { Image } from '../oci/image.js';
import { withSignal } from '../oci/abort.js';
import { decodePublicOptions, isEncryptedType, JWE_ANNOTATION, KEYS_PREFIX, PUBOPTS } from './annotations.js';
import { AA_ANNOTATION, aaParse, parseKbsId } from './keyprovider-aa.js';
import { regularizeDigest } from '../coco/trustee.js';
import { decryptLayer } from './layers.js';
import type { DecryptionKeys } from './keys.js';

/** What was found wrong. */
export interface OcicryptFinding {
  /** 0-based layer index; -1 for the bundle. */
  layer: number;
  code: 'NOT_ENCRYPTED' | 'BAD_ANNOTATION' | 'DECRYPT_FAILED' | 'NO_KEY' | 'BUNDLE_MISMATCH';
  message: string;
}

/** One layer's facts. */
export interface OcicryptLayerReport {
  index: number;
  encrypted: boolean;
  mediaType: string;
  /** Key schemes present (`jwe`, `provider.attestation-agent`, ...). */
  schemes: string[];
  /** KBS resource ids of attestation-agent packets. */
  kids: string[];
  /** Decrypted and checked end to end (HMAC, plain digest, diff_id). */
  decrypted: boolean;
}

/** Result of {@link verifyOcicrypt}. */
export interface OcicryptReport {
  ok: boolean;
  layers: OcicryptLayerReport[];
  findings: OcicryptFinding[];
}

/** Options of {@link verifyOcicrypt}. */
export interface VerifyOcicryptOptions {
  /** Keys to decrypt with; without them only the structure is checked. */
  keys?: DecryptionKeys | undefined;
  /** Layers that must be encrypted: `all`, or 0-based indexes (negative from the top). Default: none required. */
  expectEncrypted?: 'all' | readonly number[] | undefined;
  /** A Trustee bundle directory (`OUTPUT/trustee`) to check against the image; its KEKs are used as keys too. */
  bundleDir?: string | undefined;
  signal?: AbortSignal | undefined;
}

const drain = () => new Writable({ highWaterMark: 1 << 20, write(_c, _e, cb) { cb(); } });

/** Checks an image's ocicrypt layers (see the module comment). Throws only when the image cannot be read. */
export async function verifyOcicrypt(image: Image, options: VerifyOcicryptOptions = {}): Promise<OcicryptReport> {
  const layers = await image.layers();
  const findings: OcicryptFinding[] = [];
  const must = new Set<number>(options.expectEncrypted === 'all' ? layers.map((_, i) => i) : (options.expectEncrypted ?? []).map((i) => (i < 0 ? layers.length + i : i)));
  const keks = [...(options.keys?.keks ?? [])];
  const kidsSeen = new Set<string>();
  const report: OcicryptLayerReport[] = [];
  for (const [index, l] of layers.entries()) {
    const encrypted = isEncryptedType(l.mediaType);
    const a = l.annotations ?? {};
    const r: OcicryptLayerReport = { index, encrypted, mediaType: l.mediaType, schemes: Object.keys(a).filter((k) => k.startsWith(KEYS_PREFIX)).map((k) => k.slice(KEYS_PREFIX.length)), kids: [], decrypted: false };
    report.push(r);
    if (!encrypted) {
      if (must.has(index)) findings.push({ layer: index, code: 'NOT_ENCRYPTED', message: `${l.name} should be encrypted but has media type ${l.mediaType}` });
      if (Object.keys(a).some((k) => k.startsWith('org.opencontainers.image.enc.'))) findings.push({ layer: index, code: 'BAD_ANNOTATION', message: `${l.name} carries encryption annotations under a plain media type (a downgraded layer?)` });
      continue;
    }
    try {
      decodePublicOptions(a[PUBOPTS], l.name);
      if (!r.schemes.length) throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${l.name}: no wrapped key annotation`);
      for (const v of (a[AA_ANNOTATION] ?? '').split(',').filter(Boolean)) {
        const p = aaParse(v, l.name);
        r.kids.push(p.kid);
        kidsSeen.add(p.kid);
      }
      for (const v of (a[JWE_ANNOTATION] ?? '').split(',').filter(Boolean)) {
        try {
          JSON.parse(Buffer.from(v, 'base64').toString('utf8'));
        } catch {
          throw new EnclavifyError('OCICRYPT_BAD_ANNOTATION', `${l.name}: a ${JWE_ANNOTATION} value is not base64 JSON`);
        }
      }
    } catch (e) {
      findings.push({ layer: index, code: 'BAD_ANNOTATION', message: (e as Error).message });
      continue;
    }
    r.decrypted = false;
  }
  if (options.bundleDir) await checkBundle(options.bundleDir, kidsSeen, keks, findings);
  const keys: DecryptionKeys | undefined = options.keys || keks.length ? { jwe: options.keys?.jwe ?? [], keks } : undefined;
  if (keys) {
    for (const r of report) {
      if (!r.encrypted || findings.some((f) => f.layer === r.index)) continue;
      const l = layers[r.index];
      try {
        const d = decryptLayer(l, keys);
        await pipe(await d.uncompressed(), drain(), withSignal(options.signal));
        r.decrypted = true;
      } catch (e) {
        const code = e instanceof EnclavifyError && e.code === 'OCICRYPT_NO_KEY' ? 'NO_KEY' : 'DECRYPT_FAILED';
        if (e instanceof EnclavifyError && e.code === 'ABORTED') throw e;
        findings.push({ layer: r.index, code, message: (e as Error).message });
      }
    }
  }
  return { ok: findings.length === 0, layers: report, findings };
}

async function checkBundle(dir: string, kids: Set<string>, keks: Uint8Array[], findings: OcicryptFinding[]): Promise<void> {
  const bad = (message: string) => findings.push({ layer: -1, code: 'BUNDLE_MISMATCH', message: `${dir}: ${message}` });
  const policy = await readFile(path.join(dir, 'resource-policy.rego'), 'utf8').catch(() => undefined);
  if (policy === undefined) bad('resource-policy.rego is missing');
  for (const kid of kids) {
    const p = parseKbsId(kid, 'kid');
    const kek = await readFile(path.join(dir, 'kbs', p)).catch(() => undefined);
    if (!kek) bad(`no KEK for ${kid} (kbs/${p})`);
    else if (kek.length !== 32) bad(`kbs/${p} is ${kek.length} bytes, not a 32-byte KEK`);
    else keks.push(new Uint8Array(kek));
    if (policy !== undefined && !policy.includes(JSON.stringify(p))) bad(`resource-policy.rego does not release ${p}`);
  }
  const toml = await readFile(path.join(dir, 'initdata.toml')).catch(() => undefined);
  const digest = await readFile(path.join(dir, 'initdata.digest'), 'utf8').catch(() => undefined);
  if (toml && digest) {
    const [alg, hex] = digest.trim().split(':');
    if (!['sha256', 'sha384', 'sha512'].includes(alg) || createHash(alg).update(toml).digest('hex') !== hex) bad('initdata.digest is not the digest of initdata.toml');
    else if (policy !== undefined) checkPolicyInitData(policy, createHash(alg).update(toml).digest(), bad);
  }
}

/**
 * The resource policy must require the bundle's init data (as the TEE reports it: the digest
 * zero-padded or truncated to the evidence field, hex or base64), unless it states that the TEE
 * binds no init data (IBM SE). A policy that releases the KEK to a guest booted with other init
 * data (another KBS, another agent policy) is a finding.
 */
function checkPolicyInitData(policy: string, digest: Buffer, bad: (m: string) => void): void {
  const line = /^init_data := \{(.*)\}$/m.exec(policy);
  if (!line) {
    if (!/^# init data is NOT checked/m.test(policy)) bad('resource-policy.rego does not require the init data of initdata.toml');
    return;
  }
  const values = [...line[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  const matches = values.some((v) => {
    const bytes = /^(?:[0-9a-f]{2})+$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
    if (!bytes.length) return false;
    return bytes.equals(regularizeDigest(digest, bytes.length));
  });
  if (!matches || !/^\tevidence\.init_data in init_data$/m.test(policy)) bad('resource-policy.rego requires init data other than initdata.toml\'s');
}

/** The KEKs a Trustee bundle holds for the attestation-agent kids of an image's layers. */
export async function bundleKeks(dir: string, image: Image): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const kids = new Set<string>();
  for (const l of await image.layers()) {
    for (const v of (l.annotations?.[AA_ANNOTATION] ?? '').split(',').filter(Boolean)) {
      try {
        kids.add(aaParse(v, l.name).kid);
      } catch {
        // a malformed packet is verifyOcicrypt's finding
      }
    }
  }
  for (const kid of kids) {
    const kek = await readFile(path.join(dir, 'kbs', parseKbsId(kid, 'kid'))).catch(() => undefined);
    if (kek?.length === 32) out.push(new Uint8Array(kek));
  }
  return out;
}
