/**
 * The WASM backend's opt-in threads (lib/backends/wasm_threads.ts) give the one-thread results
 * bit for bit: every op the pool cuts (matmul, matmulTAdd, the fused FFN, attention), for f32,
 * f16 and q8 weights, dense and row-gathered, T = 1 and T > 1, on 2 and 3 threads; then whole
 * prefill + decode runs of a random Llama-shaped model and of a fixture model, dense and under a
 * random SEAP mask. f16 runs on both f16 conversions, each against one thread of the same kind:
 * the portable bit tricks and, where the runtime has half-precision SIMD
 * (`--v8-flags=--experimental-wasm-fp16`, which `deno task test` passes), the fp16 builds
 * (seap_kernels_mt_fp16.wasm, seap_kernels64_mt_fp16.wasm against their one-thread builds).
 * Every comparison prints the worst difference and its index (all must be 0)
 * and checks that the pool really ran the op on several threads. Last, the pool stops cleanly:
 * its workers leave their loops, its memory is returned, and a process that closes its backend
 * exits by itself. The server with SEAP_THREADS: tests/server_threads_test.ts.
 */

import assert from "node:assert/strict";
import type { Backend, IndexList, MatView, WeightDType } from "../lib/backends/backend.ts";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { fp16SimdSupported } from "../lib/backends/wasm_kernels.ts";
import { rng, subset, uniform } from "./helpers/seeded.ts";
import { ffnBundle } from "./helpers/ffn_bundle.ts";
import { writeRandomModel } from "../tools/make_random_model.ts";

/** A weight format and, for f16, which conversion (false: bit tricks; true: half-precision SIMD). */
interface Kind {
  dt: WeightDType;
  fp16Simd: boolean;
}

const HAS_FP16 = fp16SimdSupported();
const NO_FP16 = " (skipped: run deno with --v8-flags=--experimental-wasm-fp16)";
/** Every weight format, f16 on both conversions. */
const ALL_KINDS: Kind[] = [
  { dt: "f32", fp16Simd: false },
  { dt: "f16", fp16Simd: false },
  { dt: "f16", fp16Simd: true },
  { dt: "q8", fp16Simd: false },
];
/** The kinds this runtime runs (half-precision SIMD only with the V8 flag). */
const KINDS = ALL_KINDS.filter((k) => HAS_FP16 || !k.fp16Simd);

/** A short label: the format, and "fp16-simd" for the half-precision SIMD f16 kind. */
function kindName(k: Kind): string {
  return k.fp16Simd ? `${k.dt} fp16-simd` : k.dt;
}

/** The f16 path a backend of this kind must report. */
function wantPath(k: Kind): string {
  return k.dt === "f16" && k.fp16Simd ? "fp16-simd" : "bit-trick";
}

/** Worst |a - b| and its index (NaN counts as worst); a and b must be equally long. */
function worstDiff(a: Float32Array, b: Float32Array): { err: number; at: number } {
  assert.equal(a.length, b.length, "lengths differ");
  let err = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= err)) [err, at] = [e, i];
  }
  return { err, at };
}

