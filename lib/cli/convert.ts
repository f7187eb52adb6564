/**
 * `enclavify convert --from SRC --to DST ...`: the whole conversion as one command. Its options
 * come from a list of stages (file protection now; runtime, policy and chart stages append
 * themselves to {@link convertStages}); each stage turns its options into transforms, in order,
 * and may add a section to the text report.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { access, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Image } from '../oci/image.js';
import { openImage, writeImage } from '../store/images.js';
import { parsePlatform } from '../store/oci-layout.js';
import { jsonPieces } from '../oci/json-pieces.js';
import { writeFileAtomic } from '../store/atomic.js';
import { ACCEPTED_FORMS, formatRef, parseRef, type ImageRef } from '../store/ref.js';
import { mkdirNoFollow, refuseSymlink } from '../store/no-follow.js';
import { isTmpFileName, sweepDir, tmpOwnerSocket } from '../oci/owner.js';
import type { PipelineResult, Transform } from '../transforms/pipeline.js';
import { pipeline } from '../transforms/pipeline.js';
import { CLASSIFY_REPORT, fileClassify, type ClassificationReport } from '../transforms/file-classify.js';
import { ENCRYPT_REPORT, encryptFS, type EncryptReport } from '../transforms/encrypt-fs.js';
import { formatClassificationReport, formatEncryptReport } from './format.js';
import { parseKeysFile, readKeysFile, type KeysConversion } from '../protect/keys.js';
import { readFile } from 'node:fs/promises';
import { UsageError, type OptionSpec, type Parsed } from './args.js';
import { given, runtimePolicyChartTransforms, sconifyOptions } from './sconify-options.js';
import { gramineConvertOptions, gramineTransformFromArgs } from './sign.js';
import { CHART } from '../transforms/emit-chart.js';
import { POLICY } from '../transforms/emit-policy.js';
import { RUNTIME } from '../transforms/state.js';
import { COMMON, EXIT, outJson, type Command, type Io } from './command.js';
import { decryptedFrom, decryptionFlags, encryptionFlags, encryptionFrom } from './ocicrypt-options.js';
import { cocoOptions, cocoPlatform, cocoTransforms, type CocoPlan } from './coco-options.js';
import { copyRegistryFlags, registryOptionsForExtra, registryOptionsFrom } from './registry-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';
import { maxEntriesFlag, maxEntriesFrom } from './limit-options.js';
import { compressionFlags, compressionFrom } from './compression-options.js';
import { cacheFlags, cacheFrom } from './cache-options.js';
import { EnclavifyError } from '../oci/errors.js';

/** What a stage can use besides its options. */
export interface ConvertContext {
  io: Io;
  /** The source image. */
  source: Image;
  /**
   * Where artifacts go (`--output-dir`; required whenever artifacts are written, never the current
   * directory by default). A dry run without `--output-dir` checks paths against `.` and writes nothing.
   */
  outputDir: string;
  /** The destination reference (`--to`). */
  to: string;
  /** Opens another image the conversion reads (`--runtime-image`, `--binary-image` as docker://) with the command's registry options. */
  openExtra?: ((ref: string) => Promise<Image>) | undefined;
  /** Set by the coco stage: how the written image's layers are encrypted. */
  cocoPlan?: CocoPlan | undefined;
}

/** A group of convert options and the transforms they produce. */
export interface ConvertStage {
  name: string;
  /** Options this stage adds to `enclavify convert`. */
  options: Record<string, OptionSpec>;
  /** The transforms for these options, in pipeline order; [] when the stage has nothing to do. */
  transforms(args: Parsed, ctx: ConvertContext): Transform[] | Promise<Transform[]>;
  /** A text section for the report on stderr, from the pipeline's result. */
  report?(result: PipelineResult): string | undefined;
}

/** Path of the keys artifact the protection stage produces. */
const KEYS_ARTIFACT = 'keys.json';

