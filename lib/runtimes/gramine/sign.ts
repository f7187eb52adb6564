/**
 * Signing the Gramine enclave of an image: from the `.manifest` and the SGX PAL (`libpal.so`) in the
 * image to `<base>.manifest.sgx` and `<base>.sig`, with lib/sgx (no Gramine tools). Shared by
 * `injectRuntime(gramine({ signKey }))` and `signGramineImage` (`enclavify sign`).
 */
import type { KeyObject } from 'node:crypto';
import { EnclavifyError } from '../../oci/errors.js';
import type { Transform } from '../../transforms/pipeline.js';
import { PROTECTION, RUNTIME, type Protection, type RuntimeInfo } from '../../transforms/state.js';
import { refreshProtectionManifest } from '../../transforms/encrypt-fs.js';
import { MANIFEST_PATH } from '../../protect/manifest.js';
import { measureGramineEnclave, parseSigstruct, signGramineEnclave, verifySigstructSignature, type EnclaveSigner, type SignedEnclave } from '../../sgx/index.js';
import { normalizePath, type FsEntry } from '../../fs/entry.js';
import type { RootFs } from '../../fs/merged.js';
import { DEBIAN_LAYOUT, DEFAULT_APP_BASE, LABELS, parentDir } from './layout.js';
import { manifestRisks } from './hardening.js';
import { parseFragment } from './manifest.js';
import { checkImageForSigning, formatSigningFindings } from './sign-check.js';

/** A signing key or signer, as the options of gramine() and signGramineImage() take it. */
export interface SigningOptions {
  /** RSA-3072 (e = 3) private key, PEM (or a KeyObject). */
  signKey?: string | Uint8Array | KeyObject;
  /** Passphrase of an encrypted PEM `signKey`. */
  signKeyPassphrase?: string;
  /** A remote signer (HSM, KMS); see docs/signing.md. */
  signer?: EnclaveSigner;
  /** SIGSTRUCT date (default: the pipeline's creation time, i.e. SOURCE_DATE_EPOCH when set). */
  signDate?: string | Date;
}

/** The signer the options describe, or undefined when none. */
export function signerFrom(o: SigningOptions): EnclaveSigner | undefined {
  if (o.signKey !== undefined && o.signer !== undefined) throw new EnclavifyError('GRAMINE_BAD_OPTIONS', 'give signKey or signer, not both');
  if (o.signer) return o.signer;
  if (o.signKey !== undefined) return { privateKey: o.signKey, passphrase: o.signKeyPassphrase };
  return undefined;
}

/** SIGSTRUCT dates are days (UTC); `YYYY-MM-DD`. */
export function signDate(o: SigningOptions, created: Date): string | Date {
  return o.signDate ?? created.toISOString().slice(0, 10);
}

/**
 * Signs a manifest: expands it to `.manifest.sgx` (loader entrypoint and trusted files without a
 * hash are looked up with `resolveSha256`), measures it with `pal`, signs.
 */
export async function signManifest(opts: {
  manifest: string;
  pal: Uint8Array;
  signer: EnclaveSigner;
  date: string | Date;
  resolveSha256?: (uri: string) => string | undefined;
  name?: string;
}): Promise<SignedEnclave> {
  return signGramineEnclave({
    manifest: opts.manifest,
    expand: { resolveSha256: opts.resolveSha256, name: opts.name },
    pal: opts.pal,
    signer: opts.signer,
    date: opts.date,
  });
}

/** SHA-256 of the file a `file:` URI names in `fs` (symlinks followed), for manifest expansion. */
export function sha256Resolver(fs: RootFs): (uri: string) => string | undefined {
  return (uri) => {
    if (!uri.startsWith('file:')) return undefined;
    const r = fs.resolve(uri.slice(5));
    const e = r === undefined ? undefined : fs.get(r);
    return e?.type === 'file' ? e.sha256 : undefined;
  };
}

/** Reads one regular file of an image whole (symlinks followed), naming it in errors. */
export async function readImageFile(fs: RootFs, p: string, what: string): Promise<Uint8Array> {
  const e = fs.stat(p);
  if (!e || e.type !== 'file') throw new EnclavifyError('GRAMINE_NOT_FOUND', `${what} ${p} is not a file in the image`);
  const m = await fs.readFiles([p]);
  return m.get(p)!;
}

/** A file entry of a new layer (root-owned). */
export function fileEntry(p: string, size: number, mtime: number, mode = 0o644): FsEntry {
  return { path: norm(p), type: 'file', mode, uid: 0, gid: 0, mtime, size };
}

function norm(p: string): string {
  const n = normalizePath(p);
  if (n instanceof Error || n === undefined) throw new EnclavifyError('GRAMINE_BAD_PATH', `bad path ${JSON.stringify(p)}`);
  return n;
}

