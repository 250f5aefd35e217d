/**
 * `deno task clusters`: do calibration samples cluster by task, layer by layer? The paper's
 * motivating evidence (docs/design.md, Router). Runs each sample densely, mean-pools the hidden
 * state after every layer and the FFN activation over the text, and the hidden state over the
 * prompt alone (the router's feature), then writes per layer the mean silhouette (cosine
 * distance; with shuffled labels as the chance level) and 2-D PCA projections for a few layers.
 *
 *   deno run -A tools/task_clusters.ts [--model DIR] [--data FILE.jsonl] [--per-task 24]
 *     [--max-tokens 96] [--backend wasm] [--seed 0] [--router-layer M] [--out DIR]
 *
 * Writes clusters.{json,md}, silhouette.svg, projection_prompt.svg, projection_ffn.svg to
 * --out (default tmp/task_clusters, ignored by git).
 */

import { parseArgs } from "node:util";
import { type BackendChoice, selectBackend } from "../lib/backends/select_backend.ts";
import { loadCalibrationFiles, samplesByTask } from "../lib/calibrate/calibration_data.ts";
import { formatDuration } from "../lib/calibrate/progress.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { cosineDistances, pca2, silhouette } from "../lib/eval/cluster_separation.ts";
import { scatterPanelsSvg } from "../lib/eval/cluster_plots_svg.ts";
import { lineChartSvg } from "../lib/eval/line_chart_svg.ts";
import { collectTaskFeatures } from "../lib/eval/task_features.ts";
import { loadModel } from "../lib/model/model.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { rng } from "../lib/util/seeded_rng.ts";

const { values: a } = parseArgs({
  options: {
    model: { type: "string", default: DEFAULT_MODEL_DIR },
    data: { type: "string" },
    "per-task": { type: "string", default: "24" },
    "max-tokens": { type: "string", default: "96" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "0" },
    "router-layer": { type: "string" },
    out: { type: "string", default: "tmp/task_clusters" },
    help: { type: "boolean", default: false },
  },
});
if (a.help) {
  console.log(
    "deno task clusters [--model DIR] [--data FILE] [--per-task N] [--max-tokens N] " +
      "[--backend B] [--seed S] [--router-layer M] [--out DIR]",
  );
  Deno.exit(0);
}
const dir = a.model!;
const perTask = Number(a["per-task"]);
const seed = Number(a.seed);
const log = (s: string) => console.error(s);
const backend = await selectBackend(a.backend as BackendChoice, { log });
const model = await loadModel(dir, { backend });
const tok = await Tokenizer.load(dir);
const L = model.config.numLayers;

/** The router's layer m from the model's mask set, when there is one (feature after m - 1). */
async function routerLayerOf(): Promise<number | null> {
  if (a["router-layer"] !== undefined) return Number(a["router-layer"]);
  try {
    const m = JSON.parse(await Deno.readTextFile(`masks/${model.name}/manifest.json`));
    return typeof m?.router?.layer === "number" ? m.router.layer : null;
  } catch {
    return null;
  }
}
const routerLayer = await routerLayerOf();

const rows = await loadCalibrationFiles([a.data ?? `${dir}/calibration.jsonl`]);
const groups = samplesByTask(rows, perTask, seed);
const t0 = performance.now();
const f = await collectTaskFeatures(model, tok, groups, {
  maxTokens: Number(a["max-tokens"]),
});
const seconds = (performance.now() - t0) / 1000;
const N = f.labels.length;
log(
  `features: ${N} samples, ${f.tasks.length} tasks, ${f.tokens} tokens in ${
    formatDuration(seconds)
  }`,
);

const shuffled = Int32Array.from(f.labels);
const rand = rng(seed + 1);
for (let i = N - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
}

const kinds = ["promptHidden", "hidden", "ffn"] as const;
const perLayer = Array.from({ length: L }, (_, l) => {
  const row: Record<string, number> = { layer: l };
  for (const k of kinds) {
    const dist = cosineDistances(f[k][l], N);
    row[k] = silhouette(dist, f.labels);
    row[`${k}Shuffled`] = silhouette(dist, shuffled);
  }
  return row;
});

