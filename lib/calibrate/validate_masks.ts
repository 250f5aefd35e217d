/**
 * Validated task masks (beyond the paper; docs/design.md, Masks): at calibration each task's
 * own SEAP mask is compared with the generic mask at the same share on held-out samples of
 * the task (rows not used for the statistics), on the held-out answers: how many of them the
 * mask reproduces exactly under greedy choice (teacher-forced, so one forward pass per
 * sample scores both this and the log-likelihood) and their mean log-likelihood per token.
 * Where the task's mask loses ({@link MIN_WINS} more answers right with the generic mask),
 * the task's scores are blended with the generic scores at the weight of a small grid that
 * does best on the held-out part, or the generic mask is taken when it stays best. The chosen
 * weight goes to `buildMasks` (`validated`).
 *
 * Why answers reproduced and not the log-likelihood alone: on the default model, choosing by
 * the held-out answers' log-likelihood (a loss = 0.01 nats per token) replaced reverse@0.5
 * and count_letter@0.2 by the generic mask, which answers 25 and 20 points fewer of the
 * evaluation split's rows right than the task's own mask (20 rows per task; 16.7 and 13.3
 * points on 60 rows per task); the log-likelihood is recorded and breaks ties.
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
 * How many more held-out answers the generic mask must reproduce than a task's own mask for
 * the task mask to count as losing: one answer of a few dozen is noise.
 */
export const MIN_WINS = 2;

/**
 * For a task of plain text (no prompt/answer split, e.g. "general"), where no sample is ever
 * reproduced whole: the margin in nats per token by which the generic mask's log-likelihood
 * must beat the task's own mask's for a loss.
 */
export const MIN_NLL_GAIN = 0.01;

/** Held-out score of one candidate mask. */
export interface HeldOutScore {
  /** Mean negative log-likelihood per answer token (nats). */
  nll: number;
  /** Share of held-out answers reproduced exactly by greedy choice. */
  accuracy: number;
  /** Answers reproduced. */
  correct: number;
}

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
  /** The task's own mask (the paper's). */
  own: HeldOutScore;
  /** The generic mask. */
  generic: HeldOutScore;
  /** Blends tried (only when the task's mask lost), by generic weight. */
  blends: Record<string, HeldOutScore>;
  /** "task": own mask kept; "blend": blended scores; "generic": the generic mask. */
  choice: "task" | "blend" | "generic";
  /** Weight of the generic scores in the served mask (0 task, 1 generic). */
  genericWeight: number;
  /** Score of the chosen candidate. */
  chosen: HeldOutScore;
}

/** Options of {@link validateTaskMasks}. */
export interface ValidateOptions {
  /** Generic weights tried when the task's mask loses (default {@link BLEND_GRID}). */
  grid?: number[];
  /** More answers the generic mask must get right for a loss (default {@link MIN_WINS}). */
  minWins?: number;
  progress?: boolean;
}

/**
 * For every task with held-out samples and every share: held-out answer NLL of the task's
 * own mask and of the generic mask; when the generic mask reproduces at least `minWins` more
 * answers (for plain-text tasks: has a log-likelihood better by {@link MIN_NLL_GAIN}), also of
 * blends at `grid`, and the best of the generic mask and the blends is
 * chosen (most answers reproduced, then lowest NLL); otherwise the task's own mask is kept.
 */
export async function validateTaskMasks(
  model: Model,
  set: ScoreSet,
  heldOut: Map<string, ScoredSequence[]>,
  shares: number[],
  opts: ValidateOptions = {},
): Promise<TaskValidation[]> {
  const grid = opts.grid ?? BLEND_GRID;
  const minWins = opts.minWins ?? MIN_WINS;
  const tasks = set.tasks.filter((t) => (heldOut.get(t)?.length ?? 0) > 0);
  const bar = new ProgressBar(tasks.length * shares.length, "validate", opts.progress ?? true);
  const out: TaskValidation[] = [];
  let tokens = 0;
  const score = async (b: BuiltMask, seqs: ScoredSequence[]): Promise<HeldOutScore> => {
    const r = await sequenceNll(model, seqs, b.mask);
    tokens = r.tokens;
    return {
      nll: r.nll / Math.max(1, r.tokens),
      accuracy: r.exact / Math.max(1, r.sequences),
      correct: r.exact,
    };
  };
  const better = (a: HeldOutScore, b: HeldOutScore) =>
    a.correct > b.correct || (a.correct === b.correct && a.nll < b.nll);
  // plain text: every token scored, never reproduced whole: the log-likelihood decides
  const loses = (own: HeldOutScore, gen: HeldOutScore, plain: boolean) =>
    plain ? gen.nll < own.nll - MIN_NLL_GAIN : gen.correct >= own.correct + minWins;
  let done = 0;
  for (const share of shares) {
    const generic = buildMaskAt(set, { method: "seap-generic", share });
    for (const task of tasks) {
      const seqs = heldOut.get(task)!;
      const own = await score(buildMaskAt(set, { method: "seap", task, share }), seqs);
      const gen = await score(generic, seqs);
      const blends: Record<string, HeldOutScore> = {};
      let choice: TaskValidation["choice"] = "task";
      let genericWeight = 0;
      let best = own;
      if (loses(own, gen, seqs.every((q) => q.from <= 1))) {
        choice = "generic";
        genericWeight = 1;
        best = gen;
        for (const w of grid) {
          const r = await score(buildMaskAt(set, { method: "seap", task, share, blend: w }), seqs);
          blends[String(w)] = r;
          if (better(r, best)) {
            best = r;
            choice = "blend";
            genericWeight = w;
          }
        }
      }
      out.push({
        task,
        share,
        samples: seqs.length,
        tokens,
        own,
        generic: gen,
        blends,
        choice,
        genericWeight,
        chosen: best,
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
