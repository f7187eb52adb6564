/**
 * File classification: every regular file of an image's merged root file system becomes
 * `encrypted`, `authenticated` or `plain`, from user rules (`sconify_image`-style), defaults and
 * the entrypoint's startup files (which load before keys exist and so must not be encrypted).
 * The result feeds encryptFS (what to encrypt), runtimes (trusted files, mounts) and policies.
 */
import { EnclavifyError, type ErrorCode } from '../oci/errors.js';
import { withJsonLists } from '../oci/json-pieces.js';
import type { ImageConfig } from '../oci/types.js';
import { baseName } from '../fs/entry.js';
import { viewNodes, type LayerIndex, type MergedEntry, type RootFs } from '../fs/merged.js';
import type { Classification, ClassifiedFile, FileClass, Region } from '../transforms/state.js';
import { ClassifiedFiles, type FileKind } from './classified-files.js';
import { findStartupFiles, type StartupFiles } from './deps.js';
import { historyMentions, historyWarning } from './history.js';
import {
  DEFAULT_PLAIN_DIRS,
  DEFAULT_PLAIN_FILES,
  depth,
  globToRegExp,
  isGlob,
  KEY_NAME_RE,
  matchRules,
  normalizeRulePath,
  regionName,
  under,
  type Rule,
  type RuleKind,
} from './rules.js';

/** An encrypted directory, optionally with its key name. */
export type DirRule = string | { path: string; name?: string };

/** The user's protection rules (CLI: `--dir`, `--plain`, `--plain-file`, `--host-path`, `--authenticated`). */
export interface ClassifyRules {
  /** Encrypted regions: directories (or globs matching directories) whose files are encrypted, one key each. */
  dirs?: DirRule[];
  /** Directories (or globs) left unprotected. */
  plain?: string[];
  /** Files (or globs) left unprotected. */
  plainFiles?: string[];
  /** Files or directories left unprotected in the image and mounted from the host at run time (e.g. `/etc/resolv.conf`). */
  hostPaths?: string[];
  /** Files or directories whose files are authenticated, e.g. to override a default (`/var/lib/app`). */
  authenticated?: string[];
  /**
   * The default unprotected paths ({@link DEFAULT_PLAIN_DIRS}, {@link DEFAULT_PLAIN_FILES}); `false`
   * for none (everything else is authenticated), or replacement lists. A user rule for the same
   * path always overrides a default.
   */
  defaults?: false | { plainDirs?: readonly string[]; plainFiles?: readonly string[] };
  /** Use one key for the whole image, with this name, instead of one key per region. */
  singleKey?: string;
  /** The command whose startup files are kept authenticated; default the image's Entrypoint + Cmd. */
  command?: string[];
}

/** Options of {@link classifyImage}. */
export interface ClassifyImageOptions {
  /** The merged root file system (with its per-layer indexes). */
  rootfs: RootFs;
  /** The image config (Entrypoint, Cmd, Env, WorkingDir). */
  config: ImageConfig;
  rules: ClassifyRules;
}

/** The startup part of the report. */
export interface StartupReport {
  command: string[];
  program: string;
  scripts: Array<{ script: string; line: string; interpreter: string }>;
  executables: string[];
  interpreter?: string;
  libraries: Array<{ soname: string; path: string; neededBy: string[]; via: string }>;
  /** Every startup file (absolute), all kept authenticated. */
  files: string[];
  missing: Array<{ soname: string; neededBy: string[] }>;
  notes: string[];
}

/** Per class: how many files, how many bytes. */
export interface ClassTotals {
  files: number;
  bytes: number;
}