const shown = [...new Set([0, routerLayer !== null ? routerLayer - 1 : 1, L >> 1, L - 1])]
  .filter((l) => l >= 0 && l < L).sort((x, y) => x - y);
const projection = (k: "promptHidden" | "ffn") =>
  shown.map((l) => {
    const p = pca2(f[k][l], N);
    return {
      title: `after layer ${l} (PC1 ${(p.explained[0] * 100).toFixed(0)}%, PC2 ${
        (p.explained[1] * 100).toFixed(0)
      }%)`,
      points: p.points,
    };
  });

await Deno.mkdir(a.out!, { recursive: true });
const layerPoints = (k: string) => perLayer.map((r) => [r.layer, r[k]] as [number, number]);
const routerNote = routerLayer !== null && routerLayer > 0
  ? `; router feature after layer ${routerLayer - 1}`
  : "";
await Deno.writeTextFile(
  `${a.out}/silhouette.svg`,
  lineChartSvg(
    `${model.name}: task separation per layer${routerNote}`,
    "after layer",
    "mean silhouette (cosine)",
    [
      { name: "prompt hidden (router)", points: layerPoints("promptHidden") },
      { name: "hidden, whole text", points: layerPoints("hidden") },
      { name: "FFN activation", points: layerPoints("ffn") },
      { name: "prompt, shuffled labels", points: layerPoints("promptHiddenShuffled") },
    ],
    { yRange: [-0.4, 1] },
  ),
);
await Deno.writeTextFile(
  `${a.out}/projection_prompt.svg`,
  scatterPanelsSvg(
    `${model.name}: prompt hidden states (router feature), PCA`,
    projection("promptHidden"),
    f.labels,
    f.tasks,
  ),
);
await Deno.writeTextFile(
  `${a.out}/projection_ffn.svg`,
  scatterPanelsSvg(
    `${model.name}: FFN activations (input of down_proj), PCA`,
    projection("ffn"),
    f.labels,
    f.tasks,
  ),
);
const result = {
  model: model.name,
  fingerprint: model.fingerprint,
  data: a.data ?? `${dir}/calibration.jsonl`,
  samples: N,
  perTask,
  tasks: f.tasks,
  tokens: f.tokens,
  seconds,
  seed,
  routerLayer,
  metric: "mean silhouette, cosine distance, mean-pooled over tokens",
  perLayer,
};
await Deno.writeTextFile(`${a.out}/clusters.json`, JSON.stringify(result, null, 2) + "\n");
const fmt = (v: number) => v.toFixed(3);
const md = [
  `# Task clusters: ${model.name}`,
  "",
  `${N} calibration samples (${perTask} per task, seed ${seed}), ${f.tasks.length} tasks; mean ` +
  `silhouette with cosine distance of mean-pooled activations (1 = tight, separate clusters, ` +
  `0 = no structure; "shuffled" is the same data with labels shuffled: the chance level).`,
  "",
  "| after layer | prompt hidden (router feature) | shuffled | hidden, whole text | FFN activation |",
  "| --- | --- | --- | --- | --- |",
  ...perLayer.map((r) =>
    `| ${r.layer}${routerLayer !== null && r.layer === routerLayer - 1 ? " (router)" : ""} | ${
      fmt(r.promptHidden)
    } | ${fmt(r.promptHiddenShuffled)} | ${fmt(r.hidden)} | ${fmt(r.ffn)} |`
  ),
  "",
  "![silhouette](silhouette.svg)",
  "",
  "![prompt hidden states](projection_prompt.svg)",
  "",
  "![FFN activations](projection_ffn.svg)",
  "",
];
await Deno.writeTextFile(`${a.out}/clusters.md`, md.join("\n"));
console.log(md.slice(0, 6 + L).join("\n"));
log(`wrote ${a.out}/clusters.{json,md}, silhouette.svg, projection_prompt.svg, projection_ffn.svg`);