/** Options of {@link signGramineImage}. */
export interface SignGramineImageOptions extends SigningOptions {
  /** The `.manifest` to sign (default: the image's `enclavify.gramine.manifest` label, else `/gramine/app/entrypoint.manifest`). */
  manifestPath?: string;
  /** The SGX PAL in the image (default: the `enclavify.gramine.sgx-pal` label, else Gramine's Debian path). */
  palPath?: string;
  /**
   * Add an externally made signature instead of signing: the `.manifest.sgx` and `.sig` that
   * `gramine-sgx-sign` wrote for this image's manifest. They are checked: the SIGSTRUCT must
   * verify and its MRENCLAVE must be the measurement of these bytes with the image's PAL.
   */
  external?: { manifestSgx: Uint8Array; sigstruct: Uint8Array };
  /**
   * Record the two new files in the image's protection manifest, if it has one (default true), so
   * that `enclavify verify` accepts the signed image. This changes the protection manifest's
   * SHA-256 (reported): pin the new one in policies.
   */
  refreshProtection?: boolean;  /**
   * Refuse to sign a manifest that {@link manifestRisks} flags (insecure__ keys, debug,
   * allow_all_but_log, host-supplied code, ...) or an image whose Entrypoint starts gramine-direct.
   * Without it these are warnings (progress and `report.signGramine.warnings`).
   */
  production?: boolean;
  /**
   * The protection manifest's SHA-256 the conversion reported (hex, `sha256:` allowed): the image
   * is checked against that manifest, not only against the one it carries (which whoever changed
   * the image can have rewritten). A different manifest refuses the signature.
   */
  expectedProtectionSha256?: string;
}

/**
 * A transform that signs an already converted (unsigned) Gramine image: adds one layer holding
 * `<base>.manifest.sgx` and `<base>.sig` next to the manifest, and records MRENCLAVE/MRSIGNER under
 * the `RUNTIME` state key. Use it alone in a pipeline: `pipeline(image, [signGramineImage({ signKey })])`.
 *
 * Before signing, the image is checked against its protection manifest and the manifest's hashes
 * against both (see sign-check.ts): any finding refuses the signature (`GRAMINE_SIGN_REFUSED`),
 * so a file changed after conversion is never blessed. Insecure settings in the manifest are
 * warned about, or refused with `production` (`GRAMINE_INSECURE_IN_PRODUCTION`).
 */
