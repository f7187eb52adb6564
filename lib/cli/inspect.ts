/** `enclavify inspect IMAGE`: what a converted image holds (runtime, manifest, MRENCLAVE/MRSIGNER, regions). */
import { inspectImage } from '../runtimes/gramine/inspect.js';
import { formatInspection } from './format.js';
import { openImage } from '../store/images.js';
import { parsePlatform } from '../store/oci-layout.js';
import { ACCEPTED_FORMS } from '../store/ref.js';
import { UsageError } from './args.js';
import { COMMON, EXIT, type Command } from './command.js';
import { decryptedFrom, decryptionFlags } from './ocicrypt-options.js';
import { registryFlags, registryOptionsFrom } from './registry-options.js';
import { sourceFlags, sourceOptionsFrom } from './source-options.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show what a converted image holds: runtime, manifest, MRENCLAVE/MRSIGNER, protected regions',
  usage: 'enclavify inspect [options] IMAGE',
  description: `Reads IMAGE and prints, like 'gsc info-image' and more: the runtime and Entrypoint; for
Gramine the manifest path, the enclave's program, argv and settings, trusted/allowed entry counts and
mounts, and, for a signed image, MRENCLAVE, MRSIGNER, ISV product id and SVN, debug flag and date
from the SIGSTRUCT (<base>.sig), whose signature is verified and whose MRENCLAVE is recomputed from the
.manifest.sgx and libpal.so in the image; the protected regions from the protection manifest
(/.enclavify/protection.json); SCONE settings for SCONE images. Development keys in a manifest are
reported by name, never by value.

Insecure Gramine settings (debug enclave, sgx.file_check_policy = "allow_all_but_log", insecure__
keys, code-loading variables taken from the host, code or trust anchors from host-writable paths,
gramine-direct as the default loader) are warnings: on stderr, as "Warning:" lines, and under
gramine.warnings with --json.

Exit code 3 when a problem is found (signature invalid, MRENCLAVE not matching the image), and with
--production also when there is any warning.

References:
  ${ACCEPTED_FORMS}`,
  options: {
    platform: { kind: 'string', arg: 'OS/ARCH[/VARIANT]', help: 'platform to pick from a multi-platform index' },
    production: { kind: 'flag', help: 'exit 3 when the image is not fit for production: any warning (debug, allow_all_but_log, insecure__ keys, host-supplied code, gramine-direct)' },
    ...registryFlags,
    ...decryptionFlags,
    ...sourceFlags,
    ...COMMON,
  },
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('inspect needs one IMAGE');
    const platform = args.strings.platform ? parsePlatform(args.strings.platform) : undefined;
    const image = await decryptedFrom(await openImage(args.positionals[0], { platform, signal: io.signal, registry: registryOptionsFrom(args, 'one'), onProgress: io.progress, ...sourceOptionsFrom(args) }), args);
    io.progress({ phase: 'inspect', image: image.name, message: `inspecting ${image.name}` });
    const info = await inspectImage(image, { onProgress: io.progress, signal: io.signal });
    io.out(args.flags.json ? JSON.stringify(info) : formatInspection(info));
    const warnings = info.gramine?.warnings ?? [];
    for (const w of warnings) io.err(`enclavify: warning: ${w}`);
    if (info.gramine?.problems.length) return EXIT.findings;
    return args.flags.production && warnings.length ? EXIT.findings : EXIT.ok;
  },
};
