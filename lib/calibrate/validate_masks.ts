/**
 * Validated task masks (beyond the paper; docs/design.md, Masks): at calibration each task's
 * own SEAP mask is compared with the generic mask at the same share on held-out samples of
 * the task (rows not used for the statistics), by the mean log-likelihood of the held-out
 * answers. Where the task's mask loses by more than a margin ({@link MIN_GAIN}), the task's
 * scores are blended with the generic scores at the weight of a small grid that does best on
 * the held-out part, or the generic mask is taken when it stays best. The chosen weight goes
 * to `buildMasks` (`validated`).
 */

import type { Model } from "../model/model.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import type { CalibrationSample } from "./calibration_data.ts";
import { encodeSample } from "./collect_stats.ts";
import { buildMaskAt, type BuiltMask, type ScoreSet, sparsityTag } from "./mask_methods.ts";
import { type ScoredSequence, sequenceNll } from "./perplexity.ts";
import { ProgressBar } from "./progress.ts";

/** Generic-score weights tried when a task's own mask loses (0 and 1 are always candidates). */
export const BLEND_GRID = [0.25, 0.5, 0.75];

/**
 * Margin (nats per held-out answer token) by which the generic mask must beat a task's own
 * mask before the task mask is repaired: differences below it (e.g. 1e-4 on answers both
 * masks predict almost surely) are noise of a few dozen samples, not a loss.
 */
export const MIN_GAIN = 0.01;

/**
 * Token ids of held-out samples, scored on the answer: tokens after the prompt when the
 * prompt's ids are a strict prefix of the text's, else every token (plain-text rows).
 */
export function heldOutSequences(
  tok: Tokenizer,
  samples: CalibrationSample[],
  maxTokens: number,
): ScoredSequence[] {
  return samples.map((s) => {
    const ids = encodeSample(tok, s.text, maxTokens);
    const pids = encodeSample(tok, s.prompt, maxTokens);
    const prefix = pids.length < ids.length && pids.every((v, i) => v === ids[i]);
    return { ids, from: prefix ? pids.length : 1 };
  });
}

/** Held-out result of one task at one share. */
export interface TaskValidation {
  task: string;
  /** Requested share of decoder parameters removed. */
  share: number;
  /** Held-out samples and the answer tokens scored. */
  samples: number;
  tokens: number;
  /** Mean negative log-likelihood per held-out answer token (nats), per candidate. */
  nll: {
    /** The task's own mask (the paper's). */
    task: number;
    /** The generic mask. */
    generic: number;
    /** Blends tried (only when the task's mask lost), by generic weight. */
    blends: Record<string, number>;
  };
  /** "task": own mask kept; "blend": blended scores; "generic": the generic mask. */
  choice: "task" | "blend" | "generic";
  /** Weight of the generic scores in the served mask (0 task, 1 generic). */
  genericWeight: number;
  /** Mean NLL of the chosen candidate. */
  chosenNll: number;
}

/** Options of {@link validateTaskMasks}. */
export interface ValidateOptions {
  /** Generic weights tried when the task's mask loses (default {@link BLEND_GRID}). */
  grid?: number[];
  /** Margin of a loss, nats per answer token (default {@link MIN_GAIN}). */
  minGain?: number;
  progress?: boolean;
}

/**
 * For every task with held-out samples and every share: held-out answer NLL of the task's
 * own mask and of the generic mask; when the generic mask's is lower by more than `minGain`,
 * also of blends at `grid`, and the candidate with the lowest NLL among the generic mask and
 * the blends is chosen; otherwise the task's own mask is kept.
 */
export async function validateTaskMasks(
  model: Model,
  set: ScoreSet,
  heldOut: Map<string, ScoredSequence[]>,
  shares: number[],
  opts: ValidateOptions = {},
): Promise<TaskValidation[]> {
  const grid = opts.grid ?? BLEND_GRID;
  const minGain = opts.minGain ?? MIN_GAIN;
  const tasks = set.tasks.filter((t) => (heldOut.get(t)?.length ?? 0) > 0);
  const bar = new ProgressBar(tasks.length * shares.length, "validate", opts.progress ?? true);
  const out: TaskValidation[] = [];
  const mean = async (b: BuiltMask, seqs: ScoredSequence[]) => {
    const r = await sequenceNll(model, seqs, b.mask);
    return { nll: r.nll / Math.max(1, r.tokens), tokens: r.tokens };
  };
  let done = 0;
  for (const share of shares) {
    const generic = buildMaskAt(set, { method: "seap-generic", share });
    for (const task of tasks) {
      const seqs = heldOut.get(task)!;
      const own = await mean(buildMaskAt(set, { method: "seap", task, share }), seqs);
      const gen = await mean(generic, seqs);
      const blends: Record<string, number> = {};
      let choice: TaskValidation["choice"] = "task";
      let genericWeight = 0;
      let best = own.nll;
      if (gen.nll < own.nll - minGain) {
        choice = "generic";
        genericWeight = 1;
        best = gen.nll;
        for (const w of grid) {
          const b = buildMaskAt(set, { method: "seap", task, share, blend: w });
          const r = await mean(b, seqs);
          blends[String(w)] = r.nll;
          if (r.nll < best) {
            best = r.nll;
            choice = "blend";
            genericWeight = w;
          }
        }
      }
      out.push({
        task,
        share,
        samples: seqs.length,
        tokens: own.tokens,
        nll: { task: own.nll, generic: gen.nll, blends },
        choice,
        genericWeight,
        chosenNll: best,
      });
      bar.tick(++done, `${task}@${sparsityTag(share)}`);
    }
  }
  return out;
}

/** The `validated` field of the mask parameters from validation results. */
export function validatedWeights(v: TaskValidation[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of v) (out[sparsityTag(r.share)] ??= {})[r.task] = r.genericWeight;
  return out;
}
