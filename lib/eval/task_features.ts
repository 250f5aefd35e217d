/**
 * Per-sample, per-layer mean-pooled activations of labelled calibration samples (one dense
 * prefill each): the hidden state after every layer and the FFN activation (input of
 * down_proj) over the whole text, and the hidden state over the prompt's tokens only, which is
 * what the router sees. Input of the clustering analysis (tools/task_clusters.ts).
 */

import { encodeSample } from "../calibrate/collect_stats.ts";
import type { CalibrationSample } from "../calibrate/calibration_data.ts";
import { ProgressBar } from "../calibrate/progress.ts";
import type { Model } from "../model/model.ts";
import { Sequence } from "../model/sequence.ts";
import type { Tokenizer } from "../text/tokenizer.ts";

/** Pooled features of N samples. */
export interface TaskFeatures {
  /** Task label of each sample (index into `tasks`). */
  labels: Int32Array; // [N]
  tasks: string[];
  /** per layer: hidden state after the layer, mean over the text's tokens `[N, H]` */
  hidden: Float64Array[];
  /** per layer: FFN activation, mean over the text's tokens `[N, I]` */
  ffn: Float64Array[];
  /** per layer: hidden state after the layer, mean over the prompt's tokens `[N, H]` */
  promptHidden: Float64Array[];
  /** Tokens run. */
  tokens: number;
}

/** Add the mean over rows [0, t) of `a` `[T, D]` into `out` at row `row` (`[N, D]`). */
function poolInto(a: Float32Array, t: number, d: number, out: Float64Array, row: number): void {
  const o = out.subarray(row * d, (row + 1) * d);
  for (let r = 0; r < t; r++) {
    for (let k = 0; k < d; k++) o[k] += a[r * d + k] / t;
  }
}

/** Run every sample of `groups` (task -> samples) densely and pool its activations. */
export async function collectTaskFeatures(
  model: Model,
  tok: Tokenizer,
  groups: Map<string, CalibrationSample[]>,
  opts: { maxTokens: number; progress?: boolean },
): Promise<TaskFeatures> {
  const { numLayers: L, hiddenSize: H, intermediateSize: I } = model.config;
  const tasks = [...groups.keys()];
  const samples = tasks.flatMap((t, ti) => groups.get(t)!.map((s) => ({ s, ti })));
  const N = samples.length;
  const hidden = Array.from({ length: L }, () => new Float64Array(N * H));
  const ffn = Array.from({ length: L }, () => new Float64Array(N * I));
  const promptHidden = Array.from({ length: L }, () => new Float64Array(N * H));
  const labels = new Int32Array(N);
  const bar = new ProgressBar(N, "features", opts.progress ?? true);
  let tokens = 0;
  for (const [i, { s, ti }] of samples.entries()) {
    labels[i] = ti;
    const ids = encodeSample(tok, s.text, opts.maxTokens);
    const pids = encodeSample(tok, s.prompt, opts.maxTokens);
    const isPrefix = pids.length <= ids.length && pids.every((v, k) => v === ids[k]);
    const T = ids.length;
    const seq = new Sequence(model, { maxTokens: T });
    try {
      await seq.prefill(ids, {
        capture: {
          onLayer(l, a) {
            poolInto(a.mlpAct, T, I, ffn[l], i);
          },
          onHidden(l, h) {
            poolInto(h, T, H, hidden[l], i);
            if (isPrefix) poolInto(h, pids.length, H, promptHidden[l], i);
          },
        },
      });
    } finally {
      seq.free();
    }
    tokens += T;
    if (!isPrefix) {
      const ps = new Sequence(model, { maxTokens: pids.length });
      try {
        await ps.prefill(pids, {
          capture: {
            onLayer() {},
            onHidden(l, h) {
              poolInto(h, pids.length, H, promptHidden[l], i);
            },
          },
        });
      } finally {
        ps.free();
      }
      tokens += pids.length;
    }
    bar.tick(i + 1, tasks[ti]);
  }
  return { labels, tasks, hidden, ffn, promptHidden, tokens };
}
