/**
 * What the SCONE runtime cannot do in the open: SCONE's file shield. Its protection file (FSPF)
 * and the layout of files it protects are proprietary and undocumented; only SCONE's own tools
 * create them, and a SCONE enclave refuses files protected any other way.
 */
import { EnclavifyError } from '../../oci/errors.js';

/** Why `--dir` (encrypted directories) is refused with `--runtime scone`. */
export const SCONE_FSPF_UNSUPPORTED_MESSAGE = [
  '--dir cannot be used with --runtime scone: SCONE protects files with its "file shield", whose',
  'protection file (FSPF) and encrypted-file format are proprietary and undocumented. Only SCONE\'s',
  'own tools (`scone fspf`, in SCONE\'s licensed images) can create them, and a SCONE enclave',
  'refuses files protected any other way. Choose one of:',
  '  - --runtime gramine: open format (Gramine encrypted files), keys released after attestation;',
  '  - encrypted SCONE volumes (--volume NAME:PATH): CAS creates their keys at run time;',
  '  - build the FSPF with SCONE\'s tools and give its path, key and tag to emitPolicy (option `fspf`).',
].join('\n');

/** The protection options of a conversion that matter to this check. */
export interface SconeProtectionRequest {
  /** Directories to encrypt (`--dir`). */
  dirs?: readonly string[];
}

/**
 * Throws `SCONE_FSPF_UNSUPPORTED` when a SCONE conversion asks for encrypted directories. The CLI
 * calls it before any work, so the user learns why at once.
 */
export function checkSconeFileProtection(request: SconeProtectionRequest): void {
  if ((request.dirs ?? []).length > 0) throw new EnclavifyError('SCONE_FSPF_UNSUPPORTED', SCONE_FSPF_UNSUPPORTED_MESSAGE);
}
