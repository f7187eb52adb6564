/**
 * fileClassify: the transform that decides, for every regular file of the image, whether it is
 * encrypted, authenticated or left plain. It changes nothing in the image; encryptFS, the runtimes
 * and the policies read its result from `draft.state` (key {@link CLASSIFICATION}).
 */
import { classifyImage, type ClassificationReport, type ClassifyRules } from '../protect/classify.js';
import type { Transform } from './pipeline.js';
import { CLASSIFICATION } from './state.js';

/** Options of {@link fileClassify}: the protection rules (see {@link ClassifyRules}). */
export type FileClassifyOptions = ClassifyRules;

/** Report key of this transform in `draft.report`. */
export const CLASSIFY_REPORT = 'fileClassify';

/**
 * Classifies the files of the image (rules: `dirs` encrypted, `plain`, `plainFiles`, `hostPaths`,
 * `authenticated`; longest path prefix wins; defaults in docs/protection.md). The entrypoint's
 * startup files stay authenticated; a rule that would encrypt one is refused. Sets
 * `draft.state[CLASSIFICATION]` and `draft.report.fileClassify` (a {@link ClassificationReport}).
 *
 * ```ts
 * await pipeline(image, [fileClassify({ dirs: ['/app/data'] }), encryptFS()]);
 * ```
 */
export function fileClassify(options: FileClassifyOptions = {}): Transform {
  return {
    name: 'fileClassify',
    async apply(draft) {
      const fs = await draft.rootfs();
      const { classification, report } = await classifyImage({ rootfs: fs, config: draft.config, rules: options });
      draft.state.set(CLASSIFICATION, classification);
      draft.report[CLASSIFY_REPORT] = report;
      // Loud: the history is readable by anyone with the image, whatever the report's fate.
      for (const w of report.warnings) if (w.startsWith('image history')) draft.warn(w, { phase: 'classify' });
      const t = report.totals;
      draft.progress({ phase: 'classify', message: `fileClassify: ${t.encrypted.files} encrypted, ${t.authenticated.files} authenticated, ${t.plain.files} plain files; ${classification.startup.length} startup files` });
    },
  };
}

export type { ClassificationReport };