/** File protection: fileClassify + encryptFS. */
export const protectStage: ConvertStage = {
  name: 'protect',
  options: {
    dir: { kind: 'list', arg: 'DIR', help: 'encrypt the files under DIR (repeatable; globs allowed); one key per directory' },
    plain: { kind: 'list', arg: 'DIR', help: 'leave the files under DIR unprotected' },
    'plain-file': { kind: 'list', arg: 'FILE', help: 'leave FILE unprotected' },
    'host-path': { kind: 'list', arg: 'PATH', help: 'unprotected in the image, mounted from the host at run time (e.g. /etc/resolv.conf)' },
    authenticated: { kind: 'list', arg: 'PATH', help: 'authenticate the files under PATH (overrides a default or a wider rule)' },
    'no-default-plain': { kind: 'flag', help: 'do not leave /proc /sys /dev /run /tmp /var /boot and /etc/{hosts,resolv.conf,hostname,mtab} unprotected' },
    'single-key': { kind: 'string', arg: 'NAME', help: 'one key named NAME for all encrypted directories' },
    'reuse-keys': { kind: 'string', arg: 'FILE', help: 'take the keys from a keys file of an earlier conversion' },
    'allow-keys-symlink': { kind: 'flag', help: 'read --reuse-keys through a symlink even where other users could redirect the link' },
    'master-key-file': { kind: 'string', arg: 'FILE', help: 'reproducible output: derive keys and nonces from the master key in FILE (32+ hex digits)' },
    'scrub-history': { kind: 'flag', help: 'replace the text of history entries that name an encrypted directory (build commands can hold its plaintext)' },
  },
  async transforms(args, ctx) {
    const reuse = args.strings['reuse-keys'];
    let keys: Record<string, Uint8Array> | undefined;
    if (reuse) {
      const set = await readKeysFile(reuse, { allowSymlink: args.flags['allow-keys-symlink'] === true });
      for (const w of set.warnings ?? []) ctx.io.err(`enclavify convert: WARNING: ${w}`);
      keys = Object.fromEntries(set.keys);
    }
    let deterministic: { masterKey: Uint8Array } | undefined;
    const mk = args.strings['master-key-file'];
    if (mk) {
      const text = (await readFile(mk, 'utf8')).trim();
      if (!/^([0-9a-fA-F]{2}){16,}$/.test(text)) throw new UsageError(`--master-key-file ${mk}: the file must hold at least 32 hex digits (16 bytes)`);
      deterministic = { masterKey: new Uint8Array(Buffer.from(text, 'hex')) };
    }
    return [
      fileClassify({
        dirs: args.lists.dir,
        plain: args.lists.plain,
        plainFiles: args.lists['plain-file'],
        hostPaths: args.lists['host-path'],
        authenticated: args.lists.authenticated,
        ...(args.flags['no-default-plain'] ? { defaults: false as const } : {}),
        ...(args.strings['single-key'] ? { singleKey: args.strings['single-key'] } : {}),
      }),
      encryptFS({ keysArtifact: KEYS_ARTIFACT, ...(keys ? { keys } : {}), ...(deterministic ? { deterministic } : {}), ...(args.flags['scrub-history'] ? { scrubHistory: true } : {}) }),
    ];
  },
  report(result) {
    const c = result.report[CLASSIFY_REPORT] as ClassificationReport | undefined;
    const e = result.report[ENCRYPT_REPORT] as EncryptReport | undefined;
    return [c && formatClassificationReport(c), e && formatEncryptReport(e)].filter(Boolean).join('\n') || undefined;
  },
};

/** Options that only make sense with a runtime (`--runtime scone` or `--runtime-image` for Gramine). */
const runtimeOptions: Record<string, OptionSpec> = { ...sconifyOptions, ...gramineConvertOptions };

/**
 * Runtime, policy and chart: `injectRuntime(gramine(...))` when `--runtime-image` is given (or
 * `--runtime gramine`), `injectRuntime(scone(...))` with `--runtime scone`, then emitPolicy and,
 * when a `--k8s-helm-*` option asks, emitChart. Without a runtime the conversion protects files
 * only, and runtime options are refused rather than ignored.
 */
