/**
 * The CLI's text renderings of library results: the classification and encryption reports,
 * verify's findings, an inspection. (Programs use the structured results; only the CLI prints.)
 */
import type { ClassificationReport } from '../protect/classify.js';
import type { VerifyResult } from '../protect/verify.js';
import type { ImageInspection } from '../runtimes/gramine/inspect.js';
import type { EncryptReport } from '../transforms/encrypt-fs.js';

const num = (n: number) => n.toLocaleString('en-US');

/** The classification report as text for the CLI (stderr). */
export function formatClassificationReport(r: ClassificationReport): string {
  const out: string[] = [];
  out.push('File protection (the longest matching rule decides):');
  for (const cls of ['encrypted', 'authenticated', 'plain'] as const) {
    const t = r.totals[cls];
    out.push(`  ${cls.padEnd(14)}${String(t.files).padStart(7)} file${t.files === 1 ? ' ' : 's'}${num(t.bytes).padStart(16)} bytes`);
  }
  if (r.regions.length) {
    out.push('Encrypted regions (one key each):');
    for (const g of r.regions) out.push(`  ${g.path.padEnd(30)} key ${g.name.padEnd(16)} ${g.files} file${g.files === 1 ? '' : 's'}, ${num(g.bytes)} bytes`);
  }
  if (r.symlinkCopies?.length) {
    out.push('Symlinks in encrypted regions, written as encrypted copies of their targets (Gramine\'s encrypted mounts cannot hold symlinks):');
    for (const c of r.symlinkCopies) out.push(`  ${c.path.padEnd(30)} copy of ${c.target}, ${num(c.size)} bytes`);
  }
  if (r.hostPaths.length) out.push(`Host paths (plain, mounted from the host): ${r.hostPaths.join(', ')}`);
  out.push('Rules:');
  for (const rule of r.rules) {
    out.push(`  ${(rule.path + (rule.fileOnly ? '' : rule.path === '/' ? '' : '/')).padEnd(30)} ${rule.class.padEnd(14)} ${rule.source}${rule.region ? ` (key ${rule.region})` : ''}`);
  }
  if (r.startup) {
    const s = r.startup;
    out.push(`Startup files of ${s.command.join(' ')} (authenticated: loaded before keys exist):`);
    for (const sc of s.scripts) out.push(`  script       ${sc.script} (#!${sc.line}) -> ${sc.interpreter}`);
    for (const x of s.executables) out.push(`  executable   ${x}`);
    if (s.interpreter) out.push(`  interpreter  ${s.interpreter}`);
    if (s.libraries.length === 0 && !s.interpreter) out.push('  libraries    none (static executable)');
    for (const l of s.libraries) out.push(`  library      ${l.path} (${l.soname})`);
    for (const m of s.missing) out.push(`  missing      ${m.soname} (needed by ${m.neededBy.join(', ')})`);
  } else out.push('Startup files: none found');
  if (r.warnings.length) {
    out.push('Warnings:');
    for (const w of r.warnings) out.push(`  ${w}`);
  }
  return out.join('\n');
}

/** Formats the encryptFS report for the CLI. */
export function formatEncryptReport(r: EncryptReport): string {
  const out = ['Encryption (Gramine encrypted files 2.0, bound to their paths):'];
  for (const g of r.regions) out.push(`  ${g.path.padEnd(30)} key ${g.name.padEnd(16)} ${g.files} file(s), ${g.bytes.toLocaleString('en-US')} -> ${g.diskBytes.toLocaleString('en-US')} bytes`);
  // Layers are numbered from 0 (the base) everywhere: in text, in layer names and in the JSON report.
  const list = (xs: number[]) => (xs.length ? xs.join(', ') : 'none');
  out.push(`  layers (0 = base) rewritten: ${list(r.rewrittenLayers)}; unchanged (byte-identical): ${list(r.unchangedLayers)}`);
  for (const d of r.dropped) out.push(`  dropped from layer ${d.layer}: ${d.path} (${d.why})`);
  for (const w of r.warnings ?? []) out.push(`  warning: ${w}`);
  if (r.historyScrubbed?.length) out.push(`  history entries ${r.historyScrubbed.join(', ')} (0-based) replaced (they named encrypted regions)`);
  out.push(`Protection manifest: ${r.manifestPath} (layer ${r.manifestLayer}) sha256:${r.manifestSha256}`);
  if (r.deterministic) out.push('  deterministic mode: keys and nonces derived from the master key');
  return out.join('\n');
}

