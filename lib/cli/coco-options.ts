/**
 * `convert --runtime coco`: an image for Confidential Containers (a Kata guest in a TDX, SEV-SNP or
 * s390x SE TEE). No runtime goes into the image (the guest is the TEE); its layers are encrypted
 * for CoCo's attestation-agent key provider under one key-encryption key (KEK) that a Trustee KBS
 * releases after attestation; the Trustee bundle, the keys file and the Helm chart are written.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EnclavifyError } from '../oci/errors.js';
import type { Transform } from '../transforms/pipeline.js';
import { PROTECTION, RUNTIME } from '../transforms/state.js';
import { emitChart } from '../transforms/emit-chart.js';
import { RUNTIME_CLASS, TEES, checkMeasurements, trusteeBundle, type Tee } from '../coco/trustee.js';
import type { InitDataAlgorithm } from '../coco/initdata.js';
import { readKek } from '../ocicrypt/keys.js';
import { parseKbsId } from '../ocicrypt/keyprovider-aa.js';
import type { ResolvedRecipient } from '../ocicrypt/layers.js';
import { UsageError, type OptionSpec, type Parsed } from './args.js';
import { imageNameFor } from './sconify-options.js';

export const cocoOptions: Record<string, OptionSpec> = {
  tee: { kind: 'string', arg: 'tdx|snp|se|coco-dev', help: 'with --runtime coco: the TEE (runtime class kata-qemu-<tee>; se defaults the platform to linux/s390x)' },
  kbs: { kind: 'string', arg: 'URL', help: 'with --runtime coco: the Trustee KBS address the guest attests to (init data)' },
  'kbs-cert': { kind: 'string', arg: 'FILE', help: 'with --runtime coco: the KBS certificate (PEM), for a KBS with a private CA' },
  'coco-kek': { kind: 'string', arg: 'FILE', help: 'with --runtime coco: the 32-byte key-encryption key to use (default: a new one, written to the keys file and the Trustee bundle)' },
  'coco-kid': { kind: 'string', arg: 'KID', help: 'with --runtime coco: the KEK\'s KBS resource id (default kbs:///default/image-kek/<name of --to>)' },
  measurement: { kind: 'list', arg: 'VALUE', help: 'with --runtime coco: a launch measurement the KBS resource policy requires (repeatable: any one of them): TDX MRTD or SNP MEASUREMENT as 96 hex digits, the SE header tag as 32' },
  'initdata-algorithm': { kind: 'string', arg: 'sha256|sha384|sha512', help: 'with --runtime coco: the init-data digest algorithm (default sha384; sha256 for snp)' },
};

/** What the writer needs of a CoCo conversion: the layer recipient. */
export interface CocoPlan {
  recipient: ResolvedRecipient;
  tee: Tee;
}

/** The default platform of a CoCo conversion (s390x for IBM SE), or undefined. */
export function cocoPlatform(args: Parsed): { os: string; architecture: string } | undefined {
  return args.strings.runtime === 'coco' && args.strings.tee === 'se' ? { os: 'linux', architecture: 's390x' } : undefined;
}

/** A resource name from `--to` (`app:1` → `app-1`). */
export function resourceName(to: string): string {
  return imageNameFor(to).split('/').pop()!.replace(/[@:]/g, '-').replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100) || 'image';
}

/**
 * The transforms of `--runtime coco` and the plan the writer follows, or undefined for other
 * runtimes (CoCo options are then refused rather than ignored).
 */
