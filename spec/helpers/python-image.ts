/**
 * The realistic Debian 12 + python3 image of ../shared/tools/make-python-image (about a minute to
 * build). `.ci/run` builds it into $ENCLAVIFY_PYTHON_IMAGE; locally, set that variable to a layout
 * you built. Tests that need it skip when it is absent.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const pythonImageDir = process.env.ENCLAVIFY_PYTHON_IMAGE ?? '/tmp/enclavify-bench/py';
export const pythonImageRef = `oci:${pythonImageDir}:py`;
export const pythonImageSkip: string | false = existsSync(path.join(pythonImageDir, 'index.json'))
  ? false
  : `no python image at ${pythonImageDir} (build it with ../shared/tools/make-python-image DIR and set ENCLAVIFY_PYTHON_IMAGE=DIR)`;
