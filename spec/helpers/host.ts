/** Facts about the host that tests build images from: its real programs and their libraries. */
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import type { FsEntry } from '../../lib/fs/entry.js';

/** ldd's view of a host program: `name => path` pairs and the loader line; undefined if ldd fails. */
export function ldd(program: string): { libs: Array<{ name: string; path: string }>; interpreter?: string | undefined } | undefined {
  let out: string;
  try {
    out = execFileSync('ldd', [program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const libs: Array<{ name: string; path: string }> = [];
  let interpreter: string | undefined;
  for (const line of out.split('\n')) {
    const arrow = /^\s*(\S+) => (\/\S+) \(0x/.exec(line);
    if (arrow) libs.push({ name: arrow[1], path: arrow[2] });
    else {
      const loader = /^\s*(\/\S+) \(0x/.exec(line);
      if (loader) interpreter = loader[1];
    }
  }
  return { libs, interpreter };
}

/** A host program's libraries as [soname, real file]. */
export function hostLibs(program: string): Array<{ name: string; file: string }> | undefined {
  return ldd(program)?.libs.map((l) => ({ name: l.name, file: realpathSync(l.path) }));
}

/**
 * The entries that reach a host path (host root = image root): every symlink crossed on the way
 * (merged-/usr `bin -> usr/bin`, an absolute `lib64/ld-linux...` target), then the file with its
 * bytes and mode, in the order they are reached.
 */
export function hostPathEntries(hostPath: string): Array<{ entry: FsEntry; content?: Buffer }> {
  const out: Array<{ entry: FsEntry; content?: Buffer }> = [];
  const stack: string[] = [];
  const rest = hostPath.split('/').filter(Boolean).reverse();
  for (let links = 0; rest.length; ) {
    const c = rest.pop()!;
    if (c === '.') continue;
    if (c === '..') {
      stack.pop();
      continue;
    }
    const p = [...stack, c].join('/');
    const st = lstatSync('/' + p);
    if (st.isSymbolicLink()) {
      if (++links > 40) throw new Error(`host symlink loop at /${p}`);
      const target = readlinkSync('/' + p);
      out.push({ entry: { path: p, type: 'symlink', linkname: target, mode: 0o777, uid: 0, gid: 0, mtime: 0, size: 0 } });
      if (target.startsWith('/')) stack.length = 0;
      rest.push(...target.split('/').filter(Boolean).reverse());
      continue;
    }
    stack.push(c);
    if (!rest.length) {
      const b = readFileSync('/' + p);
      out.push({ entry: { path: p, type: 'file', mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: 0, size: b.length }, content: b });
    }
  }
  return out;
}
