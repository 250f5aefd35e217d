/**
 * One engine tree's model, mask and sequence class, loaded from that tree's own `lib/` (a
 * checkout, `git worktree` or `git archive` of another commit, or this one), so two trees can run
 * side by side in one process: `bench/tree_ab_bench.ts` and `bench/js_step_bench.ts`.
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";

/** This process's CPU time (ms): the box is shared, and a time slice lost to another process
 * would count on the wall clock. */
export const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** What {@link loadTreeEngine} gives: the tree's own classes and objects (types of this tree). */
export interface TreeEngine {
  /** The model folder loaded by the tree's `loadModel` on a new WASM backend. */
  // deno-lint-ignore no-explicit-any
  model: any;
  /** The tree's prepared mask: dense, or `maskName` of masks/<model name>. */
  // deno-lint-ignore no-explicit-any
  mask: any;
  /** The tree's `Sequence` class. */
  // deno-lint-ignore no-explicit-any
  Sequence: any;
  /** A fixed 16-token prompt. */
  prompt: Int32Array; // [16]
}

/** Load `root`'s engine (its lib/), the model in `dir` with `weights`, and the named mask. */
export async function loadTreeEngine(
  root: string,
  dir: string,
  weights: string,
  maskName: string | undefined,
): Promise<TreeEngine> {
  const url = (p: string) => new URL(p, `file://${Deno.realPathSync(root)}/`).href;
  const { WasmBackend } = await import(url("lib/backends/wasm.ts"));
  const { loadModel } = await import(url("lib/model/model.ts"));
  const { denseFor, prepareMask } = await import(url("lib/model/prepared_mask.ts"));
  const { Sequence } = await import(url("lib/model/sequence.ts"));
  const { loadMaskSet } = await import(url("lib/masks/mask_io.ts"));
  const backend = await WasmBackend.create({ weightDType: weights });
  const model = await loadModel(dir, { backend });
  let mask = denseFor(model);
  if (maskName) {
    const set = await loadMaskSet(url(`masks/${model.name}`).slice(7), model);
    const m = set.masks.get(maskName);
    if (!m) throw new Error(`--mask ${maskName}: not in masks/${model.name}`);
    mask = prepareMask(model, m);
  }
  const prompt = Int32Array.from({ length: 16 }, (_, i) => 2 + (i * 31) % 200);
  return { model, mask, Sequence, prompt };
}

/** The command line both side-by-side benches take (see {@link parseTreeAbArgs}). */
export interface TreeAbArgs {
  /** The tree compared against (`--old`, required). */
  old: string;
  /** The tree measured (`--new`, default this one). */
  new: string;
  /** The model folder (`--model`, default the embedded model). */
  dir: string;
  /** Weight format (`--weights`, default f32). */
  weights: string;
  /** A mask of the model's calibrated set (`--mask`), else dense. */
  mask?: string;
  /** Decoded tokens per round (`--tokens`, default 128). */
  steps: number;
  /** Rounds per tree (`--rounds`). */
  rounds: number;
}

/** `--old DIR [--new .] [--model DIR] [--weights f32] [--mask NAME] [--tokens 128] [--rounds N]`. */
export function parseTreeAbArgs(args: string[], defaultRounds: number): TreeAbArgs {
  const { values } = parseArgs({
    args,
    options: {
      old: { type: "string" },
      new: { type: "string", default: "." },
      model: { type: "string" },
      weights: { type: "string", default: "f32" },
      mask: { type: "string" },
      tokens: { type: "string", default: "128" },
      rounds: { type: "string", default: String(defaultRounds) },
    },
  });
  if (!values.old) throw new Error("--old DIR (the tree to compare against) is required");
  return {
    old: values.old,
    new: values.new!,
    dir: values.model ?? DEFAULT_MODEL_DIR,
    weights: values.weights!,
    mask: values.mask,
    steps: Number(values.tokens),
    rounds: Number(values.rounds),
  };
}
