/**
 * An independent tree printer for a directory on disk (e.g. what `umoci unpack` wrote), in the
 * fixtures' line format, so a layout we write can be compared with the expected tree.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

export function diskTree(root: string): string {
  const lines: Array<[Buffer, string]> = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      const own = `${st.uid}:${st.gid}`;
      let line: string;
      if (st.isDirectory()) line = `${r} dir ${mode} ${own}`;
      else if (st.isSymbolicLink()) line = `${r} symlink ${own} -> ${readlinkSync(p)}`;
      else if (st.isFile()) line = `${r} file ${mode} ${own} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')} nlink=${st.nlink}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const major = Math.floor(st.rdev / 256) & 0xfff, minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
        line = `${r} ${st.isCharacterDevice() ? 'chardev' : 'blockdev'} ${mode} ${own} ${major},${minor}`;
      } else if (st.isFIFO()) line = `${r} fifo ${mode} ${own}`;
      else continue;
      lines.push([Buffer.from(r), line]);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  lines.sort((a, b) => Buffer.compare(a[0], b[0]));
  return lines.map(([, l]) => l).join('\n') + '\n';
}

/** Every regular file under `dir` (relative paths); none when `dir` does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => lstatSync(path.join(dir, p)).isFile());
}