/** Findings as text, one per line: `PATH: CODE: message`; then what the pin does not cover. */
export function formatFindings(r: VerifyResult): string {
  const lines: string[] = [];
  if (r.ok) {
    const c = r.checked;
    const pinned = r.pin ? ` (${r.pin.source === 'expected' ? 'the expected digest' : 'pinned by the keys file'})` : ' (not pinned: no digest in the keys file or given)';
    const encrypted = r.notChecked ? `${c.encrypted} encrypted (${r.notChecked.encrypted} not checked: no keys; ciphertext digests compared)` : `${c.encrypted} encrypted`;
    lines.push(`verified: ${encrypted}, ${c.authenticated} authenticated, ${c.plain} plain files, ${c.symlinks} symlinks, ${c.entries} directories and other entries, ${c.hiddenEntries} hidden entries in encrypted regions; manifest sha256:${r.manifestSha256}${pinned}`);
  } else {
    lines.push(`${r.findings.length} finding(s):`, ...r.findings.map((f) => `  ${f.path}: ${f.code}: ${f.message}`));
  }
  if (!r.ok && r.notChecked) lines.push(`not checked: ${r.notChecked.encrypted} encrypted file(s): ${r.notChecked.reason}`);
  if (r.pin?.matched && r.pin.amended.length) {
    const shown = r.pin.amended.slice(0, 10).join(', ') + (r.pin.amended.length > 10 ? `, ... (${r.pin.amended.length} in all)` : '');
    lines.push(`note: ${r.pin.amended.length} path(s) recorded after the pinned manifest (amendments, e.g. by enclavify sign), checked but not covered by the pin: ${shown}`);
  }
  return lines.join('\n');
}

/** The inspection as text, one fact per line (what `enclavify inspect` prints without --json). */
export function formatInspection(i: ImageInspection): string {
  const l: string[] = [];
  l.push(`Image:        ${i.image}`, `Digest:       ${i.digest}`, `Runtime:      ${i.runtime}`);
  l.push(`Entrypoint:   ${JSON.stringify(i.entrypoint)}${i.cmd.length ? `  Cmd: ${JSON.stringify(i.cmd)}` : ''}`);
  const g = i.gramine;
  if (g) {
    l.push(`Manifest:     ${g.manifestPath} (sha256 ${g.manifestSha256})${g.manifestSgxPath ? `, ${g.manifestSgxPath}` : ''}`);
    if (g.loader) l.push(`Loader:       gramine-${g.loader} (ENCLAVIFY_GRAMINE_LOADER=sgx|direct overrides)`);
    l.push(`Enclave:      ${g.libosEntrypoint ?? '?'} argv ${JSON.stringify(g.argv ?? [])}${g.startDir ? ` in ${g.startDir}` : ''}`);
    l.push(`Settings:     size ${g.enclaveSize ?? 'default'}, ${g.maxThreads ?? 'default'} threads, debug ${g.debug ?? false}, EDMM ${g.edmm ?? false}, attestation ${g.remoteAttestation ?? 'none'}`);
    l.push(`Files:        ${g.trustedEntries} trusted entries, ${g.allowedEntries} allowed entries`);
    for (const m of g.mounts) l.push(`Mount:        ${m.path} (${m.type}${m.keyName ? `, key ${m.keyName}` : ''})`);
    if (g.sigtermInjection) l.push('SIGTERM:      passed to the program once (sys.enable_sigterm_injection)');
    if (g.hostEnv.length) l.push(`Host env:     ${g.hostEnv.join(', ')} (taken from the host at run time, not measured)`);
    if (g.insecureKeyNames.length) l.push(`WARNING:      INSECURE development keys in the manifest (fs.insecure__keys: ${g.insecureKeyNames.join(', ')}): never deploy this image`);
    for (const w of g.warnings) l.push(`Warning:      ${w}`);
    const s = g.sigstruct;
    if (s) {
      l.push(`MRENCLAVE:    ${s.mrenclave}`, `MRSIGNER:     ${s.mrsigner}`, `ISVPRODID:    ${s.isvProdId}`, `ISVSVN:       ${s.isvSvn}`, `DEBUG:        ${s.debug}`, `Date:         ${s.date}`);
      l.push(`Signature:    ${s.signatureValid ? 'valid' : 'INVALID'}${s.mrenclaveMatchesImage === undefined ? '' : s.mrenclaveMatchesImage ? '; MRENCLAVE matches the .manifest.sgx and PAL in the image' : '; MRENCLAVE does NOT match the image'}`);
    } else l.push('Signature:    none (unsigned: gramine-sgx needs .manifest.sgx and .sig; run enclavify sign)');
    for (const p of g.problems) l.push(`Problem:      ${p}`);
  }
  if (i.scone) {
    l.push(`SCONE config: ${i.scone.configId ?? '(none)'}`, `CAS:          ${i.scone.cas ?? '(default)'}`, `LAS:          ${i.scone.las ?? '(default)'}`);
  }
  if (i.protection) {
    l.push(`Protection:   ${i.protection.path} (sha256 ${i.protection.sha256})`);
    for (const r of i.protection.regions) l.push(`Region:       ${r.path} (key ${r.name}${r.files !== undefined ? `, ${r.files} files` : ''})`);
    for (const h of i.protection.hostPaths) l.push(`Host path:    ${h}`);
    if (i.protection.files) l.push(`Classes:      ${i.protection.files.encrypted} encrypted, ${i.protection.files.authenticated} authenticated, ${i.protection.files.plain} plain files`);
  } else if (i.runtime !== 'native') l.push('Protection:   no protection manifest (no encrypted regions)');
  return l.join('\n');
}