export const runtimeStage: ConvertStage = {
  name: 'runtime',
  options: runtimeOptions,
  async transforms(args, ctx) {
    const runtime = args.strings.runtime ?? (args.strings['runtime-image'] !== undefined ? 'gramine' : undefined);
    if (runtime === undefined) {
      const stray = Object.keys(runtimeOptions).filter((o) => o !== 'dry-run' && given(args, o));
      if (stray.length) throw new UsageError(`${stray.map((o) => `--${o}`).join(', ')}: need a runtime: --runtime-image REF|DIR (Gramine) or --runtime scone`);
      return [];
    }
    if (runtime === 'coco') {
      // The coco stage does the work; SGX runtime options mean nothing in a CoCo guest.
      const sgxOnly = Object.keys(runtimeOptions).filter((o) => !['dry-run', 'runtime', 'k8s-helm-workload-type'].includes(o) && given(args, o));
      if (sgxOnly.length) throw new UsageError(`${sgxOnly.map((o) => `--${o}`).join(', ')}: not with --runtime coco (no SGX runtime goes into a CoCo image)`);
      return [];
    }
    if (runtime !== 'gramine' && runtime !== 'scone') throw new UsageError(`--runtime=${runtime}: expected gramine, scone or coco`);
    if (runtime === 'scone') {
      const gramineOnly = Object.keys(gramineConvertOptions).filter((o) => given(args, o));
      if (gramineOnly.length) throw new UsageError(`${gramineOnly.map((o) => `--${o}`).join(', ')}: only with the Gramine runtime`);
    }
    const isRegistry = (v: string | undefined): v is string => !!v && v.startsWith('docker://');
    const rtImage = args.strings['runtime-image'];
    const binImage = args.strings['binary-image'];
    const out: Transform[] = runtime === 'gramine'
      ? [await gramineTransformFromArgs(args, isRegistry(rtImage) && ctx.openExtra ? await ctx.openExtra(rtImage) : undefined)]
      : [];
    const binaryImage = runtime === 'scone' && isRegistry(binImage) && ctx.openExtra ? await ctx.openExtra(binImage) : undefined;
    out.push(...runtimePolicyChartTransforms(args, { to: ctx.to, outputDir: ctx.outputDir, ...(binaryImage ? { binaryImage } : {}) }));
    return out;
  },
  report(result) {
    const lines: string[] = [];
    const g = result.report['injectRuntime(gramine)'] as { manifest?: string; signed?: boolean; mrenclave?: string } | undefined;
    const rt = result.state.get(RUNTIME);
    if (rt) {
      lines.push(`Runtime: ${rt.runtime}; Entrypoint ${JSON.stringify(rt.entrypoint)}${rt.manifestPath ? `; manifest ${rt.manifestPath}` : ''}`);
      if (rt.mrenclave?.length) lines.push(`  MRENCLAVE ${rt.mrenclave.join(', ')}${rt.mrsigner ? `\n  MRSIGNER  ${rt.mrsigner}` : ''}`);
      else if (rt.runtime === 'gramine') lines.push('  not signed: gramine-sgx needs a signature (--sign-key FILE, or enclavify sign); gramine-direct runs it as is');
    }
    void g;
    const p = result.state.get(POLICY);
    if (p) lines.push(p.path ? `Policy: ${p.path}${p.sessionId ? ` (session ${p.sessionId})` : ''}` : `Policy: not written: ${p.skipped}`);
    const c = result.state.get(CHART);
    if (c) lines.push(`Chart: ${c.dir}${c.manifestsPath ? ` (manifests ${c.manifestsPath})` : ''}`);
    return lines.join('\n') || undefined;
  },
};

/** The stages of `enclavify convert`, in pipeline order. */
/** `--runtime coco`: the Trustee bundle, the keys file, the chart; the writer encrypts the layers. */
export const cocoStage: ConvertStage = {
  name: 'coco',
  options: cocoOptions,
  async transforms(args, ctx) {
    const r = await cocoTransforms(args, ctx);
    if (!r) return [];
    ctx.cocoPlan = r.plan;
    return r.transforms;
  },
  report(result) {
    const c = result.report.coco as { tee: string; kid: string; runtimeClassName: string; initData: string } | undefined;
    return c && `CoCo: ${c.tee} (runtime class ${c.runtimeClassName}); every layer encrypted for ${c.kid}; init data ${c.initData}; load trustee/ into the KBS (trustee/set-resources.sh)`;
  },
};

