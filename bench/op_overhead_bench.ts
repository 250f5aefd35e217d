/**
 * Per-call cost of WASM backend ops on tiny shapes (`[1, 64]` activations, a 128 x 64 weight),
 * where the kernel does almost nothing and what is measured is the op's JS: handle and argument
 * checks, scratch, the call into WASM. Two engine trees (an old checkout and this one) are loaded
 * in one process and their calls alternate, best of 7 batches each, so a change to the per-op JS
 * is measured side by side (docs/design.md, Per-token fixed costs).
 *
 *   deno run -A --v8-flags=--experimental-wasm-fp16 bench/op_overhead_bench.ts --old /tmp/main
 *     [--new .] [--weights f32]
 */

import { parseArgs } from "node:util";

/** The ops timed, each a closure over one tree's backend and tensors. */
type Ops = Record<string, () => void>;

/** One tree's backend, tiny tensors and weights, and a closure per op. */
async function setup(root: string, weights: string): Promise<Ops> {
  const url = (p: string) => new URL(p, `file://${Deno.realPathSync(root)}/`).href;
  const { WasmBackend } = await import(url("lib/backends/wasm.ts"));
  const be = await WasmBackend.create({ weightDType: weights });
  const H = 64, N = 128, d = 32;
  const view = (data: Float32Array, rows: number, cols: number, dtype?: string) => ({
    buf: be.weights(data, dtype),
    offset: 0,
    stride: cols,
    rows,
    cols,
  });
  const w = view(new Float32Array(N * H).map((_, i) => Math.sin(i)), N, H); // [N, H]
  const norm = view(new Float32Array(H).fill(1), 1, H, "f32"); // [1, H]
  const inv = view(
    new Float32Array(d / 2).map((_, i) => 1 / 10000 ** (2 * i / d)),
    1,
    d / 2,
    "f32",
  );
  const emb = view(new Float32Array(768 * H).fill(0.1), 768, H); // [V, H]
  const rows = be.indices(Int32Array.from({ length: H }, (_, i) => i * 2)); // 64 of N rows
  const x = be.tensor(1, H), o = be.tensor(1, H); // [1, H]
  be.write(x, new Float32Array(H).fill(0.5));
  const kc = be.tensor(2 * 128, d), vc = be.tensor(2 * 128, d); // [n_kv * maxT, d]
  const kv = be.tensor(1, 2 * d), q = be.tensor(1, 6 * d), att = be.tensor(1, 6 * d);
  const heads = be.indices(Int32Array.of(0, 1));
  const kvOf = be.indices(Int32Array.of(0, 0, 0, 1, 1, 1));
  const logits = be.tensor(1, 768); // [1, V]
  let pos = 0;
  return {
    rmsNorm: () => be.rmsNorm(x, norm, 1e-5, x),
    addRow: () => be.addRow(x, norm),
    "tensor + free": () => be.free(be.tensor(1, H)),
    matmul: () => be.matmul(x, w, rows, null, o),
    matmulTAdd: () => be.matmulTAdd(o, w, rows, x),
    ffn: () => be.ffn(x, w, w, w, rows, x, null),
    "rope (new position)": () => be.rope(q, d, pos++ % 4096, inv),
    kvWrite: () => be.kvWrite(kc, kv, heads, 128, 96),
    "attention (96 positions)": () => be.attention(q, kc, vc, kvOf, 128, 96, 0.17, att),
    embed: () => be.embed(emb, Int32Array.of(5), x),
    "read [1, 768]": () => void be.read(logits),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      old: { type: "string" },
      new: { type: "string", default: "." },
      weights: { type: "string", default: "f32" },
    },
  });
  if (!values.old) throw new Error("--old DIR (the tree to compare against) is required");
  const trees = [
    await setup(values.old, values.weights!),
    await setup(values.new!, values.weights!),
  ];
  const best: Record<string, [number, number]> = {};
  for (let r = 0; r < 7; r++) {
    for (const name of Object.keys(trees[0])) {
      for (let k = 0; k < 2; k++) {
        const t = (k + r) % 2; // alternate which tree goes first
        const f = trees[t][name];
        for (let i = 0; i < 1000; i++) f(); // warm
        const reps = 20000, t0 = performance.now();
        for (let i = 0; i < reps; i++) f();
        const us = (performance.now() - t0) * 1000 / reps;
        const b = best[name] ??= [Infinity, Infinity];
        b[t] = Math.min(b[t], us);
      }
    }
  }
  console.log(
    `per call, best of 7 batches of 20000 (${values.weights}; load average ${
      Deno.loadavg().map((v) => v.toFixed(2)).join(" ")
    })\n`,
  );
  console.log("| op | old µs | new µs | new/old |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [name, [o, n]] of Object.entries(best)) {
    console.log(`| ${name} | ${o.toFixed(3)} | ${n.toFixed(3)} | ${(n / o).toFixed(2)} |`);
  }
}