export async function cocoTransforms(args: Parsed, ctx: { to: string }): Promise<{ transforms: Transform[]; plan: CocoPlan } | undefined> {
  const given = Object.keys(cocoOptions).filter((o) => args.strings[o] !== undefined || args.lists[o]?.length);
  if (args.strings.runtime !== 'coco') {
    if (given.length) throw new UsageError(`${given.map((o) => `--${o}`).join(', ')}: only with --runtime coco`);
    return undefined;
  }
  if (args.lists.dir?.length) throw new UsageError('--runtime coco: --dir is refused: Gramine-format files mean nothing without Gramine; in CoCo the layers are the unit of encryption (every layer is encrypted)');
  const tee = args.strings.tee;
  if (!tee || !(TEES as readonly string[]).includes(tee)) throw new UsageError(`--runtime coco needs --tee ${TEES.join('|')}${tee ? ` (got ${tee})` : ''}`);
  const kbsUrl = args.strings.kbs;
  if (!kbsUrl) throw new UsageError('--runtime coco needs --kbs URL: the Trustee KBS the guest attests to');
  const alg = args.strings['initdata-algorithm'] ?? (tee === 'snp' ? 'sha256' : 'sha384');
  if (!['sha256', 'sha384', 'sha512'].includes(alg)) throw new UsageError(`--initdata-algorithm ${alg}: sha256, sha384 or sha512`);
  const kbsCert = args.strings['kbs-cert'] ? await readFile(args.strings['kbs-cert'], 'utf8').catch(() => { throw new UsageError(`--kbs-cert ${args.strings['kbs-cert']}: cannot be read`); }) : undefined;
  const name = resourceName(ctx.to);
  const kid = args.strings['coco-kid'] ?? `kbs:///default/image-kek/${name}`;
  try {
    parseKbsId(kid, '--coco-kid');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const kek = args.strings['coco-kek'] ? await readKek(args.strings['coco-kek']) : new Uint8Array(randomBytes(32));
  const image = imageNameFor(ctx.to);
  let measurements: string[] | undefined;
  try {
    measurements = args.lists.measurement?.length ? checkMeasurements(tee as Tee, args.lists.measurement) : undefined;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const bundle = trusteeBundle({ tee: tee as Tee, kid, kek, name, image, kbsUrl, kbsCert, initDataAlgorithm: alg as InitDataAlgorithm, measurements });
  const cocoStep: Transform = {
    name: 'coco',
    apply(draft) {
      const entrypoint = [...(draft.config.config?.Entrypoint ?? []), ...(draft.config.config?.Cmd ?? [])];
      draft.state.set(RUNTIME, { runtime: 'coco', entrypoint, keyNames: [], details: { tee, kid, runtimeClassName: RUNTIME_CLASS[tee as Tee] } });
      for (const a of bundle.artifacts) draft.addArtifact(a);
      // The protection manifest is pinned by the keys file, as for Gramine conversions (verify --keys).
      const protection = draft.state.get(PROTECTION);
      draft.addArtifact({
        path: 'keys.json',
        secret: true,
        description: 'keys file: the CoCo key-encryption key',
        data: JSON.stringify({ kind: 'enclavify.keys', version: 1, ...(protection ? { manifest: { path: protection.manifestPath, sha256: protection.manifestSha256 } } : {}), keys: [], coco: { kid, kek: Buffer.from(kek).toString('hex'), tee, initData: `${bundle.initData.algorithm}:${bundle.initData.digest}` } }, null, 2) + '\n',
      });
      draft.report.coco = { tee, kid, runtimeClassName: RUNTIME_CLASS[tee as Tee], kbs: kbsUrl, initData: `${bundle.initData.algorithm}:${bundle.initData.digest}`, ...(measurements ? { measurements } : {}), resources: bundle.resources };
      draft.progress(`coco: ${tee} guest; layers encrypted for ${kid}; Trustee bundle -> trustee/`);
    },
  };
  const wt = args.strings['k8s-helm-workload-type'];
  const chart = emitChart({ image, runtime: 'coco', ...(wt ? { workloadType: wt as 'deployment' } : {}), coco: { tee, runtimeClassName: RUNTIME_CLASS[tee as Tee], initData: bundle.initData.annotation }, parentDir: 'chart' });
  if (!kek.length) throw new EnclavifyError('INTERNAL', 'no KEK');
  return { transforms: [cocoStep, chart], plan: { tee: tee as Tee, recipient: { kind: 'attestation-agent', kid, algorithm: 'A256GCM', kek } } };
}
