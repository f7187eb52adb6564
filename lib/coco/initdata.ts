/**
 * CoCo init data (confidentialcontainers.org docs/features/initdata.md): a TOML document with
 * `version`, `algorithm` and a `[data]` table of files for the guest (`aa.toml`, `cdh.toml`,
 * optionally the Kata agent's `policy.rego`). Its digest is bound into the TEE evidence (TDX
 * MRCONFIGID, 48 bytes; SNP HOSTDATA, 32 bytes), and the pod carries it gzipped and base64-encoded
 * in the annotation `io.katacontainers.config.hypervisor.cc_init_data`.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { EnclavifyError } from '../oci/errors.js';

/** The pod annotation that carries init data. */
export const INITDATA_ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data';

/** Digest algorithms of init data. */
export type InitDataAlgorithm = 'sha256' | 'sha384' | 'sha512';

/** Options of {@link initData}. */
export interface InitDataOptions {
  /** The KBS address the guest's attestation agent and confidential-data hub talk to. */
  kbsUrl: string;
  /** The KBS's certificate (PEM), when it serves HTTPS with a private CA. */
  kbsCert?: string | undefined;
  /** Where the guest fetches the image security policy (a `kbs:///…` resource). */
  imageSecurityPolicyUri: string;
  /** Digest algorithm (default sha384, which fills TDX's 48-byte MRCONFIGID). */
  algorithm?: InitDataAlgorithm | undefined;
  /** The Kata agent policy (`package agent_policy`), if any. */
  agentPolicy?: string | undefined;
}

/** Init data, its digest and the annotation value. */
export interface InitData {
  /** The TOML document, exactly as hashed. */
  toml: string;
  algorithm: InitDataAlgorithm;
  /** Hex digest of `toml` with `algorithm`. */
  digest: string;
  /** gzip + base64 of `toml`: the value of {@link INITDATA_ANNOTATION}. */
  annotation: string;
}

/** A TOML string: a multi-line literal string when it can be one (readable PEM), else a basic string. */
function tomlString(s: string, multiline: boolean): string {
  if (multiline && !s.includes("'''") && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s)) return `'''\n${s}'''`;
  return JSON.stringify(s); // JSON escapes are TOML basic-string escapes for this character set
}

function checkUrl(url: string, what: string): void {
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(url)) throw new EnclavifyError('BAD_OPTIONS', `${what}: ${JSON.stringify(url)} is not an http(s) URL`);
}

/** Writes init data naming the KBS (with its certificate) and the image security policy. */
export function initData(options: InitDataOptions): InitData {
  checkUrl(options.kbsUrl, '--kbs');
  if (!/^kbs:\/\/[^/]*\/[^/]+\/[^/]+\/[^/]+$/.test(options.imageSecurityPolicyUri)) throw new EnclavifyError('BAD_OPTIONS', `image security policy URI ${options.imageSecurityPolicyUri} is not kbs:///REPO/TYPE/TAG`);
  const cert = options.kbsCert?.trim();
  if (cert !== undefined && !/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----$/.test(cert)) throw new EnclavifyError('BAD_OPTIONS', '--kbs-cert: not a PEM certificate');
  const algorithm = options.algorithm ?? 'sha384';
  const certLine = (key: string) => (cert ? `${key} = ${tomlString(cert + '\n', true)}\n` : '');
  const aa = `[token_configs]\n[token_configs.coco_as]\nurl = ${tomlString(options.kbsUrl, false)}\n\n[token_configs.kbs]\nurl = ${tomlString(options.kbsUrl, false)}\n${certLine('cert')}`;
  const cdh = `socket = 'unix:///run/confidential-containers/cdh.sock'\ncredentials = []\n\n[kbc]\nname = 'cc_kbc'\nurl = ${tomlString(options.kbsUrl, false)}\n${certLine('kbs_cert')}\n[image]\nimage_security_policy_uri = ${tomlString(options.imageSecurityPolicyUri, false)}\n`;
  let toml = `version = "0.1.0"\nalgorithm = "${algorithm}"\n\n[data]\n"aa.toml" = ${tomlString(aa, true)}\n\n"cdh.toml" = ${tomlString(cdh, true)}\n`;
  if (options.agentPolicy !== undefined) toml += `\n"policy.rego" = ${tomlString(options.agentPolicy.endsWith('\n') ? options.agentPolicy : options.agentPolicy + '\n', true)}\n`;
  return {
    toml,
    algorithm,
    digest: createHash(algorithm).update(toml).digest('hex'),
    annotation: gzipSync(Buffer.from(toml), { level: 9 }).toString('base64'),
  };
}
