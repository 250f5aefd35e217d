/**
 * A/B of two checkouts' engine code in one process: loads `lib/` of an old and a new tree (e.g. a
 * `git worktree` or `git archive` of main in /tmp, and this one), the same model and mask in
 * each, and alternates greedy decode runs between them, so that a JS change is measured side by
 * side instead of across processes on a shared machine. Checks both trees produce the same
 * tokens, and prints per-token time (best, median) of each and the new/old ratio: best over best,
 * and the median of each round's paired ratio (the figure to trust under load).
 *
 *   deno run -A --v8-flags=--experimental-wasm-fp16 bench/tree_ab_bench.ts --old /tmp/main
 *     [--new .] [--model DIR] [--weights f32] [--mask NAME] [--tokens 128] [--rounds 16]
 *
 * `--mask` names a mask of the model's calibrated set (masks/<model name>); default dense.
 */

import { cpuMs, loadTreeEngine, parseTreeAbArgs, type TreeAbArgs } from "./tree_engine.ts";

/** One tree's decode run: per-token wall and CPU ms, and the greedy tokens. */
type Run = () => Promise<{ wall: number; cpu: number; tokens: string }>;

/** Load `root`'s engine, the model and the mask; returns a function that decodes once. */
async function setup(root: string, a: TreeAbArgs): Promise<Run> {
  const { model, mask, Sequence, prompt: ids } = await loadTreeEngine(
    root,
    a.dir,
    a.weights,
    a.mask,
  );
  const steps = a.steps;
  return async () => {
    const seq = new Sequence(model, { mask, maxTokens: ids.length + steps + 1 });
    let logits: Float32Array = await seq.prefill(ids);
    const t0 = performance.now(), c0 = cpuMs();
    const toks: number[] = [];
    for (let i = 0; i < steps; i++) {
      let tok = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[tok]) tok = j;
      toks.push(tok);
      logits = await seq.decode(tok);
    }
    const wall = (performance.now() - t0) / steps, cpu = (cpuMs() - c0) / steps;
    seq.free();
    return { wall, cpu, tokens: toks.join(",") };
  };
}

if (import.meta.main) {
  const a = parseTreeAbArgs(Deno.args, 16);
  const { dir, steps, rounds } = a;
  const old = await setup(a.old, a);
  const neu = await setup(a.new, a);
  await old(), await neu(); // warm up both
  const O: { wall: number; cpu: number }[] = [], N: typeof O = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which tree goes first so that neither always runs after the other.
    const [a, b] = r % 2 === 0 ? [await old(), await neu()] : [await neu(), await old()];
    const [o, n] = r % 2 === 0 ? [a, b] : [b, a];
    if (o.tokens !== n.tokens) throw new Error(`round ${r}: the trees decoded different tokens`);
    O.push(o), N.push(n);
    console.error(`round ${r + 1}/${rounds}: old ${o.cpu.toFixed(4)} new ${n.cpu.toFixed(4)} ms`);
  }
  const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
  console.log(
    `${dir}, ${a.weights}, mask ${a.mask ?? "dense"}, ${steps} tokens x ${rounds} ` +
      `rounds (ms per token; load average ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")})`,
  );
  for (const k of ["wall", "cpu"] as const) {
    const o = O.map((v) => v[k]), n = N.map((v) => v[k]);
    console.log(
      `${k}: old best ${Math.min(...o).toFixed(4)} median ${med(o).toFixed(4)} | new best ` +
        `${Math.min(...n).toFixed(4)} median ${med(n).toFixed(4)} | new/old: best ` +
        `${(Math.min(...n) / Math.min(...o)).toFixed(3)}, median of paired ratios ` +
        `${med(n.map((v, i) => v / o[i])).toFixed(3)}`,
    );
  }
}
