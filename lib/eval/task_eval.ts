/**
 * Judging a model (under some mask choice) on the task suite's held-out rows: greedy answers
 * through the chat template, checked by each task's own checker, and perplexity on the
 * general-text rows. The mask is chosen per row by a callback, so the same loop measures the
 * dense model, one fixed mask, each task's own mask, or the router's choice.
 */

import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import { logSoftmaxAt } from "./loglik.ts";
import { type MaskPicker, routeFeature, startSequence } from "./mask_picker.ts";
import { argmax } from "../generate/sampler.ts";
import { GENERAL_TASK, type SuiteRow, taskByName } from "../tasks/suite.ts";
import type { Tokenizer } from "../text/tokenizer.ts";

/** How a row's mask is chosen (lib/eval/mask_picker.ts), re-exported for callers of evaluateRows. */
export type { MaskPicker };

/** Accuracy of one task. */
export interface TaskScore {
  ok: number;
  n: number;
  /** Rows whose prompt phrasing was never seen in training or calibration. */
  heldOk: number;
  heldN: number;
}

/** Result of one evaluation. */
export interface EvalResult {
  perTask: Record<string, TaskScore>;
  /** Unweighted mean of the per-task accuracies. */
  meanAcc: number;
  minAcc: number;
  /** Perplexity on the general-text rows (NaN when there are none). */
  generalPpl: number;
  generatedTokens: number;
  seconds: number;
}

/** Greedy-generate every task row and score it; perplexity on general rows. */
export async function evaluateRows(
  model: Model,
  tok: Tokenizer,
  rows: SuiteRow[],
  pick: MaskPicker,
  opts: { maxNew?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<EvalResult> {
  const maxNew = opts.maxNew ?? 24;
  const eos = new Set(tok.eosTokenIds);
  const perTask: Record<string, TaskScore> = {};
  const V = model.config.vocabSize;
  let nll = 0, nTok = 0, gen = 0, done = 0;
  const t0 = performance.now();
  for (const r of rows) {
    if (r.task === GENERAL_TASK) {
      const ids = [
        ...(tok.bosTokenId !== null ? [tok.bosTokenId] : []),
        ...tok.encode(r.text, { addSpecialTokens: false }),
      ];
      const seq = new Sequence(model, { maxTokens: ids.length + 1 });
      if (pick.kind === "fixed") seq.setMask(pick.mask);
      else if (pick.kind === "per-task") seq.setMask(pick.masks.get(r.task) ?? pick.fallback);
      else seq.setMask(pick.choose(await routeFeature(model, Int32Array.from(ids), pick.layer)));
      const logits = await seq.prefill(Int32Array.from(ids.slice(0, -1)), { allLogits: true });
      for (let t = 0; t + 1 < ids.length; t++) nll -= logSoftmaxAt(logits, t * V, V, ids[t + 1]);
      nTok += ids.length - 1;
      seq.free();
    } else {
      const text = tok.applyChatTemplate([{ role: "user", content: r.prompt! }], {
        addGenerationPrompt: true,
      });
      const ids = tok.encode(text, { addSpecialTokens: false });
      const { seq, logits: first } = await startSequence(
        model,
        pick,
        r.task,
        Int32Array.from(ids),
        ids.length + maxNew + 1,
      );
      let logits = first;
      const out: number[] = [];
      for (let i = 0; i < maxNew; i++) {
        const next = argmax(logits);
        if (eos.has(next)) break;
        out.push(next);
        if (i + 1 < maxNew) logits = await seq.decode(next);
      }
      seq.free();
      gen += out.length;
      const ok = taskByName(r.task).check(tok.decode(out, { skipSpecialTokens: true }), r.answer!);
      const s = perTask[r.task] ??= { ok: 0, n: 0, heldOk: 0, heldN: 0 };
      s.ok += ok ? 1 : 0;
      s.n++;
      if (r.held_out_phrasing) {
        s.heldOk += ok ? 1 : 0;
        s.heldN++;
      }
    }
    opts.onProgress?.(++done, rows.length);
  }
  const accs = Object.values(perTask).map((s) => s.ok / s.n);
  return {
    perTask,
    meanAcc: accs.reduce((a, b) => a + b, 0) / Math.max(1, accs.length),
    minAcc: accs.length ? Math.min(...accs) : NaN,
    generalPpl: nTok ? Math.exp(nll / nTok) : NaN,
    generatedTokens: gen,
    seconds: (performance.now() - t0) / 1000,
  };
}
