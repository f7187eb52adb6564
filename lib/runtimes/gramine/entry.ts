/**
 * The Gramine runtime as the package's root exports it: `gramine()`, `signGramineImage()` and
 * `inspectImage()` check their options here and load the implementation (manifest building, SGX
 * measurement and signing, TOML) when they first run, so that importing `enclavify` stays cheap.
 */
import { EnclavifyError } from '../../oci/errors.js';
import type { Image } from '../../oci/image.js';
import type { Runtime } from '../../transforms/inject-runtime.js';
import type { Transform } from '../../transforms/pipeline.js';
import { hostEnvRisk } from './hardening.js';
import type { GramineOptions } from './runtime.js';
import type { SignGramineImageOptions } from './sign.js';
import type { ImageInspection, InspectOptions } from './inspect.js';

export { checkGramineManifest } from './schema.js';

/**
 * The Gramine runtime for {@link injectRuntime}:
 * `pipeline(image, [fileClassify(...), encryptFS(), injectRuntime(gramine({ runtimeImage: 'oci:gramine:1.9', signKey }))])`.
 * Options are checked here; the work happens when the pipeline runs.
 */
export function gramine(options: GramineOptions): Runtime {
  if ((options.runtimeImage === undefined) === (options.runtimeDir === undefined)) {
    throw new EnclavifyError('GRAMINE_BAD_OPTIONS', 'gramine(): give exactly one of runtimeImage and runtimeDir');
  }
  if (options.insecureDevKeys && options.production) {
    throw new EnclavifyError('GRAMINE_INSECURE_IN_PRODUCTION', 'insecure development keys are refused in a production build: they put the region keys into the image');
  }
  if (options.debug && options.production) {
    throw new EnclavifyError('GRAMINE_INSECURE_IN_PRODUCTION', 'a debug enclave is refused in a production build: the host can read its memory');
  }
  if (options.loader && options.loader !== 'sgx' && options.loader !== 'direct') {
    throw new EnclavifyError('GRAMINE_BAD_OPTIONS', `gramine(): loader must be "sgx" or "direct", not ${JSON.stringify(options.loader)}`);
  }
  if (options.loader === 'direct' && options.production) {
    throw new EnclavifyError('GRAMINE_INSECURE_IN_PRODUCTION', 'the direct loader (gramine-direct) is refused in a production build: it runs the program without SGX, so nothing is protected');
  }
  for (const name of options.production ? options.passthroughEnv ?? [] : []) {
    const why = hostEnvRisk(name);
    if (why) throw new EnclavifyError('GRAMINE_INSECURE_IN_PRODUCTION', `passthroughEnv ${name} is refused in a production build: taken from the host, and ${why}`);
  }
  // Gramine 1.9's constructor stops the enclave without it (secret_prov_attest.c: "could not find
  // envvar SECRET_PROVISION_CA_CHAIN_PATH", then exit(1)); it must be measured, never host-supplied.
  if (options.secretProvisioning && !options.secretProvisioning.caChainPath) {
    throw new EnclavifyError('GRAMINE_BAD_OPTIONS', 'secret provisioning needs the verifier\'s CA certificate: Gramine 1.9\'s libsecret_prov_attest.so stops the enclave at start without SECRET_PROVISION_CA_CHAIN_PATH. Give secretProvisioning.caChainPath, a CA file in the image (it is authenticated)');
  }
  // Refuse signKey + signer now (signerFrom in sign.ts, which loads the SGX code, says the same).
  if (options.signKey !== undefined && options.signer !== undefined) throw new EnclavifyError('GRAMINE_BAD_OPTIONS', 'give signKey or signer, not both');
  return { name: 'gramine', inject: async (draft) => (await import('./runtime.js')).injectGramine(draft, options) };
}

/**
 * A transform that signs an already converted (unsigned) Gramine image: adds one layer holding
 * `<base>.manifest.sgx` and `<base>.sig` next to the manifest, and records MRENCLAVE/MRSIGNER under
 * the `RUNTIME` state key. Use it alone in a pipeline: `pipeline(image, [signGramineImage({ signKey })])`.
 *
 * Before signing, the image is checked against its protection manifest and the manifest's hashes
 * against both: any finding refuses the signature (`GRAMINE_SIGN_REFUSED`), so a file changed
 * after conversion is never blessed. Insecure settings in the manifest are warned about, or
 * refused with `production` (`GRAMINE_INSECURE_IN_PRODUCTION`).
 */
export function signGramineImage(opts: SignGramineImageOptions): Transform {
  return {
    name: 'signGramine',
    apply: async (draft) => (await import('./sign.js')).signGramineImage(opts).apply(draft),
  };
}

/** Reads what a (converted) image holds; scans its layers once. */
export async function inspectImage(image: Image, options: InspectOptions = {}): Promise<ImageInspection> {
  return (await import('./inspect.js')).inspectImage(image, options);
}
