/**
 * skopeo's registry flags, for every command that takes an image reference: credentials
 * (`--creds`, `--src-creds`, `--dest-creds`, `--no-creds`...), `--authfile`, TLS verification and
 * cert dirs, per side of a copy. Turned into the library's `RegistryOptions`.
 */
import { parseCredentials } from '../registry/credentials.js';
import type { RegistryOptions } from '../registry/client.js';
import { parseRef } from '../store/ref.js';
import { UsageError, type OptionSpec, type Parsed } from './args.js';

/** Flags of commands that read one image (`tree`, `inspect`, `verify`). */
export const registryFlags: Record<string, OptionSpec> = {
  creds: { kind: 'string', arg: 'USER:PASS', help: 'registry credentials (default: looked up in auth files and credential helpers per registry)' },
  'no-creds': { kind: 'flag', help: 'access the registry anonymously (no credential lookup)' },
  authfile: { kind: 'string', arg: 'FILE', help: 'auth file to look credentials up in first (default: $REGISTRY_AUTH_FILE, containers auth.json, Docker config.json)' },
  'tls-verify': { kind: 'flag', help: '--tls-verify=false: do not verify the registry\'s certificate, and allow plain HTTP (default true; plain HTTP is also used for a loopback registry without TLS)' },
  'cert-dir': { kind: 'string', arg: 'DIR', help: 'CA certificates (*.crt) and client certificate pairs (*.cert, *.key) for the registry (default /etc/containers/certs.d/HOST:PORT ...)' },
};

/** Flags of commands that read one image and write another (`copy`, `convert`, `sign`): per side, and both at once. */
export const copyRegistryFlags: Record<string, OptionSpec> = {
  'src-creds': { kind: 'string', arg: 'USER:PASS', help: 'credentials for the source registry' },
  'dest-creds': { kind: 'string', arg: 'USER:PASS', help: 'credentials for the destination registry' },
  creds: { kind: 'string', arg: 'USER:PASS', help: 'credentials for source and destination (when --src-creds/--dest-creds do not say)' },
  'src-no-creds': { kind: 'flag', help: 'read the source anonymously' },
  'dest-no-creds': { kind: 'flag', help: 'write the destination anonymously' },
  authfile: registryFlags.authfile,
  'src-tls-verify': { kind: 'flag', help: '--src-tls-verify=false: do not verify the source registry\'s certificate (and allow plain HTTP)' },
  'dest-tls-verify': { kind: 'flag', help: '--dest-tls-verify=false: do not verify the destination registry\'s certificate (and allow plain HTTP)' },
  'tls-verify': { kind: 'flag', help: '--tls-verify=false: both of the above' },
  'src-cert-dir': { kind: 'string', arg: 'DIR', help: 'CA and client certificates for the source registry (*.crt, *.cert, *.key)' },
  'dest-cert-dir': { kind: 'string', arg: 'DIR', help: 'CA and client certificates for the destination registry' },
};

const has = (args: Parsed, name: string) => args.flags[name] !== undefined || args.strings[name] !== undefined;

/**
 * The RegistryOptions of one side: `src`, `dest`, or `one` (a one-image command). Side-specific
 * flags win over the general ones (`--src-creds` over `--creds`).
 */
export function registryOptionsFrom(args: Parsed, side: 'src' | 'dest' | 'one'): RegistryOptions {
  const pick = (name: string) => (side !== 'one' && has(args, `${side}-${name}`) ? `${side}-${name}` : name);
  const credsFlag = pick('creds');
  const noCredsFlag = side === 'one' ? 'no-creds' : `${side}-no-creds`;
  const credsValue = args.strings[credsFlag];
  const noCreds = args.flags[noCredsFlag] === true;
  if (credsValue !== undefined && noCreds) throw new UsageError(`--${credsFlag} and --${noCredsFlag} contradict each other`);
  const out: RegistryOptions = {};
  if (noCreds) out.credentials = null;
  else if (credsValue !== undefined) {
    try {
      out.credentials = parseCredentials(credsValue, `--${credsFlag}`);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (args.strings.authfile) out.authFile = args.strings.authfile;
  const verify = args.flags[pick('tls-verify')];
  if (verify === false) out.tlsVerify = false;
  const certDir = args.strings[side === 'one' ? 'cert-dir' : `${side}-cert-dir`];
  if (certDir) out.certDir = certDir;
  return out;
}

/**
 * Options for another image a command reads besides its source (a `--runtime-image`, a
 * `--binary-image`): the source's options when it is in the source's registry, else the
 * source's TLS setting and auth file, with credentials looked up for its own registry.
 */
export function registryOptionsForExtra(args: Parsed, ref: string, sourceRef: string): RegistryOptions {
  const src = registryOptionsFrom(args, 'src');
  const a = parseRef(ref), b = parseRef(sourceRef);
  if (a.transport === 'docker' && b.transport === 'docker' && a.registry === b.registry) return src;
  return { ...(src.authFile ? { authFile: src.authFile } : {}), ...(src.tlsVerify === false ? { tlsVerify: false } : {}) };
}
