/** The calibration report as Markdown (`report.md`, written by lib/calibrate/report.ts). */

import type { JaccardSummary, ReportInput } from "./report_input.ts";
import { type HeldOutScore, MIN_NLL_GAIN, MIN_WINS } from "./validate_masks.ts";

/**
 * `report.md`: parameters, timing, the masks' costs, the validated task masks, the task masks'
 * overlap, the router (confusion, OOD test, cost of routing) and the bias-compensation
 * perplexities, with the plots of `report.plots` inlined.
 */
export function reportMarkdown(
  report: {
    jaccard: Record<string, JaccardSummary>;
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
      `Served their own task's mask (right task, no fallback to generic): ` +
        `${pct(ro.routedAccuracy)} of the held-out samples.`,
      "",
    );
    const head = [
      `| true \\ predicted | ${ro.tasks.join(" | ")} | served generic |`,
      `| --- |${ro.tasks.map(() => " --- |").join("")} --- |`,
    ];
    L.push(...head);
    ro.confusion.forEach((row, i) =>
      L.push(`| ${ro.tasks[i]} | ${row.join(" | ")} | ${ro.servedGeneric[i]} |`)
    );
    const x = ro.extraEval;
    if (x) {
      L.push(
        "",
        `On ${x.file} (${x.samples} prompts, never used at calibration): most probable task ` +
          `right for ${pct(x.accuracy)}, served their task's mask ${pct(x.routedAccuracy)}` +
          (x.heldOutPhrasingAccuracy === null || x.heldOutPhrasingRoutedAccuracy === null
            ? ""
            : `; phrasings held out of model training: ${pct(x.heldOutPhrasingAccuracy)}, served ${
              pct(x.heldOutPhrasingRoutedAccuracy)
            } of ${x.heldOutPhrasingSamples}`) +
          `. Served generic: ${x.lowConfidence}.`,
        "",
        ...head,
      );
      x.confusion.forEach((row, i) =>
        L.push(`| ${ro.tasks[i]} | ${row.join(" | ")} | ${x.servedGeneric[i]} |`)
      );
    }
    L.push("", "![confusion](router_confusion.svg)", "");
    const o = ro.ood;
    if (o) {
      L.push(
        "### Out-of-distribution prompts",
        "",
        `Test: an "other" class trained on ${o.trainSamples} out-of-distribution chat prompts ` +
          `(train templates); a prompt goes to the generic mask when P(other) > ` +
          `${o.threshold.toFixed(4)} (chosen so that at most ${
            pct(o.budget)
          } of the held-out in-task samples exceed it; kept in [0.01, 0.5]). On ${o.heldOutSamples} held-out prompts (templates and files the ` +
          `router never saw): **${pct(o.heldOutGeneric)} served the generic mask**.`,
        "",
        "Scores compared on the same held-out prompts, each thresholded on the held-out " +
          "in-task samples with the same budget:",
        "",
        "| score | AUROC | OOD flagged |",
        "| --- | --- | --- |",
        ...o.methods.map((m) => `| ${m.method} | ${m.auroc.toFixed(4)} | ${pct(m.oodFlagged)} |`),
        "",
        "| group | served generic | prompts |",
        "| --- | --- | --- |",
        ...Object.entries(o.byGroup).sort().map(([g, [k, n]]) => `| ${g} | ${pct(k / n)} | ${n} |`),
        "",
        "![ood](router_ood.svg)",
        "",
      );
      if (o.misses.length) {
        L.push(
          "Held-out OOD prompts served a task mask (up to 20): " +
            o.misses.map((m) => `${m.source} → ${m.task} (P(other) ${m.oodScore.toFixed(3)})`)
              .join("; "),
          "",
        );
      }
    }
    const rc = r.routing;
    if (rc) {
      L.push(
        "### Cost of routing",
        "",
        `Over ${rc.prompts} chat requests of ${rc.newTokens} decoded tokens (dense, the ` +
          `calibration backend): the router's decision takes ` +
          `${(rc.routerShare * 100).toFixed(4)}% of the request time ` +
          `(${(rc.routerSeconds / rc.prompts * 1e6).toFixed(1)} µs per request of ` +
          `${(rc.requestSeconds / rc.prompts * 1e3).toFixed(1)} ms). The head pass it reads ` +
          `(the protected layers over the prompt) is part of the request's own prefill; were ` +
          `it not reused, head + router would be ${pct(rc.headAndRouterShare)}.`,
        "",
      );
    }
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
