/**
 * `enclavify sign IMAGE --sign-key FILE --to DST`: signs the Gramine enclave of an already converted
 * image (adds `<base>.manifest.sgx` and `<base>.sig` as a layer). Also the Gramine options of
 * `enclavify convert` (`--runtime-image`, `--sign-key`, `--gramine-loader`, `--insecure-dev-keys`,
 * ...) and their mapping onto `injectRuntime(gramine(...))`, for the convert command to use.
 */
import { compressionFlags, compressionFrom } from './compression-options.js';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
// The Gramine runtime (manifest, signing, SGX measurement) loads only when a command uses it: a
// conversion without it does not pay for it at start-up.
import type { GramineOptions } from '../runtimes/gramine/index.js';
import { openImage, writeImage } from '../store/images.js';
import { parsePlatform } from '../store/oci-layout.js';
import { ACCEPTED_FORMS } from '../store/ref.js';
import { injectRuntime } from '../transforms/inject-runtime.js';
import { pipeline, type Transform } from '../transforms/pipeline.js';
import { RUNTIME } from '../transforms/state.js';
import { UsageError, type OptionSpec, type Parsed } from './args.js';
import { COMMON, EXIT, type Command } from './command.js';
import { copyRegistryFlags, registryOptionsFrom } from './registry-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';
import type { Image } from '../oci/image.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Signing options shared by `sign` and `convert`. */
const signingOptions: Record<string, OptionSpec> = {
  'sign-key': { kind: 'string', arg: 'FILE', help: 'enclave signing key: RSA-3072, exponent 3, PEM (openssl genrsa -3 3072)' },
  'sign-key-passphrase-file': { kind: 'string', arg: 'FILE', help: 'passphrase of an encrypted --sign-key' },
  'sign-date': { kind: 'string', arg: 'YYYY-MM-DD', help: 'SIGSTRUCT date (default: SOURCE_DATE_EPOCH or today), for reproducible signatures' },
};

async function readSigning(args: Parsed): Promise<Pick<GramineOptions, 'signKey' | 'signKeyPassphrase' | 'signDate'>> {
  const key = args.strings['sign-key'];
  const pass = args.strings['sign-key-passphrase-file'];
  const date = args.strings['sign-date'];
  if (date !== undefined && !DATE.test(date)) throw new UsageError(`--sign-date=${date}: expected YYYY-MM-DD`);
  if (pass && !key) throw new UsageError('--sign-key-passphrase-file needs --sign-key');
  return {
    ...(key ? { signKey: await readFile(key) } : {}),
    ...(pass ? { signKeyPassphrase: (await readFile(pass, 'utf8')).replace(/\r?\n$/, '') } : {}),
    ...(date ? { signDate: date } : {}),
  };
}

/** The Gramine runtime options of `enclavify convert`. */
export const gramineConvertOptions: Record<string, OptionSpec> = {
  'runtime-image': { kind: 'string', arg: 'REF|DIR', help: 'gramine: the Gramine 1.9 installation: a runtime image (oci:DIR[:TAG], docker-archive:FILE, docker://REF) or a directory holding one' },
  'gramine-prefix': { kind: 'string', arg: 'DIR', help: 'gramine: put the runtime under DIR in the image (default: Gramine\'s own paths, /usr/bin, /usr/lib/x86_64-linux-gnu/gramine)' },
  'gramine-loader': { kind: 'string', arg: 'sgx|direct', help: 'gramine: loader the Entrypoint starts (default sgx; direct = no SGX, development); ENCLAVIFY_GRAMINE_LOADER overrides it at run time' },
  'insecure-dev-keys': { kind: 'flag', help: 'gramine: put the region keys into the manifest (fs.insecure__keys) so the image runs without attestation. INSECURE, development only' },
  production: { kind: 'flag', help: 'refuse insecure settings: --insecure-dev-keys, debug enclaves, --gramine-loader direct, any insecure__ manifest key, sgx.file_check_policy other than strict, code-loading variables from the host (LD_*, PATH, PYTHONPATH, ...), argv/env files that are not trusted, untrusted_shm mounts' },
  'enclave-size': { kind: 'string', arg: 'SIZE', help: 'gramine: sgx.enclave_size, a power of two (default 1G)' },
  'max-threads': { kind: 'string', arg: 'N', help: 'gramine: sgx.max_threads (default 16)' },
  'enclave-debug': { kind: 'flag', help: 'gramine: sgx.debug = true (the host can read enclave memory; development only)' },
  edmm: { kind: 'flag', help: 'gramine: sgx.edmm_enable = true (SGX2 dynamic memory)' },
  'remote-attestation': { kind: 'string', arg: 'none|dcap', help: 'gramine: sgx.remote_attestation (default dcap when encrypted regions need keys at run time)' },
  isvprodid: { kind: 'string', arg: 'N', help: 'gramine: sgx.isvprodid (default 0)' },
  isvsvn: { kind: 'string', arg: 'N', help: 'gramine: sgx.isvsvn (default 0)' },
  'manifest-fragment': { kind: 'string', arg: 'FILE', help: 'gramine: TOML merged into the generated manifest last' },
  'passthrough-env': { kind: 'list', arg: 'NAME', help: 'gramine: take this variable from the host at run time (not measured; repeatable)' },
  'secret-provisioning': { kind: 'string', arg: 'HOST:PORT[;...]', help: 'gramine: get the region key from a Gramine secret-provisioning server after attestation (needs --secret-provisioning-ca)' },
  'secret-provisioning-ca': { kind: 'string', arg: 'PATH', help: 'gramine: the CA certificate (chain) the enclave checks the secret-provisioning server with: a path in the image, which must be an authenticated file (required by Gramine 1.9 with --secret-provisioning)' },
  'gramine-log-level': { kind: 'string', arg: 'error|warning|debug|trace|all', help: 'gramine: loader.log_level in the manifest (default error; debug and above print file names and syscalls on stderr: development only)' },
  'sigterm-injection': { kind: 'flag', help: 'gramine: sys.enable_sigterm_injection = true: pass the host\'s SIGTERM to the program once (graceful docker stop / pod deletion; without it Gramine ignores SIGTERM and the container is killed after the grace period). The host picks the moment' },
  ...signingOptions,
};