/** The classification report (JSON; `schemas/classification-report.schema.json`). */
export interface ClassificationReport {
  kind: 'enclavify.classification-report';
  version: 1;
  totals: Record<FileClass, ClassTotals>;
  regions: Array<Region & ClassTotals>;
  hostPaths: string[];
  rules: Array<{ path: string; class: FileClass; kind: RuleKind; source: string; fileOnly?: boolean; region?: string; hostPath?: boolean }>;
  startup: StartupReport | null;
  warnings: string[];
  /**
   * Every classified file, ordered by path. In a report from {@link classifyImage} (fileClassify's)
   * the rows are made from the classification on each read, so that a million of them are not
   * held while the pipeline runs: read it once and keep the array when you need it more than once.
   */
  readonly files: Array<{ path: string; class: FileClass; region?: string; reason: string; size: number; hostPath?: boolean; startup?: boolean; symlinkTo?: string }>;
  /**
   * Symlinks in encrypted regions that become encrypted copies of their targets (Gramine's
   * encrypted mounts cannot hold symlinks): the link, its target (absolute, resolved) and the
   * copy's plaintext size.
   */
  symlinkCopies?: Array<{ path: string; target: string; size: number }>;
}

/** What {@link classifyImage} returns. */
export interface ClassifyResult {
  classification: Classification;
  report: ClassificationReport;
}

function fail(code: ErrorCode, message: string): EnclavifyError {
  return new EnclavifyError(code, message);
}

const abs = (p: string) => (p === '.' || p === '' ? '/' : '/' + p);
const rel = (p: string) => (p === '/' ? '.' : p.slice(1));

/** The image's paths that globs are expanded against: the merged view plus every layer's entries (hidden ones too). */
function imagePaths(fs: RootFs): { dirs: Set<string>; files: Set<string> } {
  const dirs = new Set<string>(['/']);
  const files = new Set<string>();
  const addAncestors = (p: string) => {
    for (let i = p.indexOf('/', 1); i > 0; i = p.indexOf('/', i + 1)) dirs.add(p.slice(0, i));
  };
  for (const e of fs.walk()) {
    const p = abs(e.path);
    if (e.type === 'dir') dirs.add(p);
    else files.add(p);
    addAncestors(p);
  }
  for (const ix of fs.layers) {
    for (const e of ix.entries) {
      if (e.whiteout) continue;
      const p = abs(e.path);
      if (e.type === 'dir') dirs.add(p);
      else files.add(p);
      addAncestors(p);
    }
  }
  return { dirs, files };
}

/** Whether any layer (hidden entries included) has something at or below `p`. */
function inAnyLayer(fs: RootFs, p: string): boolean {
  const r = rel(p);
  return fs.layers.some((ix) => ix.entries.some((e) => !e.whiteout && (e.path === r || e.path.startsWith(r + '/'))));
}

/** Builds the effective rule set: globs expanded, paths validated, conflicts refused, defaults added. */
/** Package-manager and cache state under default-plain directories: expected there, not warned about. */
const QUIET_PLAIN = ['/var/lib/dpkg', '/var/lib/apt', '/var/cache', '/var/log', '/var/lib/ucf', '/var/lib/pam', '/var/lib/systemd', '/var/lib/misc', '/var/lib/apk', '/var/lib/rpm', '/var/lib/dnf', '/var/lib/yum'];

