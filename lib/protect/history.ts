/**
 * Build history that names encrypted regions. An image config's `history` keeps each build step's
 * command line (`created_by`, e.g. `/bin/sh -c echo s3cret > /app/data/pw`) in plaintext, in the
 * config blob, for anyone who can pull the image: encrypting the region's files does not hide what
 * a RUN command wrote there literally. fileClassify warns about such entries; encryptFS can replace
 * them (`scrubHistory`).
 *
 * Detection is by path: an absolute path in the text that the rules put in an encrypted region.
 * Relative paths (`cd /app && echo x > data/pw`), variables and shell tricks are not understood:
 * the warning is a prompt to look, not a guarantee.
 */
import type { ImageConfig } from '../oci/types.js';
import { matchRules, type Rule } from './rules.js';

/** A history entry that names a path in an encrypted region. */
export interface HistoryMention {
  /** Index in `config.history` (0-based, empty_layer entries included). */
  index: number;
  /** Which fields name it. */
  fields: Array<'created_by' | 'comment'>;
  /** The encrypted regions (rule paths) named. */
  regions: string[];
}

/** Absolute-path-looking tokens of a command line, normalised (no `.`, `//` or trailing `/`). */
function pathTokens(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\/[^\s'"`;&|()<>$,=:{}]*/g)) {
    const parts = m[0].split('/').filter((x) => x !== '' && x !== '.');
    if (parts.includes('..')) continue;
    out.push('/' + parts.join('/'));
  }
  return out;
}

/** The encrypted regions (rule paths) a text names. */
function regionsNamed(text: string | undefined, rules: readonly Rule[]): string[] {
  if (!text) return [];
  const out = new Set<string>();
  for (const t of pathTokens(text)) {
    const m = matchRules(rules, t);
    if (m?.class === 'encrypted') out.add(m.rule.path);
  }
  return [...out];
}

/** The history entries of `config` whose `created_by` or `comment` names a path in an encrypted region. */
export function historyMentions(config: ImageConfig, rules: readonly Rule[]): HistoryMention[] {
  const out: HistoryMention[] = [];
  (config.history ?? []).forEach((h, index) => {
    const by = regionsNamed(h.created_by, rules);
    const comment = regionsNamed(h.comment, rules);
    if (!by.length && !comment.length) return;
    const fields: HistoryMention['fields'] = [];
    if (by.length) fields.push('created_by');
    if (comment.length) fields.push('comment');
    out.push({ index, fields, regions: [...new Set([...by, ...comment])].sort() });
  });
  return out;
}

/**
 * The warning for history mentions (one line, never the text itself: it may hold the secret), or
 * undefined when there are none.
 */
export function historyWarning(mentions: readonly HistoryMention[]): string | undefined {
  if (!mentions.length) return undefined;
  const regions = [...new Set(mentions.flatMap((m) => m.regions))].sort();
  const which = mentions.map((m) => m.index + 1).join(', ');
  return (
    `image history entr${mentions.length > 1 ? 'ies' : 'y'} ${which} (build commands, kept in plaintext in the image config) ` +
    `name encrypted region${regions.length > 1 ? 's' : ''} ${regions.join(', ')}: if a build step wrote secret data there literally ` +
    `(RUN echo ... > FILE), anyone with the image can read it in the history; rebuild without it, or convert with --scrub-history (encryptFS scrubHistory) to replace those entries`
  );
}

/**
 * Replaces the `created_by` (and `comment`) of the mentioned history entries in place with a note
 * naming the regions; returns the indexes changed. Layers and their order are untouched.
 */
export function scrubHistory(config: ImageConfig, mentions: readonly HistoryMention[]): number[] {
  const h = config.history ?? [];
  for (const m of mentions) {
    const e = h[m.index];
    if (!e) continue;
    const note = `enclavify: build step text removed (it named encrypted region ${m.regions.join(', ')})`;
    if (m.fields.includes('created_by')) e.created_by = note;
    if (m.fields.includes('comment')) e.comment = note;
  }
  return mentions.map((m) => m.index);
}
