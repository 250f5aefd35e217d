/**
 * Bias compensation checked on held-out text (`--ppl-eval`): the perplexity of the dense model,
 * and of each compensated mask (the generic SEAP mask and FLAP) with and without its bias
 * vectors.
 */

import type { Model } from "../model/model.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { loadCalibrationFiles, samplesByTask } from "./calibration_data.ts";
import { encodeSample } from "./collect_stats.ts";
import { perplexity, withoutBias } from "./perplexity.ts";
import type { WrittenMask } from "./write_mask_files.ts";

/** Which held-out text to score. */
export interface BiasPerplexityOptions {
  /** JSONL of held-out text. */
  file: string;
  /** Only rows of this task (e.g. "general"). */
  task?: string;
  /** Rows to use (default 32), taken round-robin over the tasks. */
  samples?: number;
  maxTokens: number;
  seed: number;
}

/**
 * Perplexity rows `{mask, withBias, withoutBias, samples}`: "dense" first, then each mask of
 * `masks` that compensates with a bias; logs one line per row.
 */
export async function biasCompensationPerplexity(
  model: Model,
  tok: Tokenizer,
  masks: WrittenMask[],
  o: BiasPerplexityOptions,
  log: (s: string) => void,
): Promise<Record<string, unknown>[]> {
  const ppl: Record<string, unknown>[] = [];
  const rows = (await loadCalibrationFiles([o.file])).filter((r) => !o.task || r.task === o.task);
  if (rows.length === 0) throw new Error(`${o.file}: no rows of task "${o.task}"`);
  const want = o.samples ?? 32;
  const groups = [...samplesByTask(rows, want, o.seed).values()];
  const texts: { text: string }[] = []; // round-robin over tasks
  for (let i = 0; texts.length < want && groups.some((g) => i < g.length); i++) {
    for (const g of groups) if (i < g.length && texts.length < want) texts.push(g[i]);
  }
  const seqs = texts.map((s) => encodeSample(tok, s.text, o.maxTokens));
  const dense = await perplexity(model, seqs, null);
  ppl.push({ mask: "dense", withBias: dense, withoutBias: dense, samples: seqs.length });
  for (const e of masks) {
    if (!(e.method === "seap-generic" || e.method === "flap")) continue;
    const m = e.built.mask;
    const hasBias = m.layers.some((l) => l.biasAttn || l.biasFfn);
    if (!hasBias) continue;
    ppl.push({
      mask: m.name,
      withBias: await perplexity(model, seqs, m),
      withoutBias: await perplexity(model, seqs, withoutBias(m)),
      samples: seqs.length,
    });
  }
  for (const p of ppl) {
    log(
      `ppl ${p.mask}: with bias ${Number(p.withBias).toFixed(4)}, without ${
        Number(p.withoutBias).toFixed(4)
      }`,
    );
  }
  return ppl;
}
