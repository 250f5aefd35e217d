/**
 * The calibration report written beside the masks: `report.json`, `report.md`, and SVG plots
 * (per-layer sparsity of each mask, Jaccard overlap of the task masks' pruned units, the
 * router's confusion matrix).
 */

import { barChartSvg } from "../eval/bar_chart_svg.ts";
import { jaccardMatrix, perLayerSparsity } from "./mask_overlap.ts";
import type { JaccardSummary, ReportInput } from "./report_input.ts";
import { reportMarkdown } from "./report_markdown.ts";
import { heatmapSvg, lineSvg } from "./report_plots_svg.ts";

/** Write report.json, report.md and the SVG plots into `dir`; returns the report object. */
export async function writeReport(dir: string, r: ReportInput): Promise<Record<string, unknown>> {
  const d = r.model.dims;
  const sparsities = [...new Set(r.masks.map((m) => m.sparsity))];
  const files: string[] = [];
  const jac: Record<string, JaccardSummary> = {};
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
  const ood = r.router?.ood;
  if (ood) {
    const groups = Object.keys(ood.byGroup).sort();
    await Deno.writeTextFile(
      `${dir}/router_ood.svg`,
      barChartSvg(
        `Held-out out-of-distribution prompts served the generic mask (%), overall ${
          (ood.heldOutGeneric * 100).toFixed(1)
        }%`,
        groups,
        [{
          name: "served generic",
          values: groups.map((g) => 100 * ood.byGroup[g][0] / ood.byGroup[g][1]),
        }],
        95,
      ),
    );
    files.push("router_ood.svg");
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
    routing: r.routing ?? null,
    perplexity: r.perplexity ?? null,
    plots: files,
  };
  await Deno.writeTextFile(`${dir}/report.json`, JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/report.md`, reportMarkdown(report, r));
  return report;
}
