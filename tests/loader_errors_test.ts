/**
 * Bad model folders get clear errors naming what is wrong: unsupported architectures and
 * fields, truncated or malformed safetensors, missing or mis-shaped tensors. Also checks the
 * safetensors writer against the reader and the dtype conversions against known values.
 */

import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../lib/model/config.ts";
import {
  f16ToF32,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
  toFloat32,
  toInt32,
} from "../lib/formats/safetensors.ts";
import { loadModel } from "../lib/model/model.ts";

const FIX = new URL("./fixtures/llama_gqa_llama3rope", import.meta.url).pathname;

async function copyFixture(): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const f of ["config.json", "model.safetensors"]) {
    await Deno.copyFile(`${FIX}/${f}`, `${dir}/${f}`);
  }
  return dir;
}

Deno.test("config: unsupported architecture, field and rope type are named", () => {
  const base = JSON.parse(Deno.readTextFileSync(`${FIX}/config.json`));
  assert.throws(
    () => parseConfig({ ...base, architectures: ["GPT2LMHeadModel"] }),
    (e: Error) => e instanceof ConfigError && e.message.includes("GPT2LMHeadModel"),
  );
  assert.throws(
    () => parseConfig({ ...base, hidden_act: "gelu" }),
    (e: Error) => e instanceof ConfigError && e.message.includes("hidden_act"),
  );
  assert.throws(
    () => parseConfig({ ...base, rope_scaling: { rope_type: "yarn", factor: 2 } }),
    (e: Error) => e instanceof ConfigError && e.message.includes("yarn"),
  );
  assert.throws(
    () => parseConfig({ ...base, num_key_value_heads: 3 }),
    (e: Error) => e instanceof ConfigError && e.message.includes("num_key_value_heads"),
  );
  const { hidden_size: _, ...noHidden } = base;
  assert.throws(
    () => parseConfig(noHidden),
    (e: Error) => e instanceof ConfigError && e.message.includes("hidden_size"),
  );
  const cfg = parseConfig(base);
  assert.equal(cfg.ropeScaling.type, "llama3");
  assert.equal(cfg.numKvHeads, 2);
});

Deno.test("safetensors: writer and reader round-trip every dtype", () => {
  const f = new Float32Array([1.5, -2.25, 3e-3, 0]);
  const i = new Int32Array([7, -1, 2 ** 30]);
  const h = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]); // 1, -2, 65504, 2^-24
  const b = new Uint16Array([0x3fc0, 0xc080]); // bf16 1.5, -4
  const bytes = serializeSafetensors({
    f: { dtype: "F32", shape: [2, 2], data: f },
    i: { dtype: "I32", shape: [3], data: i },
    h: { dtype: "F16", shape: [4], data: h },
    b: { dtype: "BF16", shape: [2], data: b },
  }, { who: "test" });
  const p = parseSafetensors(bytes);
  assert.deepEqual(p.metadata, { who: "test" });
  assert.deepEqual([...toFloat32(p.tensors.get("f")!)], [...f]);
  assert.deepEqual([...toInt32(p.tensors.get("i")!)], [...i]);
  assert.deepEqual([...toFloat32(p.tensors.get("h")!)], [1, -2, 65504, 2 ** -24]);
  assert.deepEqual([...toFloat32(p.tensors.get("b")!)], [1.5, -4]);
  assert.equal(f16ToF32(0x7c00), Infinity);
});

Deno.test("safetensors: truncated and malformed files get clear errors", () => {
  const good = serializeSafetensors({ w: { dtype: "F32", shape: [8], data: new Float32Array(8) } });
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 4), /truncated/],
    [good.subarray(0, good.length - 4), /truncated/],
    [new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 1]), /header length/],
    [
      (() => {
        const x = good.slice();
        x[8] = "!".charCodeAt(0);
        return x;
      })(),
      /not valid JSON/,
    ],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => parseSafetensors(bytes, "x.safetensors"), (e: Error) => {
      assert.ok(e instanceof SafetensorsError, `${e}`);
      assert.match(e.message, re);
      assert.match(e.message, /x\.safetensors/);
      return true;
    });
  }
  const wrongShape = new TextEncoder().encode(
    JSON.stringify({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }),
  );
  const buf = new Uint8Array(8 + wrongShape.length + 8);
  new DataView(buf.buffer).setBigUint64(0, BigInt(wrongShape.length), true);
  buf.set(wrongShape, 8);
  assert.throws(() => parseSafetensors(buf), /needs 12 bytes/);
});

Deno.test("loadModel: truncated weights, missing tensor and missing files are named", async () => {
  const dir = await copyFixture();
  try {
    const full = await Deno.readFile(`${dir}/model.safetensors`);
    await Deno.writeFile(`${dir}/model.safetensors`, full.subarray(0, full.length - 100));
    await assert.rejects(() => loadModel(dir), /model\.safetensors.*truncated/);
    // A checkpoint without one tensor.
    const p = parseSafetensors(full);
    const kept: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [n, t] of p.tensors) {
      if (n !== "model.layers.1.mlp.up_proj.weight") {
        kept[n] = { dtype: "F32", shape: t.shape, data: toFloat32(t) };
      }
    }
    await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(kept));
    await assert.rejects(() => loadModel(dir), /model\.layers\.1\.mlp\.up_proj\.weight.*missing/);
    await Deno.remove(`${dir}/model.safetensors`);
    await assert.rejects(() => loadModel(dir), /no model\.safetensors/);
    await Deno.writeTextFile(`${dir}/config.json`, "{not json");
    await assert.rejects(() => loadModel(dir), /config\.json is not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
