/**
 * The trained router tested on prompts of another file (`--router-eval`, e.g. the evaluation
 * split): accuracy over all of them and over the phrasings held out of model training.
 */

import type { Router } from "../masks/router.ts";
import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import type { RouterReport } from "./build_masks.ts";
import { loadCalibrationFiles, samplesByTask } from "./calibration_data.ts";
import { encodeSample } from "./collect_stats.ts";
import { evaluateRouter } from "./router.ts";

/**
 * Route every prompt of `file` whose task the router knows (features read after the router's
 * layer of a head pass over at most `maxTokens` tokens) and score the choices; logs a summary.
 */
export async function evaluateRouterOnFile(
  model: Model,
  tok: Tokenizer,
  router: Router,
  file: string,
  maxTokens: number,
  seed: number,
  log: (s: string) => void,
): Promise<NonNullable<RouterReport["extraEval"]>> {
  const H = model.config.hiddenSize;
  const rows = (await loadCalibrationFiles([file])).filter((r) => router.tasks.includes(r.task));
  const g = samplesByTask(rows, Number.MAX_SAFE_INTEGER, seed);
  const samples = [...g.values()].flat();
  const x = new Float32Array(samples.length * H); // [N, H] row i = sample i's feature
  for (const [i, s] of samples.entries()) {
    const seq = new Sequence(model, { maxTokens });
    x.set(await seq.prefillHead(encodeSample(tok, s.prompt, maxTokens), router.layer), i * H);
    seq.free();
  }
  const y = Int32Array.from(samples, (s) => router.tasks.indexOf(s.task));
  const ev = evaluateRouter(router, x, y);
  const hoIdx = [...samples.keys()].filter((i) => samples[i].heldOutPhrasing);
  const hx = new Float32Array(hoIdx.length * H); // [N_ho, H]
  hoIdx.forEach((i, r) => hx.set(x.subarray(i * H, (i + 1) * H), r * H));
  const hoEv = hoIdx.length
    ? evaluateRouter(router, hx, Int32Array.from(hoIdx, (i) => y[i]))
    : null;
  log(
    `router on ${file}: ${(ev.accuracy * 100).toFixed(1)}% of ${samples.length} ` +
      `(served their task's mask: ${(ev.routedAccuracy * 100).toFixed(1)}%)` +
      (hoEv === null
        ? ""
        : `, phrasings held out of model training ${(hoEv.accuracy * 100).toFixed(1)}% ` +
          `(served: ${(hoEv.routedAccuracy * 100).toFixed(1)}%) of ${hoIdx.length}`),
  );
  return {
    file,
    samples: samples.length,
    accuracy: ev.accuracy,
    routedAccuracy: ev.routedAccuracy,
    heldOutPhrasingSamples: hoIdx.length,
    heldOutPhrasingAccuracy: hoEv?.accuracy ?? null,
    heldOutPhrasingRoutedAccuracy: hoEv?.routedAccuracy ?? null,
    confusion: ev.confusion,
    servedGeneric: ev.servedGeneric,
    lowConfidence: ev.lowConfidence,
  };
}