const int = (args: Parsed, name: string, max: number): number | undefined => {
  const v = args.strings[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new UsageError(`--${name}=${v}: expected an integer from 0 to ${max}`);
  return Number(v);
};

/** Whether a --runtime-image value names a directory holding a Gramine installation (not an OCI layout). */
function isRuntimeDir(v: string): boolean {
  if (/^(oci|docker-archive|docker):/.test(v)) return false;
  try {
    return statSync(v).isDirectory() && !existsSync(path.join(v, 'oci-layout'));
  } catch {
    return false;
  }
}

/**
 * `injectRuntime(gramine(...))` from the parsed convert options. Throws `UsageError` for a missing
 * `--runtime-image` and malformed values. `production` refuses insecure combinations.
 */
export async function gramineTransformFromArgs(args: Parsed, runtimeImage?: Image): Promise<Transform> {
  const src = args.strings['runtime-image'];
  if (!src) throw new UsageError('--runtime gramine needs --runtime-image REF|DIR: the Gramine 1.9 installation to add (an image such as oci:gramine:1.9, or a directory)');
  const loader = args.strings['gramine-loader'];
  if (loader !== undefined && loader !== 'sgx' && loader !== 'direct') throw new UsageError(`--gramine-loader=${loader}: expected sgx or direct`);
  const ra = args.strings['remote-attestation'];
  if (ra !== undefined && ra !== 'none' && ra !== 'dcap') throw new UsageError(`--remote-attestation=${ra}: expected none or dcap`);
  if (args.flags['insecure-dev-keys'] && args.flags.production) throw new UsageError('--insecure-dev-keys is refused with --production: it writes the keys into the image');
  const fragment = args.strings['manifest-fragment'];
  const sp = args.strings['secret-provisioning'];
  const ca = args.strings['secret-provisioning-ca'];
  if (sp && !ca) throw new UsageError('--secret-provisioning needs --secret-provisioning-ca PATH: Gramine 1.9\'s secret provisioning stops the enclave at start without a CA chain (a CA file in the image, authenticated)');
  if (ca && !sp) throw new UsageError('--secret-provisioning-ca goes with --secret-provisioning HOST:PORT');
  const logLevel = args.strings['gramine-log-level'];
  const LOG_LEVELS = ['error', 'warning', 'debug', 'trace', 'all'] as const;
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--gramine-log-level=${logLevel}: expected one of ${LOG_LEVELS.join(', ')}`);
  const maxThreads = int(args, 'max-threads', 65535);
  const isvProdId = int(args, 'isvprodid', 65535);
  const isvSvn = int(args, 'isvsvn', 65535);
  const opts: GramineOptions = {
    ...(runtimeImage ? { runtimeImage } : isRuntimeDir(src) ? { runtimeDir: src } : { runtimeImage: /^(oci|docker-archive|docker):/.test(src) ? src : `oci:${src}` }),
    ...(args.strings['gramine-prefix'] ? { prefix: args.strings['gramine-prefix'] } : {}),
    ...(loader ? { loader } : {}),
    ...(args.flags['insecure-dev-keys'] ? { insecureDevKeys: true } : {}),
    ...(args.flags.production ? { production: true } : {}),
    ...(args.strings['enclave-size'] ? { enclaveSize: args.strings['enclave-size'] } : {}),
    ...(maxThreads !== undefined ? { maxThreads } : {}),
    ...(args.flags['enclave-debug'] ? { debug: true } : {}),
    ...(args.flags.edmm ? { edmm: true } : {}),
    ...(ra ? { remoteAttestation: ra } : {}),
    ...(isvProdId !== undefined ? { isvProdId } : {}),
    ...(isvSvn !== undefined ? { isvSvn } : {}),
    ...(fragment ? { manifestFragment: await readFile(fragment, 'utf8') } : {}),
    ...(args.lists['passthrough-env']?.length ? { passthroughEnv: args.lists['passthrough-env'] } : {}),
    ...(sp && ca ? { secretProvisioning: { servers: sp, caChainPath: ca } } : {}),
    ...(args.flags['sigterm-injection'] ? { sigtermInjection: true } : {}),
    ...(logLevel !== undefined ? { logLevel: logLevel as (typeof LOG_LEVELS)[number] } : {}),
    ...(await readSigning(args)),
  };
  const { gramine } = await import('../runtimes/gramine/index.js');
  return injectRuntime(gramine(opts));
}

export const signCommand: Command = {
  name: 'sign',
  summary: 'sign the Gramine enclave of a converted image (MRENCLAVE, SIGSTRUCT) without Gramine\'s tools',
  usage: 'enclavify sign [options] IMAGE --sign-key FILE --to DST',
  description: `Signs the Gramine enclave of IMAGE, an image converted with the Gramine runtime but not
signed yet, and writes the result to DST: one layer is added with <base>.manifest.sgx and <base>.sig
next to the manifest (default /gramine/app/entrypoint.manifest), so that gramine-sgx can start it.
The manifest is measured with the SGX PAL (libpal.so) inside the image, as gramine-sgx-sign would.
An image with a protection manifest gets it updated to record the two files (its SHA-256 changes and
is printed: policies must pin the new one). Prints the new image's digest on stdout (with --json:
digest, MRENCLAVE, MRSIGNER, ISV ids, protection manifest SHA-256).

Instead of a key, --sigstruct FILE and --manifest-sgx FILE add a signature made elsewhere (e.g. by
gramine-sgx-sign in an HSM-backed setup); it is checked against the manifest and PAL in the image.

Before signing, the image is checked against its protection manifest (what 'enclavify verify'
checks without keys: authenticated files' hashes, added, missing or changed entries, the bytes of
encrypted files) and the Gramine manifest's trusted-file hashes against the image and the
protection manifest; any finding refuses the signature (exit 1, findings listed), so a file changed
after conversion is never signed. Give --manifest-sha256 (the protection manifest digest the
conversion printed, the same option and digest as verify's) so that a protection manifest
rewritten along with the files is refused too. --protection-sha256 is its deprecated older name:
still accepted, with a warning.

Insecure manifest settings (debug, allow_all_but_log, insecure__ keys, host-supplied code or trust
anchors, gramine-direct) are printed as warnings on stderr (also with --quiet) and listed under
"warnings" with --json; --production refuses them.

The key must be RSA-3072 with public exponent 3 (openssl genrsa -3 -out key.pem 3072).

References:
  ${ACCEPTED_FORMS}`,
  options: {
    to: { kind: 'string', arg: 'DST', help: 'where to write the signed image (oci:DIR[:TAG])' },
    ...signingOptions,
    sigstruct: { kind: 'string', arg: 'FILE', help: 'add this externally made .sig instead of signing (needs --manifest-sgx)' },
    'manifest-sgx': { kind: 'string', arg: 'FILE', help: 'the .manifest.sgx the external --sigstruct was made for' },
    manifest: { kind: 'string', arg: 'PATH', help: 'the .manifest in the image (default: from the image labels, else /gramine/app/entrypoint.manifest)' },
    pal: { kind: 'string', arg: 'PATH', help: 'the SGX libpal.so in the image (default: from the image labels, else Gramine\'s Debian path)' },
    'manifest-sha256': { kind: 'string', arg: 'HEX', help: 'the protection manifest SHA-256 the conversion printed (as for verify): the image is checked against that manifest (not only the one it carries); a different one refuses the signature' },
    'protection-sha256': { kind: 'string', arg: 'HEX', help: 'deprecated: the older name of --manifest-sha256 (same option; accepted with a warning)' },
    production: { kind: 'flag', help: 'refuse to sign an insecure manifest (debug, allow_all_but_log, insecure__ keys, host-supplied code, gramine-direct) instead of warning' },
    platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index' },
    ...copyRegistryFlags,
    ...sourceFlags,
    ...compressionFlags,
    ...COMMON,
  },
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('sign needs one IMAGE');
    const to = args.strings.to;
    if (!to) throw new UsageError('sign needs --to DST');
    const sig = args.strings.sigstruct, msgx = args.strings['manifest-sgx'];
    if ((sig === undefined) !== (msgx === undefined)) throw new UsageError('--sigstruct and --manifest-sgx go together');
    if (sig && args.strings['sign-key']) throw new UsageError('give --sign-key, or --sigstruct with --manifest-sgx, not both');
    if (!sig && !args.strings['sign-key']) throw new UsageError('sign needs --sign-key FILE (or --sigstruct FILE --manifest-sgx FILE)');
    const pins = [args.strings['manifest-sha256'], args.strings['protection-sha256']].filter((p): p is string => p !== undefined);
    if (pins.length === 2 && pins[0]!.toLowerCase().replace(/^sha256:/, '') !== pins[1]!.toLowerCase().replace(/^sha256:/, '')) {
      throw new UsageError('--manifest-sha256 and --protection-sha256 are one option (the protection manifest digest) given two different values');
    }
    const manifestPin = pins[0];
    if (manifestPin !== undefined && !/^(sha256:)?[0-9a-fA-F]{64}$/.test(manifestPin)) throw new UsageError(`--${args.strings['manifest-sha256'] !== undefined ? 'manifest' : 'protection'}-sha256 needs 64 hex digits`);
    if (args.strings['protection-sha256'] !== undefined) io.err('enclavify sign: warning: --protection-sha256 is deprecated: use --manifest-sha256 (the same digest, the name verify uses)');
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : undefined;
    const source = await openImage(args.positionals[0], { platform, signal: io.signal, registry: registryOptionsFrom(args, 'src'), onProgress: io.progress, ...sourceOptionsFrom(args) });
    const { signGramineImage } = await import('../runtimes/gramine/index.js');
    const step = signGramineImage({
      ...(sig ? { external: { sigstruct: new Uint8Array(await readFile(sig)), manifestSgx: new Uint8Array(await readFile(msgx!)) } } : await readSigning(args)),
      ...(args.strings.manifest ? { manifestPath: args.strings.manifest } : {}),
      ...(args.strings.pal ? { palPath: args.strings.pal } : {}),
      ...(args.flags.production ? { production: true } : {}),
      ...(manifestPin ? { expectedProtectionSha256: manifestPin } : {}),
    });
    const result = await pipeline(source, [step], { onProgress: io.progress, signal: io.signal, ...compressionFrom(args) });
    try {
      const written = await writeImage(result.image, to, { onProgress: io.progress, signal: io.signal, registry: registryOptionsFrom(args, 'dest') });
      const info = result.state.get(RUNTIME)!;
      const report = result.report.signGramine as { protectionManifestSha256?: string; warnings?: string[] } | undefined;
      const pm = report?.protectionManifestSha256;
      const warnings = report?.warnings ?? [];
      const facts = {
        digest: written.digest, destination: written.reference, manifest: info.manifestPath, mrenclave: info.mrenclave?.[0], mrsigner: info.mrsigner,
        isvProdId: info.isvProdId, isvSvn: info.isvSvn, debug: info.debug, ...(pm ? { protectionManifestSha256: pm } : {}), warnings,
        ...(written.blobs ? { blobs: written.blobs } : {}),
      };
      if (args.flags.json) io.out(JSON.stringify(facts));
      else {
        io.out(written.digest);
        if (!args.flags.quiet) io.err(`MRENCLAVE: ${facts.mrenclave}\nMRSIGNER:  ${facts.mrsigner}\nISVPRODID: ${facts.isvProdId}  ISVSVN: ${facts.isvSvn}  DEBUG: ${facts.debug}${pm ? `\nProtection manifest updated (records the signature files): sha256 ${pm}` : ''}\nImage: ${written.reference} ${written.digest}`);
      }
      return EXIT.ok;
    } finally {
      await result.dispose();
    }
  },
};