export const convertStages: ConvertStage[] = [protectStage, runtimeStage, cocoStage];

/** Options of `enclavify convert` that are not a stage's. */
const baseOptions: Record<string, OptionSpec> = {
  from: { kind: 'string', arg: 'SRC', help: 'the native image (reference)' },
  to: { kind: 'string', arg: 'DST', help: 'where to write the converted image (oci:DIR[:TAG], docker-archive:FILE, docker://REF)' },
  platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index' },
  'keys-out': { kind: 'string', arg: 'FILE', help: 'write the keys here (mode 0600; default OUTPUT-DIR/keys.json)' },
  'output-dir': { kind: 'string', arg: 'DIR', help: 'where the keys, report.json, policy, chart and other artifacts go; required whenever any is written (--keys-out alone suffices when the keys are all)' },
  'push-image': { kind: 'flag', help: 'sconify_image compatibility: the result is pushed whenever --to is docker://REF; this flag checks that it is' },
};

/** Every option of `enclavify convert`: base, then each stage's, then the common ones. */
export function convertOptions(stages: readonly ConvertStage[] = convertStages): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = { ...baseOptions };
  for (const s of stages) {
    for (const [k, v] of Object.entries(s.options)) {
      if (k in out) throw new EnclavifyError('INTERNAL', `convert: option --${k} of stage ${s.name} is defined twice`);
      out[k] = v;
    }
  }
  for (const [k, v] of Object.entries({ ...copyRegistryFlags, ...decryptionFlags, ...encryptionFlags, ...sourceFlags, ...maxEntriesFlag, ...compressionFlags, ...cacheFlags })) {
    if (k in out) throw new EnclavifyError('INTERNAL', `convert: option --${k} is defined twice`);
    out[k] = v;
  }
  return { ...out, ...COMMON };
}

/** The transforms of a conversion, stage by stage. */
export async function buildTransforms(args: Parsed, ctx: ConvertContext, stages: readonly ConvertStage[] = convertStages): Promise<Transform[]> {
  const out: Transform[] = [];
  for (const s of stages) out.push(...(await s.transforms(args, ctx)));
  return out;
}

const exists = (p: string) => access(p).then(() => true, () => false);

/** What a conversion wrote so far, to be undone if it fails before the image is committed. */
interface Written {
  files: string[];
  /** Directories this run created, outermost first. */
  dirs: string[];
}