function buildRules(fs: RootFs, rules: ClassifyRules, warnings: string[]): Rule[] {
  // Only globs need every path of the image (two sets of a million strings in a large image).
  let pathSets: ReturnType<typeof imagePaths> | undefined;
  const pathsOf = () => (pathSets ??= imagePaths(fs));
  const out: Rule[] = [];
  const add = (raw: string, kind: Exclude<RuleKind, 'default'>, option: string, name?: string) => {
    const p = normalizeRulePath(raw, option);
    const source = `${option} ${raw}`;
    let targets: string[];
    if (isGlob(p)) {
      const re = globToRegExp(p);
      const paths = pathsOf();
      const pool = kind === 'dir' || kind === 'plain' ? paths.dirs : kind === 'plain-file' ? paths.files : new Set([...paths.dirs, ...paths.files]);
      targets = [...pool].filter((x) => re.test(x)).sort();
      if (targets.length === 0) warnings.push(`${source} matches nothing in the image`);
      if (name !== undefined && targets.length > 1) {
        throw fail('RULE_BAD_NAME', `${source}: the key name ${JSON.stringify(name)} cannot be given to a glob that matches ${targets.length} directories`);
      }
    } else targets = [p];
    for (const t of targets) {
      validateTarget(fs, t, kind, source, warnings);
      const r: Rule = { path: t, class: kind === 'dir' ? 'encrypted' : kind === 'authenticated' ? 'authenticated' : 'plain', kind, source };
      if (kind === 'plain-file') r.fileOnly = true;
      if (kind === 'host-path') r.hostPath = true;
      if (kind === 'dir' && name !== undefined) r.region = name;
      out.push(r);
    }
  };
  for (const d of rules.dirs ?? []) {
    const { path, name } = typeof d === 'string' ? { path: d, name: undefined } : d;
    if (name !== undefined && !KEY_NAME_RE.test(name)) {
      throw fail('RULE_BAD_NAME', `--dir ${path}: key name ${JSON.stringify(name)} must be 1-64 letters, digits, "_", "." or "-"`);
    }
    add(path, 'dir', '--dir', name);
  }
  for (const p of rules.plain ?? []) add(p, 'plain', '--plain');
  for (const p of rules.plainFiles ?? []) add(p, 'plain-file', '--plain-file');
  for (const p of rules.hostPaths ?? []) add(p, 'host-path', '--host-path');
  for (const p of rules.authenticated ?? []) add(p, 'authenticated', '--authenticated');

  // Same path twice: identical meaning is merged; different classes are refused.
  const byKey = new Map<string, Rule>();
  for (const r of out) {
    const key = `${r.path}\0${r.fileOnly ? 'f' : 'd'}`;
    const prev = byKey.get(key);
    if (!prev) {
      byKey.set(key, r);
      continue;
    }
    if (prev.class !== r.class) {
      throw fail('RULE_CONFLICT', `conflicting rules for ${r.path}: ${prev.source} makes it ${prev.class}, ${r.source} makes it ${r.class}; keep one`);
    }
    if (r.hostPath) {
      prev.hostPath = true;
      prev.kind = 'host-path';
    }
    if (r.region !== undefined && prev.region !== undefined && r.region !== prev.region) {
      throw fail('RULE_CONFLICT', `${r.path} is given two key names (${prev.region}, ${r.region})`);
    }
    if (r.region !== undefined) prev.region ??= r.region;
    warnings.push(`${r.source} repeats ${prev.source}; counted once`);
  }
  const user = [...byKey.values()];
  // A file rule and a directory rule on the same path cannot both apply (a path is a file or a directory).
  for (const r of user) {
    if (!r.fileOnly) continue;
    const d = user.find((x) => !x.fileOnly && x.path === r.path);
    if (d) throw fail('RULE_CONFLICT', `${r.source} and ${d.source} name the same path ${r.path}; it is either a file or a directory`);
  }

  // Defaults, unless the user has a rule for the same path.
  const taken = new Set(user.map((r) => r.path));
  const defaults: Rule[] = [];
  if (!taken.has('/')) defaults.push({ path: '/', class: 'authenticated', kind: 'default', source: 'default: authenticated' });
  const d = rules.defaults === false ? { plainDirs: [], plainFiles: [] } : rules.defaults ?? {};
  for (const p of d.plainDirs ?? DEFAULT_PLAIN_DIRS) {
    const n = normalizeRulePath(p, 'default plain directory');
    if (!taken.has(n)) defaults.push({ path: n, class: 'plain', kind: 'default', source: 'default: plain' });
  }
  for (const p of d.plainFiles ?? DEFAULT_PLAIN_FILES) {
    const n = normalizeRulePath(p, 'default plain file');
    if (!taken.has(n)) defaults.push({ path: n, class: 'plain', kind: 'default', source: 'default: plain', fileOnly: true });
  }
  // Note defaults that take files out of an encrypted region (e.g. --dir / keeps /tmp and /var plain).
  for (const def of defaults) {
    if (def.class !== 'plain') continue;
    const region = user.find((u) => u.class === 'encrypted' && under(def.path, u.path) && u.path !== def.path);
    if (region && fs.get(rel(def.path))) {
      warnings.push(`${def.path} stays plain (default) inside encrypted region ${region.path}; add --dir ${def.path} to encrypt it too, or --authenticated ${def.path}`);
    }
  }
  const all = [...defaults, ...user];
  all.sort((a, b) => depth(a.path) - depth(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return all;
}

/** Checks that a rule's path makes sense in this image; errors for paths that can never match. */
function validateTarget(fs: RootFs, p: string, kind: RuleKind, source: string, warnings: string[]): void {
  if (kind === 'host-path') return; // provided by the host at run time; the image may not have it
  const r = rel(p);
  const e = fs.get(r);
  // A symlink on the way means the rule's path is not where the files are: matching is literal.
  let resolved: string | undefined;
  try {
    resolved = fs.resolve(r);
  } catch {
    resolved = undefined;
  }
  if (e?.type === 'symlink' || (resolved !== undefined && resolved !== r && resolved !== '.')) {
    const target = resolved === undefined ? 'nowhere (a dangling or looping link)' : abs(resolved);
    throw fail('RULE_SYMLINK', `${source}: ${p} is reached through a symlink and resolves to ${target}; rules match real paths, so name the target instead`);
  }
  if (kind === 'dir' || kind === 'plain') {
    if (e && e.type !== 'dir') {
      throw fail('RULE_NOT_A_DIRECTORY', `${source}: ${p} is a ${e.type} in the image, not a directory${kind === 'plain' ? ' (use --plain-file for a file)' : ''}`);
    }
    if (!e && p !== '/') {
      warnings.push(
        kind === 'dir'
          ? `${source}: ${p} does not exist in the image${inAnyLayer(fs, p) ? ' (only in layers where a later layer deletes it)' : ''}; the region gets a key, and files created there at run time are encrypted`
          : `${source}: ${p} does not exist in the image`,
      );
    }
  } else if (kind === 'plain-file') {
    if (e && e.type === 'dir') throw fail('RULE_NOT_A_FILE', `${source}: ${p} is a directory in the image (use --plain for directories)`);
    if (!e) warnings.push(`${source}: ${p} does not exist in the image`);
  } else if (kind === 'authenticated' && !e) {
    warnings.push(`${source}: ${p} does not exist in the image`);
  }
}

/** Region names: explicit, derived from the directory (`/app/data` -> `app_data`) and made unique, or one image key. */
function nameRegions(rules: Rule[], singleKey: string | undefined): Region[] {
  if (singleKey !== undefined && !KEY_NAME_RE.test(singleKey)) {
    throw fail('RULE_BAD_NAME', `key name ${JSON.stringify(singleKey)} must be 1-64 letters, digits, "_", "." or "-"`);
  }
  const used = new Map<string, string>(); // name -> path
  const regions: Region[] = [];
  const enc = rules.filter((r) => r.class === 'encrypted');
  // Explicit names first, so derived names avoid them.
  for (const r of enc) {
    if (singleKey !== undefined) r.region = singleKey;
    if (r.region === undefined) continue;
    if (singleKey === undefined && used.has(r.region)) throw fail('RULE_CONFLICT', `key name ${r.region} is given to both ${used.get(r.region)} and ${r.path}`);
    used.set(r.region, r.path);
  }
  for (const r of enc) {
    if (r.region !== undefined) continue;
    const base = regionName(r.path);
    let n = base;
    for (let i = 2; used.has(n); i++) n = `${base}_${i}`;
    r.region = n;
    used.set(n, r.path);
  }
  for (const r of enc) regions.push({ name: r.region!, path: r.path });
  return regions;
}

/** The startup files of the image's command (absolute paths), or a warning explaining why there are none. */
async function startupFiles(fs: RootFs, config: ImageConfig, command: string[] | undefined, warnings: string[]): Promise<{ found?: StartupFiles; argv: string[] }> {
  const c = config.config ?? {};
  const argv = command ?? [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  if (argv.length === 0) {
    warnings.push('the image has no Entrypoint or Cmd: no startup files to keep authenticated');
    return { argv };
  }
  const lookup = {
    lstat: (p: string) => fs.lstat(p),
    readFiles: (ps: string[]) => fs.readFiles(ps),
    readdir: (p: string) => fs.children(p)?.map((e) => baseName(e.path)),
  };
  try {
    const found = await findStartupFiles({ lookup, command: argv[0], env: c.Env, workingDir: c.WorkingDir });
    for (const m of found.missing) warnings.push(`startup library ${m.soname} (needed by ${m.neededBy.map(abs).join(', ')}) not found in the image`);
    for (const n of found.notes) warnings.push(`startup files: ${n}`);
    return { found, argv };
  } catch (e) {
    warnings.push(`cannot find the startup files of ${JSON.stringify(argv[0])}: ${(e as Error).message}`);
    return { argv };
  }
}

/** Why a startup file is one, for messages: `library libc.so.6 needed by /usr/bin/ls`. */
function startupRole(s: StartupFiles, p: string): string {
  if (p === s.program) return s.scriptInterpreters.length ? 'the entrypoint script' : 'the entrypoint program';
  if (s.interpreters.includes(p)) return 'the ELF program interpreter (dynamic loader)';
  const lib = s.libraries.find((l) => l.path === p || l.hwcaps?.includes(p));
  if (lib) return `library ${lib.soname}${lib.neededBy.length ? ` needed by ${lib.neededBy.map(abs).join(', ')}` : ` (${lib.preload})`}`;
  const sc = s.scriptInterpreters.find((x) => x.interpreter === p);
  if (sc) return `the interpreter of ${abs(sc.script)} (#!${sc.line})`;
  if (s.executables.includes(p)) return 'an executable run at start';
  if (s.loaderFiles.includes(p)) return 'a dynamic loader configuration file';
  return 'a startup file';
}

/** Cross-region hard links in any layer would share one content between an encrypted path and another. */
function checkHardLinks(fs: RootFs, rules: Rule[]): void {
  const domain = (p: string) => {
    const m = matchRules(rules, p);
    return m?.class === 'encrypted' ? `encrypted region ${m.region} (${m.rule.path})` : 'unencrypted';
  };
  fs.layers.forEach((ix: LayerIndex) => {
    for (const e of ix.entries) {
      if (e.type !== 'hardlink' || e.whiteout) continue;
      const a = abs(e.path), b = abs(e.linkname!);
      const da = domain(a), db = domain(b);
      if (da === db) continue;
      throw fail(
        'CLASSIFY_HARDLINK',
        `${ix.name}: hard link ${a} -> ${b} joins ${da === 'unencrypted' ? 'an unencrypted path' : da} and ${db === 'unencrypted' ? 'an unencrypted path' : db}. ` +
          `Both names share one content, so encrypting one name would leave the same bytes readable through the other (or in the layer that holds them). ` +
          `Put both names in the same encrypted region, or replace the hard link by a copy in the image.`,
      );
    }
  });
}

/**
 * Classifies every regular file of the merged view. Throws `CLASSIFY_STARTUP_ENCRYPTED` when a
 * rule would encrypt a startup file, `RULE_*` for invalid rules, `CLASSIFY_HARDLINK` for a hard
 * link across a region boundary. Warnings (paths that do not exist, empty regions, missing
 * libraries...) are collected in the result.
 */
export async function classifyImage(opts: ClassifyImageOptions): Promise<ClassifyResult> {
  const { rootfs: fs, config } = opts;
  const warnings: string[] = [];
  const rules = buildRules(fs, opts.rules, warnings);
  const regions = nameRegions(rules, opts.rules.singleKey);
  checkHardLinks(fs, rules);
  const { found, argv } = await startupFiles(fs, config, opts.rules.command, warnings);
  const startupSet = new Set<string>();
  if (found) {
    for (const f of found.files) startupSet.add(f);
    for (const l of found.libraries) for (const h of l.hwcaps ?? []) startupSet.add(h);
  }

  const files = new ClassifiedFiles(fs);
  const filled = new Set<Region>(); // regions holding an encrypted regular file
  const refused: Array<{ path: string; rule: string; role: string }> = [];
  const others = new Map<string, string[]>(); // region -> non-regular entries in it
  const badLinks: string[] = []; // symlinks in regions that cannot become encrypted copies, with why
  const shippedPlain = new Map<string, string[]>(); // default-plain dir -> regular files in it
  // A walk makes each entry as it goes: no array of every entry of the image.
  const view = viewNodes(fs);
  for (const n of view.walk()) {
    const e = view.entryAt(n);
    const p = abs(e.path);
    const m = matchRules(rules, p);
    if (e.type === 'symlink' && m?.class === 'encrypted') {
      const copy = symlinkCopy(fs, rules, e, m.rule.path, startupSet);
      if (copy === 'startup') {
        const list = others.get(m.rule.path) ?? [];
        list.push(`${p} (symlink to a startup file, which stays authenticated)`);
        others.set(m.rule.path, list);
      } else if (typeof copy === 'string') badLinks.push(`  ${p} -> ${e.linkname}: ${copy}`);
      else {
        for (const r of regions) if (r.name === m.region && under(p, r.path)) filled.add(r);
        files.add(n, { class: 'encrypted', region: m.region!, reason: `symlink -> ${e.linkname} in ${m.rule.source}: an encrypted copy of ${copy.path} (Gramine's encrypted mounts cannot hold symlinks)`, copy: { symlinkTo: copy.path, size: copy.size, ...(copy.sha256 !== undefined ? { sha256: copy.sha256 } : {}) } });
      }
      continue;
    }
    if (e.type !== 'file') {
      if (m?.class === 'encrypted' && e.type !== 'dir') {
        const list = others.get(m.rule.path) ?? [];
        list.push(`${p} (${e.type})`);
        others.set(m.rule.path, list);
      }
      continue;
    }
    const cls: FileClass = m?.class ?? 'authenticated';
    const rp = rel(p);
    let f: FileKind;
    if (startupSet.has(rp)) {
      const role = startupRole(found!, rp);
      if (cls === 'encrypted') refused.push({ path: p, rule: m!.rule.source, role });
      else if (cls === 'plain') {
        warnings.push(`${p} is ${role}: authenticated although ${m!.rule.source} says plain (startup files are measured, not passed through)`);
      }
      f = { class: 'authenticated', reason: `startup: ${role}`, startup: true };
    } else {
      f = { class: cls, reason: m ? m.rule.source : 'default: authenticated' };
      if (m?.region !== undefined && cls === 'encrypted') {
        f.region = m.region;
        for (const r of regions) if (r.name === m.region && under(p, r.path)) filled.add(r);
      }
      if (m?.hostPath) f.hostPath = true;
    }
    files.add(n, f);
    if (f.class === 'plain' && m?.rule.kind === 'default' && !m.rule.fileOnly && !QUIET_PLAIN.some((q) => p === q || p.startsWith(q + '/'))) {
      shippedPlain.set(m.rule.path, [...(shippedPlain.get(m.rule.path) ?? []), p]);
    }
  }
  // Files the image ships under a default-plain directory are served unchecked at run time (the
  // host can replace them). Package-manager state is expected there; anything else is named.
  for (const [dir, ps] of shippedPlain) {
    warnings.push(`${ps.length} file${ps.length > 1 ? 's' : ''} shipped under ${dir} ${ps.length > 1 ? 'are' : 'is'} left plain by default, so the host can replace ${ps.length > 1 ? 'them' : 'it'} at run time: ${ps.slice(0, 5).join(', ')}${ps.length > 5 ? ', ...' : ''}; protect with --authenticated PATH or --dir PATH`);
  }
  if (badLinks.length) {
    throw fail(
      'CLASSIFY_SYMLINK',
      `refusing symlinks in encrypted regions that cannot be kept readable:\n${badLinks.join('\n')}\n` +
        `Gramine's encrypted mounts cannot hold symlinks (the enclave gets EACCES on them). A link to a regular file of the same region ` +
        `becomes an encrypted copy of it; any other link has no such stand-in. Remove the link from the image, point it at a file of the region, ` +
        `or move it out of the encrypted directory (a link outside the region may point into it); for a link to a directory, encrypt the directory itself (--dir TARGET) and use that path.`,
    );
  }
  if (refused.length) {
    const byRule = new Map<string, typeof refused>();
    for (const r of refused) byRule.set(r.rule, [...(byRule.get(r.rule) ?? []), r]);
    const lines = [...byRule].map(([rule, rs]) => {
      const shown = rs.slice(0, 12).map((r) => `    ${r.path}: ${r.role}`);
      if (rs.length > 12) shown.push(`    ... and ${rs.length - 12} more`);
      return `  ${rule} would encrypt ${rs.length} startup file${rs.length > 1 ? 's' : ''} of ${argv[0]}:\n${shown.join('\n')}`;
    });
    throw fail(
      'CLASSIFY_STARTUP_ENCRYPTED',
      `refusing to encrypt files the entrypoint needs before any key exists:\n${lines.join('\n')}\n` +
        `The program, its ELF interpreter and the shared libraries it loads at start are opened by the TEE runtime before ` +
        `the enclave is attested and receives its keys, so they cannot be encrypted; they are kept authenticated (pinned by SHA-256) instead. ` +
        `Narrow the encrypted directory to the data that needs confidentiality, or exclude these files with --authenticated PATH.`,
    );
  }

  // Regions without files, and non-regular entries in regions.
  for (const r of regions) {
    if (!filled.has(r)) {
      if (fs.get(rel(r.path))) warnings.push(`encrypted region ${r.path} (${r.name}) holds no regular file`);
    }
  }
  for (const [dir, list] of others) {
    const shown = list.slice(0, 5).join(', ') + (list.length > 5 ? `, ... (${list.length} in all)` : '');
    warnings.push(`encrypted region ${dir} holds entries that are not regular files, kept as they are: ${shown}`);
  }

  // Build commands kept in the config that name a region (they may hold what they wrote there).
  const history = historyWarning(historyMentions(config, rules));
  if (history) warnings.push(history);

  const hostPaths = rules.filter((r) => r.hostPath).map((r) => r.path);
  const classification: Classification = {
    regions,
    hostPaths,
    files,
    startup: [...startupSet].map(abs).sort(),
    warnings,
    rules,
  };
  if (found) classification.entrypoint = { program: abs(found.program), argv };
  return { classification, report: buildReport(classification, found, argv) };
}

/**
 * What a symlink in the encrypted region `region` becomes: its resolved target when that is an
 * encrypted regular file (the copy's source); `startup` when it points to a startup file (kept:
 * the entrypoint is found through such links before any key exists); else why it cannot be kept.
 */
function symlinkCopy(fs: RootFs, rules: readonly Rule[], e: MergedEntry, region: string, startup: ReadonlySet<string>): { path: string; size: number; sha256?: string } | 'startup' | string {
  let real: string | undefined;
  try {
    real = fs.resolve(e.path);
  } catch (err) {
    return `cannot be resolved (${(err as Error).message})`;
  }
  if (real === undefined) return 'dangling (its target is not in the image), so it cannot be read in the enclave either';
  const t = fs.get(real)!;
  const target = abs(real);
  if (t.type === 'dir') return `points to the directory ${target}: an encrypted mount cannot hold a link to a directory, and a directory has no encrypted-file copy`;
  if (t.type !== 'file') return `points to a ${t.type} (${target}), not a regular file`;
  if (startup.has(real)) return 'startup';
  const tm = matchRules(rules, target);
  if (tm?.class !== 'encrypted') {
    return `points out of the encrypted region ${region}, to ${target} (${tm?.class ?? 'authenticated'}): an encrypted copy would be a second, encrypted version of a file the image keeps readable, and the two would drift apart`;
  }
  return { path: target, size: t.size, ...(t.sha256 !== undefined ? { sha256: t.sha256 } : {}) };
}

/**
 * Classified files ordered by path (UTF-16 code units, the report's order). The walk classifies
 * in bytewise order, which is almost always the same: then the map is iterated as it is, and
 * only otherwise is a sorted array of every file made.
 */
function sortedByPath(files: ReadonlyMap<string, ClassifiedFile>): Iterable<ClassifiedFile> {
  let last: string | undefined;
  for (const p of files.keys()) {
    if (last !== undefined && !(last < p)) return [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)); // keys are the files' paths
    last = p;
  }
  return files.values();
}

type ReportRow = ClassificationReport['files'][number];

/** The report's row of a classified file (no SHA-256: a plaintext digest of an encrypted file would confirm a guess). */
function reportRow(f: ClassifiedFile): ReportRow {
  const row: ReportRow = { path: f.path, class: f.class, reason: f.reason, size: f.size ?? 0 };
  if (f.region !== undefined) row.region = f.region;
  if (f.hostPath) row.hostPath = true;
  if (f.startup) row.startup = true;
  if (f.symlinkTo !== undefined) row.symlinkTo = f.symlinkTo;
  return row;
}

function buildReport(c: Classification, found: StartupFiles | undefined, argv: string[]): ClassificationReport {
  const totals: Record<FileClass, ClassTotals> = { encrypted: { files: 0, bytes: 0 }, authenticated: { files: 0, bytes: 0 }, plain: { files: 0, bytes: 0 } };
  const perRegion = new Map<string, ClassTotals>();
  const copies: ReportRow[] = [];
  for (const f of c.files.values()) {
    const t = totals[f.class];
    t.files++;
    t.bytes += f.size ?? 0;
    if (f.region !== undefined) {
      const key = `${f.region}\0${regionOf(c, f)}`;
      const r = perRegion.get(key) ?? { files: 0, bytes: 0 };
      r.files++;
      r.bytes += f.size ?? 0;
      perRegion.set(key, r);
    }
    if (f.symlinkTo !== undefined) copies.push(reportRow(f));
  }
  copies.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const startup: StartupReport | null = found
    ? {
        command: argv,
        program: abs(found.program),
        scripts: found.scriptInterpreters.map((s) => ({ script: abs(s.script), line: s.line, interpreter: abs(s.interpreter) })),
        executables: found.executables.map(abs),
        ...(found.interpreter ? { interpreter: abs(found.interpreter) } : {}),
        libraries: found.libraries.map((l) => ({ soname: l.soname, path: abs(l.path), neededBy: l.neededBy.map(abs), via: l.via })),
        files: c.startup,
        missing: found.missing.map((m) => ({ soname: m.soname, neededBy: m.neededBy.map(abs) })),
        notes: found.notes,
      }
    : null;
  // Written by the CLI from the list, row by row (jsonPieces), without the array.
  const rows = function* (): Generator<ReportRow> {
    for (const f of sortedByPath(c.files)) yield reportRow(f);
  };
  const report: ClassificationReport = {
    kind: 'enclavify.classification-report',
    version: 1,
    totals,
    regions: c.regions.map((r) => ({ ...r, ...(perRegion.get(`${r.name}\0${r.path}`) ?? { files: 0, bytes: 0 }) })),
    hostPaths: c.hostPaths,
    rules: (c.rules ?? []).map((r) => ({
      path: r.path,
      class: r.class,
      kind: r.kind,
      source: r.source,
      ...(r.fileOnly ? { fileOnly: true } : {}),
      ...(r.region !== undefined ? { region: r.region } : {}),
      ...(r.hostPath ? { hostPath: true } : {}),
    })),
    startup,
    warnings: c.warnings,
    // Made on each read (JSON.stringify reads it once): a million rows are not held while the
    // pipeline runs.
    get files() {
      return [...rows()];
    },
    ...(copies.length ? { symlinkCopies: copies.map((f) => ({ path: f.path, target: f.symlinkTo!, size: f.size })) } : {}),
  };
  return withJsonLists(report, { files: rows });
}

/** The region directory an encrypted file belongs to (longest matching region). */
function regionOf(c: Classification, f: ClassifiedFile): string {
  let best = '';
  for (const r of c.regions) if (r.name === f.region && under(f.path, r.path) && r.path.length > best.length) best = r.path;
  return best;
}

