/**
 * The calibration report written beside the masks: `report.json`, `report.md`, and SVG plots
 * (per-layer sparsity of each mask, Jaccard overlap of the task masks' pruned units, the
 * router's confusion matrix).
 */

import type { Mask } from "../model/mask.ts";
import type { BuiltMask, RouterReport } from "./build_masks.ts";
import type { LogisticParams } from "./layer_sparsity.ts";
import {
  type HeldOutScore,
  MIN_NLL_GAIN,
  MIN_WINS,
  type TaskValidation,
} from "./validate_masks.ts";
import type { Dims } from "./stats_types.ts";

/** Set of pruned units of a mask as a bitset over [L * (I + n_h)]. */
export function prunedSet(mask: Mask, d: Dims): Uint8Array {
  const per = d.intermediateSize + d.numHeads;
  const out = new Uint8Array(d.numLayers * per).fill(1);
  mask.layers.forEach((lm, l) => {
    for (const j of lm.neurons) out[l * per + j] = 0;
    for (const h of lm.heads) out[l * per + d.intermediateSize + h] = 0;
  });
  return out;
}

/** Jaccard |A ∩ B| / |A ∪ B| of two bitsets (1 when both are empty). */
export function jaccard(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  let u = 0;
  for (let k = 0; k < a.length; k++) {
    i += a[k] & b[k];
    u += a[k] | b[k];
  }
  return u === 0 ? 1 : i / u;
}

/** Pairwise Jaccard matrix of the pruned units of `masks`. */
export function jaccardMatrix(masks: Mask[], d: Dims): number[][] {
  const sets = masks.map((m) => prunedSet(m, d));
  return sets.map((a) => sets.map((b) => jaccard(a, b)));
}

