/**
 * Where a Gramine 1.9 installation keeps its files, as Gramine's Debian/Ubuntu packages install
 * them (debian/gramine.install, tools/meson.build of gramineproject/gramine), and where enclavify
 * puts what it generates. All paths are absolute paths inside an image (or a runtime directory).
 */

/** Paths of a Gramine installation inside its runtime source. */
export interface GramineLayout {
  /** Gramine's launcher script for SGX (`gramine-sgx`, a bash script). */
  gramineSgx: string;
  /** Gramine's launcher script without SGX (`gramine-direct`). */
  gramineDirect: string;
  /** Untrusted host loader for SGX (a dynamically linked executable). */
  sgxLoader: string;
  /** The SGX PAL that runs inside the enclave; measured into MRENCLAVE. */
  sgxPal: string;
  /** Host loader of the direct PAL (a symlink to `direct/libpal.so`, itself static and executable). */
  directLoader: string;
  /** The direct (non-SGX) PAL. */
  directPal: string;
  /** The LibOS (`loader.entrypoint.uri`); its SHA-256 is part of `.manifest.sgx`. */
  libsysdb: string;
  /** Gramine's patched glibc (and its RA-TLS / secret-provisioning libraries). */
  runtimeGlibc: string;
}

/** Gramine's Debian/Ubuntu package layout (x86_64). */
export const DEBIAN_LAYOUT: Readonly<GramineLayout> = Object.freeze({
  gramineSgx: '/usr/bin/gramine-sgx',
  gramineDirect: '/usr/bin/gramine-direct',
  sgxLoader: '/usr/lib/x86_64-linux-gnu/gramine/sgx/loader',
  sgxPal: '/usr/lib/x86_64-linux-gnu/gramine/sgx/libpal.so',
  directLoader: '/usr/lib/x86_64-linux-gnu/gramine/direct/loader',
  directPal: '/usr/lib/x86_64-linux-gnu/gramine/direct/libpal.so',
  libsysdb: '/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so',
  runtimeGlibc: '/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc',
});

/** What the runtime layer copies from the source by default: the launchers and Gramine's library directory. */
export function defaultCopyPaths(layout: GramineLayout): string[] {
  return [layout.gramineSgx, layout.gramineDirect, parentDir(layout.libsysdb)];
}

/** Directory in the image that holds what enclavify generates for Gramine. */
export const APP_DIR = '/gramine/app';
/** Application base name: Gramine reads `<base>.manifest`, `<base>.manifest.sgx` and `<base>.sig`. */
export const DEFAULT_APP_BASE = `${APP_DIR}/entrypoint`;
/** The start script that picks `gramine-sgx` or `gramine-direct` (`ENCLAVIFY_GRAMINE_LOADER`). */
export const LAUNCHER_PATH = `${APP_DIR}/launch`;

/** Image labels through which `enclavify sign` and `enclavify inspect` find what injectRuntime wrote. */
export const LABELS = Object.freeze({
  runtime: 'enclavify.runtime',
  manifest: 'enclavify.gramine.manifest',
  sgxPal: 'enclavify.gramine.sgx-pal',
  loader: 'enclavify.gramine.loader',
  protection: 'enclavify.protection.manifest',
});

/** `/a/b/c` -> `/a/b`. */
export function parentDir(p: string): string {
  const i = p.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/** Joins an optional prefix (`/gramine` or ``) with an absolute path. */
export function withPrefix(prefix: string, p: string): string {
  const pre = prefix.replace(/\/+$/, '');
  return pre === '' ? p : `${pre}${p}`;
}