/** Assert bit-identical results, printing the worst difference; `what` names the case. */
function assertSame(got: Float32Array, want: Float32Array, what: string): void {
  const { err, at } = worstDiff(got, want);
  console.log(
    `  ${what}: worst |diff| ${err}${at >= 0 ? ` at ${at}` : ""} (${want.length} values)`,
  );
  assert.ok(want.some((v) => v !== 0), `${what}: the one-thread result is all zeros`);
  assert.equal(err, 0, `${what}: threaded result differs by ${err} at index ${at}`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: bits differ at ${i}`);
  }
}

/** Everything one op-level case produces on a backend, in a fixed order. */
async function runOps(
  be: Backend,
  dt: WeightDType,
  T: number,
  masked: boolean,
  seed: number,
): Promise<Float32Array[]> {
  const r = rng(seed);
  // Bundled FFN layout like the model's: neuron n = [gate (K) | up (K) | down^T (M)].
  const K = 96, M = dt === "q8" ? 160 : 100, N = 300;
  const { gate, up, down } = ffnBundle(be, uniform(N * (2 * K + M), r, 0.5), N, K, M);
  const bias = be.weights(uniform(N, r), "f32");
  const biasView: MatView = { buf: bias, offset: 0, stride: N, rows: 1, cols: N };
  const rows: IndexList | null = masked ? be.indices(subset(N, 170, r)) : null;
  const R = rows ? rows.length : N;
  const x = be.tensor(T, K);
  be.write(x, uniform(T * K, r));
  const out: Float32Array[] = [];
  const mm = be.tensor(T, R);
  be.matmul(x, gate, rows, biasView, mm);
  out.push(await be.read(mm));
  const acc = be.tensor(T, M);
  be.write(acc, uniform(T * M, r));
  be.matmulTAdd(mm, down, rows, acc);
  out.push(await be.read(acc));
  const f = be.tensor(T, M), act = be.tensor(T, R);
  be.write(f, uniform(T * M, r));
  be.ffn!(x, gate, up, down, rows, f, act);
  out.push(await be.read(f), await be.read(act));
  const f2 = be.tensor(T, M);
  be.ffn!(x, gate, up, down, rows, f2, null);
  out.push(await be.read(f2));
  // Attention: 6 query slots over 2 kv heads (GQA), d = 64, T new tokens after 9 cached ones.
  const d = 64, S = 6, nKv = 2, maxT = 64, pos0 = 9;
  const kc = be.tensor(nKv * maxT, d), vc = be.tensor(nKv * maxT, d);
  be.write(kc, uniform(nKv * maxT * d, r));
  be.write(vc, uniform(nKv * maxT * d, r));
  const q = be.tensor(T, S * d), att = be.tensor(T, S * d);
  be.write(q, uniform(T * S * d, r));
  be.attention(q, kc, vc, be.indices(Int32Array.of(0, 0, 0, 1, 1, 1)), maxT, pos0, 0.125, att);
  out.push(await be.read(att));
  return out;
}

const OP_NAMES = ["matmul+bias", "matmulTAdd", "ffn out", "ffn act", "ffn (no act)", "attention"];

for (const kind of ALL_KINDS) {
  const { dt, fp16Simd } = kind;
  const skip = fp16Simd && !HAS_FP16;
  Deno.test({
    name: `wasm threads: every cut op equals one thread bit for bit (${
      kindName(kind)
    }, 2 and 3 threads)${skip ? NO_FP16 : ""}`,
    ignore: skip,
  }, async () => {
    // Both sides on the same f16 conversion: the one-thread and shared-memory builds of it.
    const one = await WasmBackend.create({ weightDType: dt, fp16Simd });
    assert.equal(one.f16Path, wantPath(kind));
    for (const threads of [2, 3]) {
      const many = await WasmBackend.create({ weightDType: dt, threads, fp16Simd });
      assert.equal(many.f16Path, wantPath(kind));
      const pool = many.threadPool!;
      pool.minWork = 0; // cut every op, however small
      pool.waitForWorkers = true; // and let the workers run part of every one
      pool.decodeColumnCuts = true; // T = 1 too
      try {
        for (const T of [1, 3, 40]) {
          for (const masked of [false, true]) {
            const seed = T * 100 + (masked ? 1 : 0);
            const jobs0 = pool.jobs, shared0 = pool.sharedJobs;
            const got = await runOps(many, dt, T, masked, seed);
            // matmul, matmulTAdd, 2 FFNs of 2 phases each, attention.
            assert.equal(pool.jobs - jobs0, 7, "the pool did not run every op");
            assert.equal(pool.sharedJobs - shared0, 7, "a worker did not run part of every op");
            const want = await runOps(one, dt, T, masked, seed);
            got.forEach((g, i) => {
              const what = `${kindName(kind)} ${threads} threads T=${T} ${
                masked ? "masked" : "dense"
              } ${OP_NAMES[i]}`;
              assertSame(g, want[i], what);
            });
          }
        }
      } finally {
        await many.close();
      }
    }
  });
}

Deno.test(
  `wasm threads on the memory64 build (shared 64-bit memory): every cut op equals one thread (f32, f16 fp16-simd, q8)${
    HAS_FP16 ? "" : NO_FP16.replace("skipped", "f16 skipped")
  }`,
  async () => {
    const kinds = KINDS.filter((k) => k.dt !== "f16" || k.fp16Simd);
    for (const kind of kinds) {
      const { dt, fp16Simd } = kind;
      const one = await WasmBackend.create({ weightDType: dt, addressBits: 64, fp16Simd });
      const many = await WasmBackend.create({
        weightDType: dt,
        addressBits: 64,
        threads: 2,
        fp16Simd,
      });
      assert.equal(many.addressBits, 64);
      assert.equal(one.f16Path, wantPath(kind));
      assert.equal(many.f16Path, wantPath(kind));
      const pool = many.threadPool!;
      pool.minWork = 0;
      pool.waitForWorkers = true;
      pool.decodeColumnCuts = true;
      try {
        for (const T of [1, 40]) {
          const shared0 = pool.sharedJobs;
          const got = await runOps(many, dt, T, true, T + 7);
          assert.equal(pool.sharedJobs - shared0, 7, "a worker did not run part of every op");
          const want = await runOps(one, dt, T, true, T + 7);
          got.forEach((g, i) =>
            assertSame(g, want[i], `wasm64 ${kindName(kind)} T=${T} masked ${OP_NAMES[i]}`)
          );
        }
      } finally {
        await many.close();
      }
    }
  },
);

/** A random SEAP-style mask over `cfg` (kept heads, neurons, bias compensation). */
function randomMask(
  cfg: { numLayers: number; numHeads: number; intermediateSize: number; hiddenSize: number },
  r: () => number,
) {
  return {
    name: "threads-random",
    layers: Array.from({ length: cfg.numLayers }, () => ({
      heads: subset(cfg.numHeads, 1 + Math.floor(r() * cfg.numHeads), r),
      neurons: subset(
        cfg.intermediateSize,
        Math.floor(cfg.intermediateSize * (0.3 + 0.5 * r())),
        r,
      ),
      biasAttn: uniform(cfg.hiddenSize, r, 0.1),
      biasFfn: uniform(cfg.hiddenSize, r, 0.1),
    })),
  };
}

/** Prefill logits of every prompt token, then `steps` decode steps, on `threads` threads. */
async function forward(
  dir: string,
  kind: Kind,
  threads: number,
  masked: boolean,
  minWork: number | null,
): Promise<{ rows: Float32Array[]; jobs: number }> {
  const { loadModel } = await import("../lib/model/model.ts");
  const { Sequence } = await import("../lib/model/sequence.ts");
  const { prepareMask } = await import("../lib/model/prepared_mask.ts");
  const be = await WasmBackend.create({ weightDType: kind.dt, threads, fp16Simd: kind.fp16Simd });
  try {
    assert.equal(be.f16Path, wantPath(kind));
    if (be.threadPool && minWork !== null) be.threadPool.minWork = minWork;
    if (be.threadPool) {
      be.threadPool.waitForWorkers = true;
      be.threadPool.decodeColumnCuts = minWork === 0; // the fixture run cuts every op
    }
    const model = await loadModel(dir, { backend: be });
    const cfg = model.config;
    const r = rng(4242);
    const mask = masked ? prepareMask(model, randomMask(cfg, r)) : undefined;
    const ids = Int32Array.from({ length: 44 }, () => Math.floor(r() * cfg.vocabSize));
    const seq = new Sequence(model, { maxTokens: 64, mask });
    const rows = [await seq.prefill(ids.subarray(0, 40), { allLogits: true })];
    for (let k = 40; k < 44; k++) rows.push(await seq.decode(ids[k]));
    seq.free();
    return { rows, jobs: be.threadPool?.sharedJobs ?? 0 };
  } finally {
    await be.close();
  }
}

async function checkModel(dir: string, label: string, minWork: number | null): Promise<void> {
  for (const kind of KINDS) {
    for (const masked of [false, true]) {
      const want = await forward(dir, kind, 1, masked, null);
      const got = await forward(dir, kind, 2, masked, minWork);
      assert.ok(got.jobs > 0, "the 2-thread run never used its worker");
      got.rows.forEach((g, i) => {
        const step = i === 0 ? "prefill (40 tokens, all logits)" : `decode step ${i}`;
        const what = `${label} ${kindName(kind)} ${masked ? "masked" : "dense"} ${step}`;
        assertSame(g, want.rows[i], what);
      });
      console.log(`  (${got.jobs} jobs on 2 threads)`);
    }
  }
}

Deno.test(
  `wasm threads: prefill and decode of a random Llama-shaped model equal one thread (f32, f16 on both conversions, q8; dense and masked)${
    HAS_FP16 ? "" : NO_FP16.replace("skipped", "fp16-simd skipped")
  }`,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "seap_threads_" });
    try {
      await writeRandomModel(dir, {
        hidden: 256,
        intermediate: 704,
        layers: 2,
        heads: 4,
        kvHeads: 2,
        vocab: 2048, // a [2048, 256] LM head: decode cuts it at the pool's own threshold
        tied: false,
      }, 5);
      await checkModel(dir, "random 256x704", null); // the pool's own thresholds
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("wasm threads: the tiny_chat fixture with every op cut equals one thread", async () => {
  const dir = new URL("./fixtures/tiny_chat", import.meta.url).pathname;
  await checkModel(dir, "tiny_chat", 0);
});

Deno.test("wasm threads: the pool starts and stops cleanly", async () => {
  const be = await WasmBackend.create({ threads: 3 });
  assert.equal(be.threads, 3);
  const pool = be.threadPool!;
  const w = be.weights(Float32Array.from({ length: 64 * 4096 }, (_, i) => (i % 7) - 3));
  const x = be.tensor(1, 4096), out = be.tensor(1, 64);
  be.write(x, new Float32Array(4096).fill(1));
  be.matmul(x, { buf: w, offset: 0, stride: 4096, rows: 64, cols: 4096 }, null, null, out);
  assert.equal(pool.jobs, 1);
  const withPool = be.usedBytes;
  await be.close();
  assert.equal(pool.closed, true);
  assert.equal(pool.exitedWorkers, 2, "a worker did not leave its loop");
  assert.ok(be.usedBytes < withPool, "the pool's stacks and scratch were not returned");
  assert.equal(be.threads, 1);
  await be.close(); // idempotent
  // Still usable, on one thread, with the same result.
  const before = await be.read(out);
  be.matmul(x, { buf: w, offset: 0, stride: 4096, rows: 64, cols: 4096 }, null, null, out);
  assert.deepEqual(await be.read(out), before);
  assert.throws(() => pool.run([]), /closed/);
  await assert.rejects(WasmBackend.create({ threads: 0 }), /threads/);
});

Deno.test("wasm threads: a process that closes its threaded backend exits by itself", async () => {
  const lib = new URL("../lib/backends/wasm.ts", import.meta.url).href;
  const code = `
    import { WasmBackend } from ${JSON.stringify(lib)};
    const be = await WasmBackend.create({ threads: 2 });
    be.threadPool.minWork = 0;
    const w = be.weights(new Float32Array(128 * 64).fill(1));
    const x = be.tensor(1, 64), o = be.tensor(1, 128);
    be.matmul(x, { buf: w, offset: 0, stride: 64, rows: 128, cols: 64 }, null, null, o);
    await be.close();
    console.log("closed", be.threadPool === null);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const r = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `the child did not exit cleanly (signal ${r.signal}):\n${text}`);
  assert.match(text, /closed true/);
});
