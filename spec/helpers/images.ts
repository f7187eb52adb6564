/** Paths of the fixture images, and scratch copies that tests may modify. */
import { cpSync, mkdtempSync, rmSync, chmodSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fixtures } from './tools.js';

export const images = path.join(fixtures, 'images');
export const bbOci = path.join(images, 'bb-oci');
export const bbZstd = path.join(images, 'bb-zstd-oci');
export const bbArchive = path.join(images, 'bb-docker-archive.tar');
export const expectedTree = path.join(images, 'bb-oci.expected-tree.txt');

/** A fresh temporary directory, removed by the returned function. */
export function scratch(prefix = 'enclavify-test-'): { dir: string; done: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A writable copy of a fixture (CI's shared folder has no write bits). */
export function writableCopy(src: string, dst: string): string {
  cpSync(src, dst, { recursive: true });
  const fix = (p: string) => {
    const st = statSync(p);
    chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const n of readdirSync(p)) fix(path.join(p, n));
  };
  fix(dst);
  return dst;
}

/** `umoci unpack` an image into `bundle` (as root: ownership, setuid and devices preserved). */
export function umociUnpack(layoutRef: string, bundle: string): string {
  const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
  execFileSync('umoci', ['unpack', ...rootless, '--image', layoutRef, bundle], { stdio: 'pipe' });
  return path.join(bundle, 'rootfs');
}