/** Per-layer fraction of heads and neurons pruned. */
export function perLayerSparsity(mask: Mask, d: Dims): { heads: number[]; neurons: number[] } {
  return {
    heads: mask.layers.map((l) => 1 - l.heads.length / d.numHeads),
    neurons: mask.layers.map((l) => 1 - l.neurons.length / d.intermediateSize),
  };
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** Line plot: one polyline per series over x = 0..n-1, y in [0, 1]. */
export function lineSvg(
  title: string,
  series: { name: string; y: number[]; dash?: boolean }[],
): string {
  const W = 640;
  const Hh = 360;
  const left = 50;
  const right = 170;
  const top = 30;
  const bottom = 40;
  const n = Math.max(1, ...series.map((s) => s.y.length));
  const px = (i: number) => left + (n === 1 ? 0 : i / (n - 1)) * (W - left - right);
  const py = (v: number) => top + (1 - v) * (Hh - top - bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  for (let i = 0; i < n; i++) {
    parts.push(`<text x="${px(i)}" y="${Hh - bottom + 14}" text-anchor="middle">${i}</text>`);
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${Hh - 6}" text-anchor="middle">layer</text>`);
  series.forEach((s, k) => {
    const c = PALETTE[k % PALETTE.length];
    const pts = s.y.map((v, i) => `${px(i).toFixed(1)},${py(v).toFixed(1)}`).join(" ");
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="1.5"${
        s.dash ? ' stroke-dasharray="4 3"' : ""
      } points="${pts}"/>`,
      `<text x="${W - right + 8}" y="${top + 12 * k + 4}" fill="${c}">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Heat map of a matrix with row/column labels and the value in each cell. */
export function heatmapSvg(
  title: string,
  labels: string[],
  m: number[][],
  fmt: (v: number) => string,
  max = Math.max(1e-12, ...m.flat()),
): string {
  const cell = 40;
  const lab = 110;
  const n = labels.length;
  const W = lab + n * cell + 20;
  const Hh = 40 + lab + n * cell;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  const y0 = 30 + lab;
  labels.forEach((l, i) => {
    parts.push(
      `<text x="${lab - 4}" y="${y0 + i * cell + cell / 2 + 3}" text-anchor="end">${esc(l)}</text>`,
      `<text transform="translate(${lab + i * cell + cell / 2 + 3},${y0 - 4}) rotate(-60)">${
        esc(l)
      }</text>`,
    );
  });
  m.forEach((row, i) =>
    row.forEach((v, j) => {
      const t = Math.max(0, Math.min(1, v / max));
      const shade = Math.round(255 - 200 * t);
      parts.push(
        `<rect x="${lab + j * cell}" y="${
          y0 + i * cell
        }" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="white"/>`,
        `<text x="${lab + j * cell + cell / 2}" y="${
          y0 + i * cell + cell / 2 + 3
        }" text-anchor="middle" fill="${t > 0.6 ? "white" : "black"}">${fmt(v)}</text>`,
      );
    })
  );
  parts.push("</svg>");
  return parts.join("\n");
}

/** Everything the report shows. */
export interface ReportInput {
  model: { name: string; fingerprint: string; dims: Dims };
  params: Record<string, unknown>;
  masks: (BuiltMask & { achieved: number })[];
  /** The UL-LD parameters used (m, n resolved). */
  logistic?: LogisticParams;
  /** Held-out validation of the task masks (empty when skipped). */
  validation?: TaskValidation[];
  router: RouterReport | null;
  timing: Record<string, unknown>;
  perplexity?: Record<string, unknown>[];
}

/** Write report.json, report.md and the SVG plots into `dir`; returns the report object. */
export async function writeReport(dir: string, r: ReportInput): Promise<Record<string, unknown>> {
  const d = r.model.dims;
  const sparsities = [...new Set(r.masks.map((m) => m.sparsity))];
  const files: string[] = [];
  const jac: Record<string, {
    tasks: string[];
    matrix: number[][];
    meanOffDiagonal: number;
    minOffDiagonal: number;
    maxOffDiagonal: number;
  }> = {};
  for (const s of sparsities) {
    const ms = r.masks.filter((m) => m.sparsity === s);
    const tag = String(s);
    const series = ms.flatMap((m, k) => {
      const p = perLayerSparsity(m.mask, d);
      return k < 10
        ? [{ name: `${m.mask.name} ffn`, y: p.neurons }, {
          name: `${m.mask.name} heads`,
          y: p.heads,
          dash: true,
        }]
        : [];
    });
    const sp = `sparsity_${tag}.svg`;
    await Deno.writeTextFile(`${dir}/${sp}`, lineSvg(`Per-layer sparsity at ${tag}`, series));
    files.push(sp);
    // the paper's task masks: the raw ones when the set has validated masks
    const raw = ms.filter((m) => m.method === "seap-task-raw");
    const tm = raw.length ? raw : ms.filter((m) => m.method === "seap");
    if (tm.length >= 2) {
      const matrix = jaccardMatrix(tm.map((m) => m.mask), d);
      const off = matrix.flatMap((row, i) => row.filter((_, j) => j !== i));
      const tasks = tm.map((m) => m.task!);
      jac[tag] = {
        tasks,
        matrix,
        meanOffDiagonal: off.reduce((a, b) => a + b, 0) / off.length,
        minOffDiagonal: Math.min(...off),
        maxOffDiagonal: Math.max(...off),
      };
      const jf = `jaccard_${tag}.svg`;
      await Deno.writeTextFile(
        `${dir}/${jf}`,
        heatmapSvg(
          `Jaccard of pruned units, task masks @${tag}`,
          tasks,
          matrix,
          (v) => v.toFixed(2),
          1,
        ),
      );
      files.push(jf);
    }
  }
  if (r.router) {
    await Deno.writeTextFile(
      `${dir}/router_confusion.svg`,
      heatmapSvg(
        `Router confusion (held-out), accuracy ${(r.router.accuracy * 100).toFixed(1)}%`,
        r.router.tasks,
        r.router.confusion,
        (v) => String(v),
      ),
    );
    files.push("router_confusion.svg");
  }
  const report = {
    model: r.model,
    params: r.params,
    timing: r.timing,
    masks: r.masks.map((m) => ({
      name: m.mask.name,
      method: m.method,
      task: m.task,
      sparsity: m.sparsity,
      achieved: m.achieved,
      nominal: m.nominal,
      cost: {
        params: m.cost.params,
        bytesPerToken: m.cost.bytesPerToken,
        flopsPerToken: m.cost.flopsPerToken,
        context: m.cost.context,
      },
      schedule: m.schedule,
      perLayer: perLayerSparsity(m.mask, d),
    })),
    logistic: r.logistic ?? null,
    validation: r.validation ?? [],
    jaccard: jac,
    router: r.router,
    perplexity: r.perplexity ?? null,
    plots: files,
  };
  await Deno.writeTextFile(`${dir}/report.json`, JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/report.md`, markdown(report, r));
  return report;
}

function markdown(
  report: {
    jaccard: Record<string, {
      tasks: string[];
      matrix: number[][];
      meanOffDiagonal: number;
      minOffDiagonal: number;
      maxOffDiagonal: number;
    }>;
    plots: string[];
  },
  r: ReportInput,
): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const L: string[] = [];
  L.push(`# Calibration report: ${r.model.name}`, "");
  L.push(
    `Model fingerprint \`${r.model.fingerprint.slice(0, 16)}…\`, ${JSON.stringify(r.model.dims)}`,
    "",
  );
  L.push("## Parameters", "", "```json", JSON.stringify(r.params, null, 2), "```", "");
  L.push("## Timing", "", "| what | value |", "| --- | --- |");
  for (const [k, v] of Object.entries(r.timing)) {
    L.push(`| ${k} | ${typeof v === "number" ? Number(v.toFixed(3)) : v} |`);
  }
  const lg = r.logistic;
  L.push(
    "",
    "## Masks",
    "",
    "Every mask is named and built by the share of decoder-layer parameters it removes " +
      "(`reverse@0.5` removes 50% ± 1 point): each method's knob is found by bisection. " +
      "Parameters: K/V rows count as removed only when a whole GQA group's query heads are " +
      "pruned, bias-compensation vectors count as kept. Bytes/token: weight elements read per " +
      "decoded token, embedding row and LM head included. FLOPs/token: one decode step at " +
      `context ${r.masks[0]?.cost.context ?? "?"} (matrix products, attention, bias adds). ` +
      "Knob: the UL-LD whole-model target G (G' = min(1, G L / (L - m - n)) on the prunable " +
      "layers), the UL-UM ratio, or the AL-AM share of the cost.",
    "",
  );
  if (lg) {
    L.push(
      `UL-LD parameters used: m = ${lg.m}, n = ${lg.n}, k = ${lg.k}, x0 = ${lg.x0} ` +
        `(the router's feature is read after layer m = ${lg.m}).`,
      "",
    );
  }
  L.push(
    "| mask | method | knob | params removed | bytes/token removed | FLOPs/token removed |",
    "| --- | --- | --- | --- | --- | --- |",
  );
  for (const m of r.masks) {
    L.push(
      `| ${m.mask.name} | ${m.method} | ${m.nominal.toFixed(4)} | ${pct(m.cost.params)} | ` +
        `${pct(m.cost.bytesPerToken)} | ${pct(m.cost.flopsPerToken)} |`,
    );
  }
  if (r.validation?.length) {
    const v0 = r.validation[0];
    const sc = (x: HeldOutScore) => `${pct(x.accuracy)} / ${x.nll.toFixed(3)}`;
    L.push(
      "",
      "## Validated task masks",
      "",
      `Each task's own mask against the generic mask at the same share, on up to ${v0.samples} ` +
        "held-out samples per task (rows never used for the statistics; a quarter of a small " +
        "task's rows): the share of held-out answers the mask reproduces exactly by greedy " +
        "choice, then the mean negative log-likelihood per answer token in nats (higher / " +
        `lower is better). Where the generic mask gets at least ${MIN_WINS} more answers right ` +
        `(plain-text tasks: a log-likelihood better by ${MIN_NLL_GAIN} nats per token), ` +
        "blends of the task's and the generic scores are tried and the best candidate is " +
        "served as `<task>@<share>`; the paper's own mask stays available as " +
        "`<task>.raw@<share>`. These are the numbers the choice was made on (optimistic for " +
        "the chosen candidate); the evaluation split judges it independently.",
      "",
      "| task | share | samples | answer tokens | task mask | generic mask | blends (generic weight: score) | served |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const v of r.validation) {
      const blends = Object.entries(v.blends).map(([w, x]) => `${w}: ${sc(x)}`).join(", ");
      L.push(
        `| ${v.task} | ${v.share} | ${v.samples} | ${v.tokens} | ${sc(v.own)} | ` +
          `${sc(v.generic)} | ${blends || "—"} | ${v.choice}${
            v.choice === "blend" ? ` ${v.genericWeight}` : ""
          } |`,
      );
    }
  }
  L.push("");
  for (const f of report.plots.filter((p) => p.startsWith("sparsity_"))) {
    L.push(`![${f}](${f})`, "");
  }
  for (const [tag, j] of Object.entries(report.jaccard)) {
    L.push(`## Jaccard of pruned units, task masks @${tag}`, "");
    L.push(
      `Off-diagonal mean ${j.meanOffDiagonal.toFixed(3)}, min ${j.minOffDiagonal.toFixed(3)}, ` +
        `max ${j.maxOffDiagonal.toFixed(3)} (1 = identical pruned sets)`,
      "",
    );
    L.push(`| | ${j.tasks.join(" | ")} |`, `| --- |${j.tasks.map(() => " --- |").join("")}`);
    j.matrix.forEach((row, i) =>
      L.push(`| ${j.tasks[i]} | ${row.map((v) => v.toFixed(2)).join(" | ")} |`)
    );
    L.push("", `![jaccard](jaccard_${tag}.svg)`, "");
  }
  if (r.router) {
    const ro = r.router;
    L.push("## Router", "");
    L.push(
      `Deployed router (trained on ${ro.trainPhrasings} phrasings, ${ro.trainSamples} samples): ` +
        `held-out accuracy ${pct(ro.accuracy)} on ${ro.testSamples} samples. ` +
        `Below threshold (generic mask): ${ro.lowConfidence}.`,
      "",
    );
    if (ro.unseenPhrasing) {
      const u = ro.unseenPhrasing;
      L.push(
        `Strict protocol: a router trained only on phrasings not flagged held-out ` +
          `(${u.trainSamples} samples) scores ${pct(u.accuracy)} on the ${u.samples} samples ` +
          `whose phrasing it never saw.`,
        "",
      );
    }
    L.push(
      `| true \\ predicted | ${ro.tasks.join(" | ")} |`,
      `| --- |${ro.tasks.map(() => " --- |").join("")}`,
    );
    ro.confusion.forEach((row, i) => L.push(`| ${ro.tasks[i]} | ${row.join(" | ")} |`));
    const x = ro.extraEval;
    if (x) {
      L.push(
        "",
        `On ${x.file} (${x.samples} prompts): ${pct(x.accuracy)}` +
          (x.heldOutPhrasingAccuracy === null
            ? ""
            : `; phrasings held out of model training: ${
              pct(x.heldOutPhrasingAccuracy)
            } of ${x.heldOutPhrasingSamples}`) +
          `. Below threshold: ${x.lowConfidence}.`,
        "",
        `| true \\ predicted | ${ro.tasks.join(" | ")} |`,
        `| --- |${ro.tasks.map(() => " --- |").join("")}`,
      );
      x.confusion.forEach((row, i) => L.push(`| ${ro.tasks[i]} | ${row.join(" | ")} |`));
    }
    L.push("", "![confusion](router_confusion.svg)", "");
  }
  if (r.perplexity?.length) {
    L.push(
      "## Bias compensation: held-out perplexity",
      "",
      "| mask | with compensation | without |",
      "| --- | --- | --- |",
    );
    for (const p of r.perplexity) {
      L.push(
        `| ${p.mask} | ${Number(p.withBias).toFixed(4)} | ${Number(p.withoutBias).toFixed(4)} |`,
      );
    }
    L.push("");
  }
  return L.join("\n");
}
