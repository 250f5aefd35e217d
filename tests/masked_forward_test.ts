/**
 * A masked forward equals the dense forward of the same model physically pruned: rows and
 * columns sliced out into a smaller dense model, bias-compensation vectors added. Random masks
 * prune heads, whole kv groups, every head of a layer, and neurons, differently per layer.
 */

import assert from "node:assert/strict";
import { loadModel, type Model } from "../lib/model/model.ts";
import type { Backend } from "../lib/backends/backend.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { prepareMask } from "../lib/model/prepared_mask.ts";
import type { Mask } from "../lib/model/mask.ts";
import { readCheckpoint, tensorF32 } from "../lib/model/checkpoint.ts";
import { ropeInvFreq } from "../lib/model/rope.ts";
import { BACKENDS, destroyTestBackends } from "./helpers/test_backends.ts";
import { rng, subset } from "./helpers/seeded.ts";
import { naiveForward, type NaiveLayer, type NaiveModel } from "./helpers/naive_forward.ts";

function randomMask(model: Model, seed: number): Mask {
  const cfg = model.config;
  const r = rng(seed);
  const group = cfg.numHeads / cfg.numKvHeads;
  return {
    name: `random-${seed}`,
    layers: Array.from({ length: cfg.numLayers }, (_, l) => {
      let heads: Int32Array;
      if (l === 0 && cfg.numKvHeads > 1) {
        // Prune the whole first kv group plus a random extra head.
        heads = Int32Array.from(
          Array.from({ length: cfg.numHeads }, (_, h) => h).filter((h) =>
            h >= group && (h !== group + 1)
          ),
        );
      } else if (l === 1) {
        heads = new Int32Array(0); // every head of the layer pruned
      } else heads = subset(cfg.numHeads, 1 + Math.floor(r() * cfg.numHeads), r);
      const bias = () => Float32Array.from({ length: cfg.hiddenSize }, () => (r() - 0.5) * 0.2);
      return {
        neurons: subset(
          cfg.intermediateSize,
          Math.floor(cfg.intermediateSize * (0.2 + 0.6 * r())),
          r,
        ),
        heads,
        biasAttn: bias(),
        biasFfn: l === 0 ? null : bias(),
      };
    }),
  };
}

async function physicallyPruned(model: Model, mask: Mask): Promise<NaiveModel> {
  const cfg = model.config;
  const ck = await readCheckpoint(model.dir);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: d } = cfg;
  const f64 = (a: Float32Array) => Float64Array.from(a);
  const t = (name: string, shape: number[]) => f64(tensorF32(ck, name, shape));
  const has = (name: string) => ck.tensors.has(name);
  const group = nh / nkv;
  const layers: NaiveLayer[] = mask.layers.map((lm, l) => {
    const p = `model.layers.${l}`;
    const q = t(`${p}.self_attn.q_proj.weight`, [nh * d, H]);
    const k = t(`${p}.self_attn.k_proj.weight`, [nkv * d, H]);
    const v = t(`${p}.self_attn.v_proj.weight`, [nkv * d, H]);
    const o = t(`${p}.self_attn.o_proj.weight`, [H, nh * d]);
    const down = t(`${p}.mlp.down_proj.weight`, [H, I]);
    const gate = t(`${p}.mlp.gate_proj.weight`, [I, H]);
    const up = t(`${p}.mlp.up_proj.weight`, [I, H]);
    const heads = [...lm.heads];
    const kvKept = [...new Set(heads.map((h) => Math.floor(h / group)))].sort((a, b) => a - b);
    const rowsOf = (m: Float64Array, blk: number) => m.slice(blk * d * H, (blk + 1) * d * H);
    const bias = (name: string, blocks: number[]) => {
      const all = f64(tensorF32(ck, name, [ck.tensors.get(name)!.shape[0]]));
      return blocks.map((b) => all.slice(b * d, (b + 1) * d));
    };
    return {
      attnNorm: t(`${p}.input_layernorm.weight`, [H]),
      q: heads.map((h) => rowsOf(q, h)),
      qb: has(`${p}.self_attn.q_proj.bias`) ? bias(`${p}.self_attn.q_proj.bias`, heads) : null,
      kvOfHead: heads.map((h) => kvKept.indexOf(Math.floor(h / group))),
      k: kvKept.map((g) => rowsOf(k, g)),
      kb: has(`${p}.self_attn.k_proj.bias`) ? bias(`${p}.self_attn.k_proj.bias`, kvKept) : null,
      v: kvKept.map((g) => rowsOf(v, g)),
      vb: has(`${p}.self_attn.v_proj.bias`) ? bias(`${p}.self_attn.v_proj.bias`, kvKept) : null,
      qNorm: cfg.qkNorm ? t(`${p}.self_attn.q_norm.weight`, [d]) : null,
      kNorm: cfg.qkNorm ? t(`${p}.self_attn.k_norm.weight`, [d]) : null,
      oCols: heads.map((h) => {
        const c = new Float64Array(H * d);
        for (let r = 0; r < H; r++) {
          for (let i = 0; i < d; i++) c[r * d + i] = o[r * nh * d + h * d + i];
        }
        return c;
      }),
      oBias: lm.biasAttn ? f64(lm.biasAttn) : null,
      mlpNorm: t(`${p}.post_attention_layernorm.weight`, [H]),
      gate: [...lm.neurons].map((j) => gate.slice(j * H, (j + 1) * H)),
      up: [...lm.neurons].map((j) => up.slice(j * H, (j + 1) * H)),
      downCol: [...lm.neurons].map((j) =>
        Float64Array.from({ length: H }, (_, r) => down[r * I + j])
      ),
      downBias: lm.biasFfn ? f64(lm.biasFfn) : null,
    };
  });
  const embed = t("model.embed_tokens.weight", [cfg.vocabSize, H]);
  return {
    cfg,
    embed,
    layers,
    norm: t("model.norm.weight", [H]),
    lmHead: cfg.tieWordEmbeddings ? embed : t("lm_head.weight", [cfg.vocabSize, H]),
    invFreq: f64(ropeInvFreq(cfg)),
  };
}

