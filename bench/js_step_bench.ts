/**
 * The JS of a decode step alone: every export of the WASM kernels is replaced by a function that
 * returns at once, so what a greedy-free decode loop then costs per token is the forward pass's
 * and the backend's JS (handle and argument checks, temporaries, the cache, promises, the logits
 * copy) without the kernels' time or their noise. The numbers the model computes are meaningless
 * here (nothing is checked); `bench/tree_ab_bench.ts` times the real step and checks the tokens.
 * Two engine trees (an old checkout and this one) are loaded in one process and alternate, so a
 * change to the per-token JS is measured side by side (docs/design.md, Per-token fixed costs).
 *
 *   deno run -A bench/js_step_bench.ts --old /tmp/main [--new .] [--model DIR] [--weights f32]
 *     [--mask NAME] [--tokens 128] [--rounds 40]
 *
 * `--mask` names a mask of the model's calibrated set (masks/<model name>); default dense. For a
 * CPU profile of the JS alone, run it under `deno run --cpu-prof` with `--old` and `--new` the
 * same tree.
 */

import { cpuMs, loadTreeEngine, parseTreeAbArgs, type TreeAbArgs } from "./tree_engine.ts";

/** One tree's decode of `steps` tokens; returns CPU ms per token. */
type Run = () => Promise<number>;

/** This process's CPU time (ms): the box is shared, and a time slice lost to another process
 * would count on the wall clock. */
/** Kernel exports replaced by no-ops in every module instantiated from here on. */
function stubKernels(): void {
  const instantiate = WebAssembly.instantiate as (
    ...a: unknown[]
  ) => Promise<WebAssembly.Instance | WebAssembly.WebAssemblyInstantiatedSource>;
  const stubbed = async (...a: unknown[]) => {
    const r = await instantiate(...a);
    const inst = r instanceof WebAssembly.Instance ? r : r.instance;
    const exports: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(inst.exports)) {
      exports[k] = typeof v === "function" ? () => 0 : v;
    }
    const fake = { exports } as unknown as WebAssembly.Instance;
    return r instanceof WebAssembly.Instance ? fake : { module: r.module, instance: fake };
  };
  (WebAssembly as { instantiate: unknown }).instantiate = stubbed;
}

/** Load `root`'s engine, the model and the mask; returns a function that decodes once. */
async function setup(root: string, a: TreeAbArgs): Promise<Run> {
  const { model, mask, Sequence, prompt: ids } = await loadTreeEngine(
    root,
    a.dir,
    a.weights,
    a.mask,
  );
  const steps = a.steps;
  const V = model.config.vocabSize;
  return async () => {
    const seq = new Sequence(model, { mask, maxTokens: ids.length + steps + 1 });
    await seq.prefill(ids);
    const t0 = cpuMs();
    for (let i = 0; i < steps; i++) await seq.decode((i * 7) % V);
    const ms = (cpuMs() - t0) / steps;
    seq.free();
    return ms;
  };
}

if (import.meta.main) {
  const a = parseTreeAbArgs(Deno.args, 40);
  const { dir, steps, rounds } = a;
  stubKernels();
  const old = await setup(a.old, a);
  const neu = await setup(a.new, a);
  for (let i = 0; i < 5; i++) await old(), await neu(); // warm up both (JIT tiers)
  const O: number[] = [], N: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which tree goes first so that neither always runs after the other.
    if (r % 2 === 0) O.push(await old()), N.push(await neu());
    else N.push(await neu()), O.push(await old());
  }
  const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
  const us = (ms: number) => (1000 * ms).toFixed(1);
  console.log(
    `JS per decode step (kernels stubbed, CPU time), ${dir}, ${a.weights}, mask ` +
      `${a.mask ?? "dense"}, ${steps} tokens x ${rounds} rounds (load average ` +
      `${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")})`,
  );
  console.log(
    `old best ${us(Math.min(...O))} median ${us(med(O))} µs | new best ${us(Math.min(...N))} ` +
      `median ${us(med(N))} µs | new/old: best ${(Math.min(...N) / Math.min(...O)).toFixed(3)}, ` +
      `median of paired ratios ${med(N.map((v, i) => v / O[i])).toFixed(3)}`,
  );
}
