/**
 * How alike two calibrated mask sets are, mask by mask (e.g. statistics collected with f32 vs
 * f16 or q8 weights): for every mask file both folders hold, the Jaccard overlap of the kept
 * FFN neurons and of the kept attention heads over all layers (|A ∩ B| / |A ∪ B|), and the
 * share of units that got the same keep/prune decision; then the mean and the worst mask.
 *
 *   deno run -A tools/mask_overlap.ts DIR_A DIR_B
 */

import { decodeMask } from "../lib/masks/mask_io.ts";
import type { Mask } from "../lib/model/mask.ts";

/** Overlap of two masks of one model. */
export interface MaskOverlap {
  name: string;
  /** Jaccard overlap of the kept neurons (all layers). */
  neurons: number;
  /** Jaccard overlap of the kept heads (all layers). */
  heads: number;
  /** Share of neurons and heads with the same keep/prune decision. */
  agreement: number;
}

/** Per-unit keep sets of `a` and `b` (same layer count) compared; see {@link MaskOverlap}. */
export function maskOverlap(a: Mask, b: Mask, dims: { inter: number; heads: number }) {
  if (a.layers.length !== b.layers.length) {
    throw new Error(
      `mask_overlap: ${a.name} has ${a.layers.length} layers, the other ${b.layers.length}`,
    );
  }
  const count = (x: Int32Array, y: Int32Array, n: number) => {
    const inX = new Uint8Array(n);
    for (const i of x) inX[i] = 1;
    let both = 0;
    for (const i of y) both += inX[i];
    return { both, union: x.length + y.length - both, same: n - (x.length + y.length - 2 * both) };
  };
  let nb = 0, nu = 0, hb = 0, hu = 0, same = 0, units = 0;
  a.layers.forEach((la, l) => {
    const lb = b.layers[l];
    const n = count(la.neurons, lb.neurons, dims.inter);
    const h = count(la.heads, lb.heads, dims.heads);
    nb += n.both, nu += n.union, hb += h.both, hu += h.union;
    same += n.same + h.same;
    units += dims.inter + dims.heads;
  });
  return {
    name: a.name,
    neurons: nu ? nb / nu : 1,
    heads: hu ? hb / hu : 1,
    agreement: same / units,
  };
}

/** Compare every mask file (`*@*.safetensors`) the two folders share. */
export async function compareMaskSets(dirA: string, dirB: string): Promise<MaskOverlap[]> {
  const cfg = JSON.parse(await Deno.readTextFile(`${dirA}/manifest.json`)).model ?? null;
  const out: MaskOverlap[] = [];
  const names = [...Deno.readDirSync(dirA)].map((e) => e.name).filter((n) =>
    n.includes("@") && n.endsWith(".safetensors")
  ).sort();
  for (const n of names) {
    let bytesB: Uint8Array;
    try {
      bytesB = await Deno.readFile(`${dirB}/${n}`);
    } catch {
      continue;
    }
    const a = decodeMask(await Deno.readFile(`${dirA}/${n}`), n).mask;
    const b = decodeMask(bytesB, n).mask;
    const inter = cfg?.intermediateSize ?? Math.max(...a.layers.map((l) => l.neurons.length));
    const heads = cfg?.numHeads ?? Math.max(...a.layers.map((l) => l.heads.length));
    out.push({ ...maskOverlap(a, b, { inter, heads }), name: n.replace(".safetensors", "") });
  }
  return out;
}

if (import.meta.main) {
  const [a, b] = Deno.args;
  if (!a || !b) {
    console.error("usage: deno run -A tools/mask_overlap.ts DIR_A DIR_B");
    Deno.exit(2);
  }
  const rows = await compareMaskSets(a, b);
  if (rows.length === 0) throw new Error(`mask_overlap: no mask file is in both ${a} and ${b}`);
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log("| mask | neurons (Jaccard) | heads (Jaccard) | same decision |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const r of rows) {
    console.log(`| ${r.name} | ${pct(r.neurons)} | ${pct(r.heads)} | ${pct(r.agreement)} |`);
  }
  const mean = (k: "neurons" | "heads" | "agreement") =>
    rows.reduce((s, r) => s + r[k], 0) / rows.length;
  const worst = rows.reduce((w, r) => (r.agreement < w.agreement ? r : w));
  console.log(
    `| mean of ${rows.length} | ${pct(mean("neurons"))} | ${pct(mean("heads"))} | ` +
      `${pct(mean("agreement"))} |`,
  );
  const differ = rows.filter((r) => r.agreement < 1).length;
  console.log(
    `\n${differ} of ${rows.length} masks differ in any decision; worst: ${worst.name}, ` +
      `${pct(worst.agreement)} same decisions`,
  );
}