export function signGramineImage(opts: SignGramineImageOptions): Transform {
  return {
    name: 'signGramine',
    async apply(draft) {
      const labels = draft.config.config?.Labels ?? {};
      const manifestPath = opts.manifestPath ?? labels[LABELS.manifest] ?? `${DEFAULT_APP_BASE}.manifest`;
      if (!manifestPath.endsWith('.manifest')) throw new EnclavifyError('GRAMINE_BAD_OPTIONS', `manifest path ${manifestPath} must end in .manifest`);
      const base = manifestPath.slice(0, -'.manifest'.length);
      const palPath = opts.palPath ?? labels[LABELS.sgxPal] ?? DEBIAN_LAYOUT.sgxPal;
      const fs = await draft.rootfs();
      if (!fs.stat(manifestPath)) {
        throw new EnclavifyError('GRAMINE_NOT_FOUND', `${draft.source.name} has no Gramine manifest at ${manifestPath}: convert it with the Gramine runtime first (or give the manifest path)`);
      }
      const [manifestBytes, pal] = [await readImageFile(fs, manifestPath, 'Gramine manifest'), await readImageFile(fs, palPath, 'Gramine SGX PAL')];
      let signed: { manifestSgx: Uint8Array; sigstruct: Uint8Array; mrenclave: string; mrsigner: string; isvProdId: number; isvSvn: number; debug: boolean } | undefined;
      if (opts.external) {
        const { mrenclave } = measureGramineEnclave({ manifestSgx: opts.external.manifestSgx, pal });
        if (!verifySigstructSignature(opts.external.sigstruct)) throw new EnclavifyError('SGX_BAD_SIGNATURE', 'the given SIGSTRUCT does not verify (bad signature, modulus or exponent)');
        const s = parseSigstruct(opts.external.sigstruct);
        if (s.mrenclave !== mrenclave) {
          throw new EnclavifyError('SGX_MRENCLAVE_MISMATCH', `the given SIGSTRUCT is for MRENCLAVE ${s.mrenclave}, but the given .manifest.sgx with the image's PAL (${palPath}) measures ${mrenclave}`);
        }
        signed = { ...opts.external, mrenclave, mrsigner: s.mrsigner, isvProdId: s.isvProdId, isvSvn: s.isvSvn, debug: s.debug };
      }
      // The image and the manifest are checked before anything is signed (a remote signer is never asked to sign a tampered enclave).
      // What will be measured: the external .manifest.sgx, or the image's manifest.
      const doc = parseFragment(new TextDecoder().decode(opts.external ? opts.external.manifestSgx : manifestBytes), opts.external ? 'the given .manifest.sgx' : manifestPath);
      const pm = labels[LABELS.protection] ?? MANIFEST_PATH;
      const expected = opts.expectedProtectionSha256?.toLowerCase().replace(/^sha256:/, '');
      if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) throw new EnclavifyError('GRAMINE_BAD_OPTIONS', `expectedProtectionSha256 ${JSON.stringify(opts.expectedProtectionSha256)} is not a SHA-256 (64 hex digits)`);
      const check = await checkImageForSigning({ draft, manifest: doc, protectionPath: pm, ...(expected ? { expectedProtectionSha256: expected } : {}) });
      if (check.findings.length) {
        throw new EnclavifyError('GRAMINE_SIGN_REFUSED', `refusing to sign ${draft.source.name}: ${check.findings.length} finding(s) against ${check.protectionChecked ? `its protection manifest ${pm} and ` : ''}the image (changed after conversion?):\n${formatSigningFindings(check.findings)}`);
      }
      for (const n of check.notes) draft.progress({ phase: 'sign', message: `sign: ${n}` });
      const risks = manifestRisks(doc).map((r) => r.message);
      if (labels[LABELS.loader] === 'direct') risks.push(`the image's Entrypoint starts gramine-direct (label ${LABELS.loader}=direct): it runs without SGX unless ENCLAVIFY_GRAMINE_LOADER=sgx is set`);
      if (opts.production && risks.length) throw new EnclavifyError('GRAMINE_INSECURE_IN_PRODUCTION', `refusing to sign ${manifestPath} for production: ${risks.join('; ')}`);
      for (const r of risks) draft.warn(r, { phase: 'sign' });
      if (!signed) {
        const signer = signerFrom(opts);
        if (!signer) throw new EnclavifyError('GRAMINE_BAD_OPTIONS', 'signGramineImage needs signKey, signer or external');
        signed = await signManifest({
          manifest: new TextDecoder().decode(manifestBytes),
          pal,
          signer,
          date: signDate(opts, draft.created),
          resolveSha256: sha256Resolver(fs),
          name: manifestPath,
        });
      }
      const mtime = Math.floor(draft.created.getTime() / 1000);
      const layer = await draft.buildLayer([
        { entry: fileEntry(`${base}.manifest.sgx`, signed.manifestSgx.length, mtime), content: signed.manifestSgx },
        { entry: fileEntry(`${base}.sig`, signed.sigstruct.length, mtime), content: signed.sigstruct },
      ], 'Gramine signature');
      draft.addLayer(layer, {
        createdBy: `enclavify sign: ${base}.manifest.sgx and ${base}.sig`,
        comment: `MRENCLAVE ${signed.mrenclave}, MRSIGNER ${signed.mrsigner}`,
      });
      let protectionManifestSha256: string | undefined;
      const pmEntry = fs.get(pm);
      if (opts.refreshProtection !== false && pmEntry?.type === 'file' && !draft.state.has(PROTECTION)) {
        // Only a layer that holds nothing but the manifest (as encryptFS writes it) can be rebuilt in place.
        const own = fs.layerIndex(pmEntry.layer).entries.filter((x) => x.type !== 'dir');
        if (own.length === 1 && own[0].path === pmEntry.path) {
          draft.state.set(PROTECTION, { manifestPath: pm, manifestSha256: pmEntry.sha256!, keys: [], manifestLayer: pmEntry.layer } satisfies Protection);
          protectionManifestSha256 = (await refreshProtectionManifest(draft)).manifestSha256;
        } else draft.warn(`${pm} shares its layer with other files; the signature files are not recorded in it (enclavify verify will list them)`);
      }
      const prev = draft.state.get(RUNTIME);
      const info: RuntimeInfo = {
        ...(prev ?? { runtime: 'gramine', entrypoint: draft.config.config?.Entrypoint ?? [], keyNames: [] }),
        manifestPath,
        mrenclave: [signed.mrenclave],
        mrsigner: signed.mrsigner,
        isvProdId: signed.isvProdId,
        isvSvn: signed.isvSvn,
        debug: signed.debug,
      };
      draft.state.set(RUNTIME, info);
      draft.report.signGramine = {
        manifest: manifestPath, directory: parentDir(manifestPath), mrenclave: signed.mrenclave, mrsigner: signed.mrsigner,
        isvProdId: signed.isvProdId, isvSvn: signed.isvSvn, debug: signed.debug, external: !!opts.external,
        ...(protectionManifestSha256 ? { protectionManifestSha256 } : {}),
        protectionChecked: check.protectionChecked,
        warnings: risks,
      };
      draft.progress({ phase: 'sign', message: `signed ${base}.sig: MRENCLAVE ${signed.mrenclave}` });
    },
  };
}
