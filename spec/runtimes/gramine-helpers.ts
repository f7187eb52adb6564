/**
 * Test material for the Gramine runtime: a stand-in Gramine installation (CI has no Gramine) laid
 * out like Gramine's Debian package, small images written from entry lists, and readers for what a
 * converted image holds.
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Readable } from 'node:stream';
import { parse, type TomlTable } from 'smol-toml';
import { sha256Digest } from '../../lib/oci/digest.js';
import { lazy, type Image } from '../../lib/oci/image.js';
import { encodeJson } from '../../lib/oci/json.js';
import { buildLayer } from '../../lib/oci/layer.js';
import { MT } from '../../lib/oci/media-types.js';
import type { ContainerConfig, ImageConfig, Manifest } from '../../lib/oci/types.js';
import type { FsEntry } from '../../lib/fs/entry.js';
import { RootFs } from '../../lib/fs/merged.js';
import { tarStream } from '../../lib/fs/tar-write.js';
import { writeImage } from '../../lib/store/index.js';
import { fixtures } from '../helpers/tools.js';

export const signDir = path.join(fixtures, 'gramine-sign');
export const standInPal = path.join(signDir, 'stand-in-pal.so');
export const testKey = path.join(signDir, 'test-enclave-key.pem');
export const GLIBC = 'usr/lib/x86_64-linux-gnu/gramine/runtime/glibc';

/** Writes a stand-in Gramine installation (Debian layout) under `root`; returns `root`. */
export function standInRuntime(root: string): string {
  const w = (p: string, content: string | Buffer, mode = 0o644) => {
    mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    writeFileSync(path.join(root, p), content, { mode });
  };
  w('usr/bin/gramine-sgx', '#!/usr/bin/env bash\necho stand-in gramine-sgx "$@"\n', 0o755);
  w('usr/bin/gramine-direct', '#!/usr/bin/env bash\necho stand-in gramine-direct "$@"\n', 0o755);
  w('usr/bin/gramine-sgx-sign', 'not copied\n', 0o755);
  const lib = 'usr/lib/x86_64-linux-gnu/gramine';
  w(`${lib}/libsysdb.so`, 'stand-in LibOS\n', 0o755);
  mkdirSync(path.join(root, lib, 'sgx'), { recursive: true });
  copyFileSync(standInPal, path.join(root, lib, 'sgx/libpal.so'));
  // The host loaders are sh scripts that print how they were called, so tests can run the Entrypoint.
  w(`${lib}/sgx/loader`, '#!/bin/sh\necho "stand-in sgx loader: $*"\n', 0o755);
  w(`${lib}/direct/libpal.so`, '#!/bin/sh\necho "stand-in direct loader: $*"\n', 0o755);
  symlinkSync('libpal.so', path.join(root, lib, 'direct/loader'));
  w(`${GLIBC}/ld-linux-x86-64.so.2`, 'stand-in patched ld.so\n', 0o755);
  w(`${GLIBC}/libc.so.6`, 'stand-in patched libc\n', 0o755);
  w(`${GLIBC}/libsecret_prov_attest.so`, 'stand-in secret provisioning\n', 0o755);
  symlinkSync('libc.so.6', path.join(root, GLIBC, 'libc.so'));
  w('usr/share/doc/gramine/README', 'not copied\n');
  return root;
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const fileItem = (p: string, content: Uint8Array | string, mode = 0o644) => {
  const bytes = typeof content === 'string' ? enc(content) : content;
  return { entry: { path: p, type: 'file', mode, uid: 0, gid: 0, mtime: 1700000000, size: bytes.length } as FsEntry, content: bytes };
};
export const dirItem = (p: string, mode = 0o755) => ({ entry: { path: p, type: 'dir', mode, uid: 0, gid: 0, mtime: 1700000000, size: 0 } as FsEntry });
export const linkItem = (p: string, target: string) => ({ entry: { path: p, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1700000000, size: 0, linkname: target } as FsEntry });

/** Writes a one-layer OCI image made of `items` to `oci:<dir>:<tag>`; returns the reference. */
export async function writeItemsImage(dir: string, tag: string, items: Array<{ entry: FsEntry; content?: Uint8Array }>, config: ContainerConfig, tmpDir: string): Promise<string> {
  const layer = await buildLayer({ tar: tarStream(items) as Readable, tmpDir, name: `${tag} layer`, compression: 'gzip' });
  const cfg: ImageConfig = {
    architecture: 'amd64', os: 'linux', config,
    rootfs: { type: 'layers', diff_ids: [await layer.diffId()] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'test layer' }],
  };
  const rawConfig = encodeJson(cfg);
  const manifest: Manifest = {
    schemaVersion: 2, mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: sha256Digest(rawConfig), size: rawConfig.length },
    layers: [{ mediaType: layer.mediaType, digest: await layer.digest(), size: await layer.size() }],
  };
  const rawManifest = encodeJson(manifest);
  const image: Image = {
    name: tag,
    mediaType: async () => MT.ociManifest,
    manifest: async () => manifest,
    rawManifest: async () => rawManifest,
    digest: async () => sha256Digest(rawManifest),
    config: async () => cfg,
    rawConfig: async () => rawConfig,
    layers: lazy(async () => [layer]),
  };
  const ref = `oci:${dir}:${tag}`;
  await writeImage(image, ref);
  await layer.dispose();
  return ref;
}

/** The merged root file system of an image. */
export async function rootfsOf(image: Image): Promise<RootFs> {
  const layers = await image.layers();
  return RootFs.scan(layers.map((l) => ({ name: l.name, open: () => l.uncompressed() })));
}

/** Reads files of an image. */
export async function readImageFiles(image: Image, paths: string[]): Promise<Map<string, Uint8Array>> {
  return (await rootfsOf(image)).readFiles(paths);
}

/** Parses a manifest's TOML. */
export function toml(bytes: Uint8Array | string): TomlTable {
  // Plain objects (smol-toml makes null-prototype tables), for deepEqual.
  return JSON.parse(JSON.stringify(parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes)))) as TomlTable;
}

/** Trusted files as a map uri -> sha256. */
export function trustedMap(doc: TomlTable): Map<string, string> {
  const sgx = doc.sgx as TomlTable;
  return new Map((sgx.trusted_files as TomlTable[]).map((t) => [t.uri as string, t.sha256 as string]));
}

/**
 * What the kernel says, inside a chroot of an unpacked root file system: every path that reaches a
 * regular file, with the file's SHA-256 (Python's os.walk(followlinks=True) under os.chroot, so
 * symlinks are resolved by the kernel, not by us). Needs root and python3; undefined otherwise.
 */
export function kernelReachable(rootfs: string, skip: string[]): Map<string, string> | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const script = `
import hashlib, json, os, sys
skip = json.loads(sys.argv[2])
os.chroot(sys.argv[1]); os.chdir('/')
out = {}
for d, dirs, files in os.walk('/', followlinks=True):
    dirs[:] = [x for x in dirs if not any(os.path.join(d, x) == s or os.path.join(d, x).startswith(s + '/') for s in skip)]
    for f in files:
        p = os.path.join(d, f)
        if any(p == s or p.startswith(s + '/') for s in skip): continue
        if os.path.isfile(p):
            out[p] = hashlib.sha256(open(p, 'rb').read()).hexdigest()
print(json.dumps(out))
`;
  try {
    const out = execFileSync('/usr/bin/python3', ['-c', script, rootfs, JSON.stringify(skip)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    return new Map(Object.entries(JSON.parse(out) as Record<string, string>));
  } catch {
    return undefined;
  }
}

export const readText = (p: string) => readFileSync(p, 'utf8');
