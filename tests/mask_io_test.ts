import assert from "node:assert/strict";
import {
  decodeMask,
  decodeRouter,
  encodeMask,
  encodeRouter,
  loadMaskSet,
  type Manifest,
  MANIFEST_FORMAT,
  modelBlock,
  type ModelIdentity,
  writeListedFile,
  writeManifest,
} from "../lib/masks/mask_io.ts";
import { parseSafetensors, toFloat32, toInt32 } from "../lib/formats/safetensors.ts";
import { parseConfig } from "../lib/model/config.ts";
import type { Mask } from "../lib/model/mask.ts";
import { route, type Router } from "../lib/masks/router.ts";
import { encodeTensors } from "../lib/masks/tensor_file.ts";
import { MaskModelMismatchError } from "../lib/masks/errors.ts";

const cfgJson = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 10,
};
const model: ModelIdentity = {
  name: "toy",
  fingerprint: "ab".repeat(32),
  config: parseConfig(cfgJson),
};

function toyMask(name: string): Mask {
  return {
    name,
    layers: [0, 1, 2].map((l) => ({
      neurons: Int32Array.from(l === 0 ? [] : [1, 3, 5 + l]),
      heads: Int32Array.from(l === 2 ? [1] : [0, 1]),
      biasAttn: l === 2 ? Float32Array.from({ length: 8 }, (_, i) => i * 0.25 - 1) : null,
      biasFfn: l === 0 ? null : Float32Array.from({ length: 8 }, (_, i) => Math.sin(i + l)),
    })),
  };
}

const router: Router = {
  tasks: ["a", "b"],
  layer: 2,
  threshold: 0.4,
  mean: Float32Array.from({ length: 8 }, (_, i) => i),
  std: new Float32Array(8).fill(2),
  weight: Float32Array.from({ length: 16 }, (_, i) => i / 7),
  bias: Float32Array.from([0.5, -0.5]),
  // written without an OOD test: the format of routers calibrated before it existed
  ood: null,
};

async function writeSet(dir: string, m: ModelIdentity = model): Promise<void> {
  const masks = [toyMask("a@0.5"), toyMask("generic@0.5")];
  const entries = [];
  for (const mk of masks) {
    const f = await writeListedFile(
      dir,
      `${mk.name}.safetensors`,
      encodeMask(mk, { fingerprint: m.fingerprint, method: "seap" }),
    );
    entries.push({
      ...f,
      name: mk.name,
      method: "seap",
      task: null,
      sparsity: 0.5,
      achieved: 0.5,
      params: {},
    });
  }
  const rf = await writeListedFile(
    dir,
    "router.safetensors",
    encodeRouter(router, { fingerprint: m.fingerprint }),
  );
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    model: modelBlock(m),
    created: new Date(0).toISOString(),
    masks: entries,
    router: { ...rf, tasks: router.tasks, layer: router.layer, threshold: router.threshold },
    stats: null,
    params: {},
  };
  await writeManifest(dir, manifest);
}

Deno.test("masks and router round-trip exactly; the engine's safetensors reader parses them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSet(dir);
    const set = await loadMaskSet(dir, model);
    assert.deepEqual(set.masks.get("a@0.5"), toyMask("a@0.5"));
    assert.deepEqual(set.router, router);
    const raw = parseSafetensors(await Deno.readFile(`${dir}/a@0.5.safetensors`));
    assert.deepEqual([...toInt32(raw.tensors.get("layers.1.neurons")!)], [1, 3, 6]);
    assert.deepEqual(
      toFloat32(raw.tensors.get("layers.2.bias_attn")!),
      toyMask("x").layers[2].biasAttn,
    );
    assert.equal(raw.metadata.method, "seap");
    assert.equal(decodeMask(await Deno.readFile(`${dir}/a@0.5.safetensors`)).mask.name, "a@0.5");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mask set for another model is refused, saying fingerprint or which size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSet(dir);
    const other = loadMaskSet(dir, { ...model, name: "other", fingerprint: "cd".repeat(32) });
    await assert.rejects(
      other,
      /made for model "toy" \(fingerprint abababababab….*"other" has fingerprint cdcdcdcdcdcd/,
    );
    await assert.rejects(other, MaskModelMismatchError); // a domain error, no HTTP status
    const deeper = parseConfig({ ...cfgJson, num_hidden_layers: 4 });
    await assert.rejects(
      loadMaskSet(dir, { ...model, config: deeper }),
      /layer count 3, the model has 4/,
    );
    await assert.rejects(loadMaskSet(dir, { ...model, config: deeper }), MaskModelMismatchError);
    const wider = parseConfig({ ...cfgJson, intermediate_size: 16 });
    await assert.rejects(
      loadMaskSet(dir, { ...model, config: wider }),
      /intermediate size 12, the model has 16/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a truncated file and a tampered file are refused, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSet(dir);
    const p = `${dir}/generic@0.5.safetensors`;
    const good = await Deno.readFile(p);
    await Deno.writeFile(p, good.subarray(0, good.length - 10));
    await assert.rejects(
      loadMaskSet(dir, model),
      /generic@0\.5\.safetensors: truncated \(\d+ bytes, manifest\.json says \d+\)/,
    );
    const bad = good.slice();
    bad[bad.length - 3] ^= 0x40; // flip a bit inside a bias value
    await Deno.writeFile(p, bad);
    await assert.rejects(
      loadMaskSet(dir, model),
      /generic@0\.5\.safetensors: sha256 .* modified \(tampered/,
    );
    await Deno.writeFile(p, good);
    const r = await Deno.readFile(`${dir}/router.safetensors`);
    r[r.length - 1] ^= 1;
    await Deno.writeFile(`${dir}/router.safetensors`, r);
    await assert.rejects(loadMaskSet(dir, model), /router\.safetensors: sha256/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("router OOD test round-trips; an older router file loads without one; an unknown test is refused", () => {
  const withOod: Router = {
    ...router,
    ood: {
      weight: Float32Array.from({ length: 8 }, (_, i) => i - 3.5),
      bias: 0.25,
      threshold: 0.2,
    },
  };
  const back = decodeRouter(encodeRouter(withOod, { fingerprint: "x" }));
  assert.deepEqual(back, withOod);
  const f = Float32Array.from({ length: 8 }, (_, i) => i * 0.3);
  assert.deepEqual(route(back, f), route(withOod, f));
  // a router file as written before the OOD test: the same tensors and metadata, nothing else
  const old = encodeTensors({
    mean: { dtype: "F32", shape: [8], data: router.mean },
    std: { dtype: "F32", shape: [8], data: router.std },
    weight: { dtype: "F32", shape: [2, 8], data: router.weight },
    bias: { dtype: "F32", shape: [2], data: router.bias },
  }, { format: MANIFEST_FORMAT, kind: "router", tasks: '["a","b"]', layer: "2", threshold: "0.4" });
  const o = decodeRouter(old);
  assert.equal(o.ood, null);
  const res = route(o, f);
  assert.equal(res.oodScore, null);
  assert.equal(res.useGeneric, res.confidence < 0.4);
  // a test this version does not know is refused with a clear message
  const bytes = encodeRouter(withOod);
  const text = new TextDecoder().decode(bytes);
  const swapped = new TextEncoder().encode(text.replace('"other-class"', '"mahalanobis"'));
  assert.throws(
    () => decodeRouter(Uint8Array.from(swapped), "r.safetensors"),
    /r\.safetensors: unknown out-of-distribution test "mahalanobis".*recalibrate/,
  );
});
