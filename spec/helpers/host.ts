/** Facts about the host that tests build images from: its real programs and their libraries. */
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';

/** ldd's view of a host program: `name => path` pairs and the loader line; undefined if ldd fails. */
export function ldd(program: string): { libs: Array<{ name: string; path: string }>; interpreter?: string } | undefined {
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