// f32 backends only: f16 weight storage is compared to f16-rounded weights in the conformance suite.
const F32_BACKENDS = BACKENDS.filter((b) => !/(f16|q8)$/.test(b.name));
for (const bc of F32_BACKENDS) {
  const made = await bc.make();
  for (const name of ["llama_gqa_llama3rope", "qwen2_bias", "qwen3_qknorm"]) {
    for (const seed of [1, 2]) {
      Deno.test({
        name: `masked forward = physically pruned model: ${bc.name} ${name} seed ${seed}`,
        ignore: typeof made === "string",
        fn: async () => {
          const model = await loadModel(new URL(`./fixtures/${name}`, import.meta.url).pathname, {
            backend: await bc.make() as Backend,
          });
          const mask = randomMask(model, seed);
          const pruned = await physicallyPruned(model, mask);
          const r = rng(100 + seed);
          const ids = Array.from(
            { length: 12 },
            () => 4 + Math.floor(r() * (model.config.vocabSize - 4)),
          );
          const want = naiveForward(pruned, ids); // [T][V]
          const seq = new Sequence(model, { mask: prepareMask(model, mask), maxTokens: 32 });
          const V = model.config.vocabSize;
          const P = 8;
          const got: Float32Array[] = [];
          const pre = await seq.prefill(Int32Array.from(ids.slice(0, P)), { allLogits: true });
          for (let t = 0; t < P; t++) got.push(pre.subarray(t * V, (t + 1) * V));
          for (let t = P; t < ids.length; t++) got.push(await seq.decode(ids[t]));
          let worst = 0;
          let where = "";
          got.forEach((g, t) =>
            g.forEach((v, i) => {
              const e = Math.abs(v - want[t][i]);
              if (e > worst) [worst, where] = [e, `token ${t} id ${i}`];
            })
          );
          assert.ok(worst < 1e-5, `${name}: worst |masked - pruned| = ${worst} at ${where}`);
          // The mask really changed the output (the comparison is not vacuous).
          const dense = new Sequence(model, { maxTokens: 32 });
          const dl = await dense.prefill(Int32Array.from(ids.slice(0, P)), { allLogits: true });
          const change = Math.max(...pre.map((v, i) => Math.abs(v - dl[i])));
          assert.ok(change > 1e-2, `mask changed logits by only ${change}`);
        },
      });
    }
  }
}

// Not a test: the WebGPU devices this file made are destroyed once its tests have run.
Deno.test.afterAll(() => {
  destroyTestBackends();
});