/** Makes `dir`, below `root` without following symlinks; records what it created. */
async function makeDir(root: string, dir: string, w: Written): Promise<void> {
  const rel = path.relative(root, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new EnclavifyError('BAD_ARTIFACT', `${dir} would be written outside ${root}`);
  const before = new Set(w.dirs);
  const first = await mkdirNoFollow(root, rel, 'convert output');
  if (first) {
    // Every level from the first created one down is ours.
    const top = path.resolve(first);
    for (let d = path.resolve(dir); d === top || d.startsWith(top + path.sep); d = path.dirname(d)) {
      if (!before.has(d)) w.dirs.push(d);
    }
  }
}

/** Removes what a failed conversion wrote: its files, then the directories it created if empty. */
async function undo(w: Written): Promise<void> {
  await Promise.all(w.files.map((f) => rm(f, { force: true }).catch(() => undefined)));
  for (const d of [...w.dirs].sort((a, b) => b.length - a.length)) await rmdir(d).catch(() => undefined);
}

/** Writes the pipeline's artifacts other than the keys under `outputDir` (secrets with mode 0600); no symlink inside it is followed. */
async function writeArtifacts(result: PipelineResult, outputDir: string, w: Written): Promise<void> {
  for (const a of result.artifacts.values()) {
    if (a.path === KEYS_ARTIFACT) continue;
    const file = path.join(outputDir, a.path);
    if (path.relative(outputDir, file).startsWith('..')) throw new EnclavifyError('BAD_ARTIFACT', `artifact ${a.path} would be written outside ${outputDir}`);
    await makeDir(outputDir, path.dirname(file), w);
    await writeFileAtomic(file, a.data, { mode: a.secret ? 0o600 : 0o644 });
    w.files.push(file); // only once written: a refused path (a symlink) is not ours to remove
  }
}

/** `p` resolved through symlinks as far as it exists (two spellings of one layout compare equal). */
function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Whether writing `dst` would move the tag `src` names (the same layout and tag, the same registry tag). */
function sameTag(src: ImageRef, dst: ImageRef): boolean {
  if (src.transport === 'oci' && dst.transport === 'oci') return !src.digest && real(src.dir) === real(dst.dir) && src.tag === dst.tag;
  if (src.transport === 'docker' && dst.transport === 'docker') return formatRef(src) === formatRef(dst);
  return false;
}

/** Options that do not change what a conversion produces (left out of its fingerprint). */
const COSMETIC = new Set(['json', 'quiet', 'verbose', 'help', 'progress', 'no-progress']);

/** SHA-256 of what determines a conversion: the source image's digest and the options. */
function invocationOf(args: Parsed, sourceDigest: string): string {
  const pick = <T>(o: Record<string, T>) => Object.fromEntries(Object.entries(o).filter(([k]) => !COSMETIC.has(k)).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash('sha256').update(JSON.stringify({ sourceDigest, strings: pick(args.strings), lists: pick(args.lists), flags: pick(args.flags) })).digest('hex');
}

/** The conversion a keys file records, or undefined (unreadable, not a keys file, none recorded). */
async function recordedConversion(file: string): Promise<KeysConversion | undefined> {
  try {
    return parseKeysFile(await readFile(file, 'utf8'), file).conversion;
  } catch {
    return undefined;
  }
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a native image into a confidential one (encrypted and authenticated files, ...)',
  usage: 'enclavify convert --from SRC --to DST [--dir DIR ...] [options]',
  description: `Converts the image SRC into DST. Files under each --dir are encrypted (Gramine encrypted
files, one key per directory); every other regular file is authenticated (pinned by SHA-256) except
the unprotected defaults and --plain/--plain-file/--host-path paths; the entrypoint, its ELF
interpreter and startup libraries stay authenticated (a --dir covering them is refused). Only the
layers holding encrypted files are rewritten; a protection manifest is added at
/.enclavify/protection.json. Keys are written to --keys-out (mode 0600; default
OUTPUT-DIR/keys.json), never into the image (unless --insecure-dev-keys, for development only,
says otherwise). Keys, policy, chart and report.json go under --output-dir DIR, which is required
whenever any of them is written (--keys-out alone suffices when the keys are all): nothing is
written to the current directory unasked.

With a runtime (--runtime-image for Gramine, or --runtime scone) the image also gets the runtime
and its new Entrypoint, and a policy is written (policy/session.yaml for SCONE, policy/attestation.json
for Gramine) when the enclave's identity is known (--sign-key, --mrenclave, --sigstruct); a Helm chart
when a --k8s-helm-* option asks for one. docs/cli.md maps every sconify_image option.

Rerunning the identical command after a crash or kill needs no cleanup: keys are committed after
the image (KEYS.pending, then the tag, then a rename; docs/keys.md), so an interrupted conversion
is completed or replaced and a completed one is left alone (exit 0). --to must not name the
source's own tag (exit 2).

Prints the converted image's digest on stdout, then (SCONE) the session id NAMESPACE/SESSION; with
--json, one JSON object. The report goes to stderr. --dry-run computes everything and writes nothing.

References:
  ${ACCEPTED_FORMS}`,
  options: convertOptions(),
  async run(args, io) {
    if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])} (use --from SRC --to DST)`);
    const from = args.strings.from, to = args.strings.to;
    if (!from || !to) throw new UsageError('convert needs --from SRC and --to DST');
    const dryRun = args.flags['dry-run'] === true;
    const wantsKeys = (args.lists.dir?.length ?? 0) > 0 || args.strings.runtime === 'coco';
    const givenOutputDir = args.strings['output-dir'];
    const givenKeysOut = args.strings['keys-out'];
    const outputDir = givenOutputDir ?? '.';
    const keysOut = givenKeysOut ?? path.join(outputDir, KEYS_ARTIFACT);
    const pending = `${keysOut}.pending`;
    // Keys and artifacts never go into an OCI layout: blobs there are shipped to registries.
    const dst = parseRef(to);
    if (dst.transport === 'oci') {
      const layout = path.resolve(dst.dir);
      for (const [what, p] of [['--output-dir', givenOutputDir], ['--keys-out', givenKeysOut === undefined ? undefined : path.dirname(givenKeysOut)]] as const) {
        if (p === undefined) continue;
        const rel = path.relative(layout, path.resolve(p));
        if (!rel.startsWith('..') && !path.isAbsolute(rel)) throw new UsageError(`${what} ${p} is inside the destination layout ${dst.dir}: keys and artifacts must not sit next to the image's blobs`);
      }
    }
    const src = parseRef(from);
    if (sameTag(src, dst)) {
      throw new UsageError(`--to ${to} names the source image's own tag: the conversion would move it and leave the plaintext original untagged; write to another tag (e.g. ${to}-confidential) or another layout`);
    }
    if (src.transport === 'oci' && dst.transport === 'oci' && path.resolve(src.dir) === path.resolve(dst.dir) && (args.lists.dir?.length ?? 0) > 0) {
      io.err(`enclavify convert: WARNING: ${dst.dir} also holds the source image, whose blobs contain the plaintext of the directories being encrypted; write the converted image to a layout of its own before shipping it`);
    }
    if (args.flags['push-image'] && dst.transport !== 'docker') throw new UsageError(`--push-image: the destination ${to} is not a registry; give --to docker://HOST/REPO:TAG`);
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : cocoPlatform(args);
    const started = Date.now();
    const source = await decryptedFrom(await openImage(from, { platform, signal: io.signal, registry: registryOptionsFrom(args, 'src'), onProgress: io.progress, ...sourceOptionsFrom(args) }), args);
    const invocation = invocationOf(args, await source.digest());
    const openExtra = (ref: string) => openImage(ref, { platform: { os: 'linux', architecture: 'amd64' }, signal: io.signal, registry: registryOptionsForExtra(args, ref, from), onProgress: io.progress, ...sourceOptionsFrom(args) });
    const ctx: ConvertContext = { io, source, outputDir, to, openExtra };
    const transforms = await buildTransforms(args, ctx);
    // Keys and artifacts go where the command line says, never to the current directory unasked
    // (checked once the stages have refused what they refuse, before anything is read or written).
    if (!dryRun && givenOutputDir === undefined) {
      const runtime = args.strings.runtime ?? (args.strings['runtime-image'] !== undefined ? 'gramine' : undefined);
      if (runtime !== undefined) throw new UsageError(`convert with the ${runtime} runtime writes its policy, chart and report into --output-dir DIR: give --output-dir (nothing is written to the current directory unasked)`);
      if (wantsKeys && givenKeysOut === undefined) throw new UsageError(`convert ${args.strings.runtime === 'coco' ? '--runtime coco' : '--dir'} writes a keys file: give --output-dir DIR (keys go to DIR/keys.json) or --keys-out FILE (nothing is written to the current directory unasked)`);
    }
    if (wantsKeys && !dryRun) {
      await refuseSymlink(keysOut, '--keys-out');
      await refuseSymlink(pending, '--keys-out');
      // Commit protocol (docs/keys.md): keys are written to KEYS.pending, recording the image
      // digest; the image is written and tagged; KEYS.pending is renamed to KEYS. What a crash
      // left is recognised by content here.
      const tagged = async () => {
        try {
          return await (await openImage(to, { signal: io.signal, registry: registryOptionsFrom(args, 'dest') })).digest();
        } catch {
          return undefined;
        }
      };
      let current: string | undefined | null = null; // null: not asked yet
      const currentDigest = async () => (current === null ? (current = await tagged()) : current);
      const p = (await exists(pending)) ? await recordedConversion(pending) : undefined;
      if (await exists(pending)) {
        if (p && p.image === (await currentDigest())) {
          // The image these keys belong to was tagged; only the rename was missing.
          await rename(pending, keysOut);
          io.err(`enclavify convert: completed an interrupted conversion: ${pending} -> ${keysOut} (keys of ${to} ${p.image})`);
        } else {
          // Its image never got the tag: an interrupted conversion, whose keys nothing uses.
          await rm(pending, { force: true });
          io.err(`enclavify convert: removed ${pending}, left by an interrupted conversion whose image was never tagged`);
        }
      }
      if (await exists(keysOut)) {
        const c = await recordedConversion(keysOut);
        const digest = c && c.invocation === invocation && c.reference === to ? await currentDigest() : undefined;
        if (c && digest === c.image) {
          // The identical conversion already completed: its keys belong to the tagged image.
          if (args.flags.json) io.out(JSON.stringify({ digest, destination: to, keysFile: keysOut, alreadyConverted: true }));
          else io.out(digest);
          if (!args.flags.quiet) io.err(`enclavify convert: ${to} (${digest}) is already the result of this conversion, with keys ${keysOut}; nothing to do (remove ${keysOut} to convert again)`);
          return EXIT.ok;
        }
        // Never overwrite keys by default: the image they belong to would become unreadable.
        if (givenKeysOut === undefined) {
          throw new UsageError(`${keysOut} already exists (keys of an earlier conversion?); choose another place with --keys-out FILE or --output-dir DIR, or pass --keys-out ${keysOut} to replace it`);
        }
      }
    }
    // After every check: a generated KEK (--kek-out) is written here.
    let encryption = await encryptionFrom(args);
    if (ctx.cocoPlan) {
      if (args.lists['encrypt-layer']?.length) throw new UsageError('--encrypt-layer: with --runtime coco every layer is encrypted');
      encryption = { encryption: { recipients: [...(encryption?.encryption.recipients ?? []), ctx.cocoPlan.recipient] }, ...(encryption?.kekFile ? { kekFile: encryption.kekFile } : {}) };
    }
    const cache = await cacheFrom(args, process.env, (message) => io.progress({ phase: 'scan', level: 'warning', message }), dryRun);
    const result = await pipeline(source, transforms, { onProgress: io.progress, signal: io.signal, ...maxEntriesFrom(args), ...compressionFrom(args), ...cache });
    try {
      const policy = result.state.get(POLICY);
      const runtime = result.state.get(RUNTIME);
      const summary = {
        runtime: runtime?.runtime ?? null,
        mrenclave: runtime?.mrenclave ?? policy?.mrenclaves ?? [],
        mrsigner: runtime?.mrsigner ?? null,
        sessionId: policy?.sessionId ?? null,
        policy: policy?.path ?? null,
        chart: (result.state.get(CHART))?.dir ?? null,
      };
      const sections = () => convertStages.map((s) => s.report?.(result)).filter((s): s is string => !!s);
      if (dryRun) {
        // Everything was computed (classification, encryption, manifest, policy); nothing is written.
        const digest = await result.image.digest();
        if (args.flags.json) await outJson(io, { dryRun: true, digest, destination: to, ...summary, artifacts: [...result.artifacts.keys()], report: result.report });
        else io.out(digest);
        if (!args.flags.quiet) io.err([...sections(), `Dry run: would write ${to} (${digest}) and ${[...result.artifacts.keys()].join(', ') || 'no artifacts'}; wrote nothing`].join('\n'));
        return EXIT.ok;
      }
      // The early check covers what the options ask for; this one any artifact a stage produced.
      const others = [...result.artifacts.keys()].filter((k) => k !== KEYS_ARTIFACT);
      if (givenOutputDir === undefined && others.length) throw new UsageError(`convert writes ${others.join(', ')}: give --output-dir DIR (nothing is written to the current directory unasked)`);
      if (givenOutputDir === undefined && givenKeysOut === undefined && result.artifacts.has(KEYS_ARTIFACT)) throw new UsageError('convert writes a keys file: give --output-dir DIR or --keys-out FILE');
      // What killed runs left next to the keys and artifacts (atomic writes' temporaries, proved dead).
      const sweepOpts = { isTemp: isTmpFileName, socketOf: tmpOwnerSocket };
      const dirs = [...(givenOutputDir !== undefined ? [outputDir] : []), ...(result.artifacts.has(KEYS_ARTIFACT) ? [path.dirname(keysOut)] : [])];
      await Promise.all([...new Set(dirs)].map((d) => sweepDir(d, sweepOpts).catch(() => undefined)));
      const w: Written = { files: [], dirs: [] };
      let written;
      try {
        // ocicrypt (--encryption-key, --runtime coco): the image written is the encrypted one.
        const out = encryption ? await (await import('../ocicrypt/layers.js')).encryptedImage(result.image, { ...encryption.encryption, signal: io.signal }) : result.image;
        const keysArtifact = result.artifacts.get(KEYS_ARTIFACT);
        if (keysArtifact) {
          // 1. The keys, as KEYS.pending, bound to the image about to be written.
          const doc = JSON.parse(Buffer.from(keysArtifact.data).toString('utf8')) as Record<string, unknown>;
          const conversion: KeysConversion = { image: await out.digest(), reference: to, source: await source.digest(), invocation };
          const { keys, ...head } = doc;
          const text = JSON.stringify({ ...head, conversion, keys }, null, 2) + '\n';
          await makeDir(path.resolve(path.dirname(keysOut)), path.resolve(path.dirname(keysOut)), w);
          await writeFileAtomic(pending, text, { mode: 0o600 });
          w.files.push(pending);
        }
        if (givenOutputDir !== undefined) {
          await makeDir(path.resolve(outputDir), path.resolve(outputDir), w);
          await writeArtifacts(result, outputDir, w);
          const report = path.join(outputDir, 'report.json');
          // In pieces: a million files' report is ~160 MB of JSON, never one string.
          await writeFileAtomic(report, (function* () {
            yield* jsonPieces(result.report, '  ');
            yield '\n';
          })(), { mode: 0o644 });
          w.files.push(report);
        }
        // 2. The image, tagged.
        written = await writeImage(out, to, { onProgress: io.progress, signal: io.signal, registry: registryOptionsFrom(args, 'dest') });
      } catch (e) {
        // Keys and a policy for an image that was not written would only mislead: remove them,
        // and the directories this run created.
        await undo(w);
        if (encryption?.kekFile) await rm(encryption.kekFile, { force: true });
        throw e;
      }
      // 3. The keys become final (atomic rename; a crash before it is completed by a rerun).
      const files = w.files.filter((f) => f !== pending);
      if (result.artifacts.has(KEYS_ARTIFACT)) {
        await refuseSymlink(keysOut, '--keys-out');
        await rename(pending, keysOut);
        files.unshift(keysOut);
      }
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (args.flags.json) {
        await outJson(io, { digest: written.digest, destination: written.reference, keysFile: result.artifacts.has(KEYS_ARTIFACT) ? keysOut : null, ...summary, artifacts: files, ...(written.blobs ? { blobs: written.blobs } : {}), report: result.report });
      } else {
        io.out(written.digest);
        // As sconify_image prints it: the session to upload to CAS.
        if (summary.sessionId) io.out(summary.sessionId);
      }
      const devKeys = args.flags['insecure-dev-keys'] === true && result.artifacts.has(KEYS_ARTIFACT);
      // Never silenced, not even by --quiet: an image carrying its own keys must not ship by accident.
      if (devKeys) io.err(`enclavify convert: WARNING: INSECURE: --insecure-dev-keys put the region keys into ${written.reference} (fs.insecure__keys in its manifest): anyone with the image can decrypt the files. Development only; never push it.`);
      if (!args.flags.quiet) {
        const out = sections();
        if (result.artifacts.has(KEYS_ARTIFACT)) {
          out.push(devKeys
            ? `Keys: ${keysOut} (mode 0600); INSECURE: the same keys are also in the image (--insecure-dev-keys)`
            : `Keys: ${keysOut} (mode 0600; keep it secret, it is not in the image)`);
        }
        out.push(`Image: ${written.reference} ${written.digest} (${seconds} s)`);
        io.err(out.join('\n'));
      }
      return EXIT.ok;
    } finally {
      await result.dispose();
    }
  },
};
