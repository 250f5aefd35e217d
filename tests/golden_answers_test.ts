/**
 * Behaviour guard for restructurings (issue 12): the greedy tokens and first-step logits of the
 * fixture models and the embedded default model, and the server's answers (chat and text
 * completions, streaming and not, routed and forced masks), must equal what the code before
 * the restructuring produced. The golden file `tests/golden/answers.json` was written by the
 * code on `main` before any of issue 12 landed; regenerate it only for an intended change:
 *
 *   SEAP_GOLDEN=write deno test -A tests/golden_answers_test.ts
 *
 * All of it runs on the reference backend (plain TypeScript), which does not depend on the
 * machine. Tolerances: greedy tokens, texts, token counts, masks and finish reasons exact;
 * logits within {@link LOGIT_TOL} (a reordered float32 sum moves them ~1e-6, a sign flip of one
 * weight by far more: the last test below shows the check failing on exactly that); the
 * router's confidence within 1e-6 (the fixture router's float32 vs float64 softmax).
 */

import assert from "node:assert/strict";
import { loadModel, type Model } from "../lib/model/model.ts";
import type { PreparedMask } from "../lib/model/prepared_mask.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { createApp } from "../lib/server/app.ts";
import { DEFAULT_CONFIG } from "../lib/server/config.ts";
import { loadEngine } from "../lib/server/engine_handle.ts";
import { post, TINY_CHAT, tinyApp } from "./server_helpers.ts";
import { argmax } from "../lib/generate/sampler.ts";

const GOLDEN = new URL("./golden/answers.json", import.meta.url).pathname;
const WRITE = Deno.env.get("SEAP_GOLDEN") === "write";
/** Largest allowed difference of a golden logit (absolute, logits are O(1..20)). */
const LOGIT_TOL = 1e-4;
/** Largest allowed difference of a router confidence. */
const CONFIDENCE_TOL = 1e-6;
const GREEDY_STEPS = 12;
const TOP_K = 20;

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** What one model run records: greedy ids and the first step's top logits. */
interface ModelRun {
  prompt: number[];
  greedy: number[];
  top: { id: number; logit: number }[];
}

// deno-lint-ignore no-explicit-any
type Json = any;

let golden: Record<string, Json> = {};
if (!WRITE) golden = JSON.parse(await Deno.readTextFile(GOLDEN));
const written: Record<string, Json> = {};

/** Compare `actual` to the golden entry `key` (or record it in write mode). */
function check(key: string, actual: Json, compare: (a: Json, e: Json) => void): void {
  if (WRITE) {
    written[key] = actual;
    return;
  }
  assert.ok(key in golden, `no golden entry "${key}" (regenerate with SEAP_GOLDEN=write)`);
  compare(actual, golden[key]);
}

/** Prefill `prompt`, record the top logits, then greedy-decode {@link GREEDY_STEPS} tokens. */
async function runModel(
  model: Model,
  prompt: number[],
  mask: PreparedMask | null = null,
): Promise<ModelRun> {
  const seq = new Sequence(model, { maxTokens: prompt.length + GREEDY_STEPS, mask });
  try {
    let logits = await seq.prefill(Int32Array.from(prompt)); // [V]
    const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    const top = order.slice(0, TOP_K).map((id) => ({ id, logit: round(logits[id], 6) }));
    const greedy: number[] = [];
    for (let i = 0; i < GREEDY_STEPS; i++) {
      const id = argmax(logits);
      greedy.push(id);
      if (i + 1 < GREEDY_STEPS) logits = await seq.decode(id);
    }
    return { prompt, greedy, top };
  } finally {
    seq.free();
  }
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

/**
 * Greedy ids exact; each golden top logit within {@link LOGIT_TOL} of the logit the run gives
 * that id, and the run's top ids equal the golden's except where neighbours are within the
 * tolerance of each other (an order a rounding may swap).
 */
function compareModelRun(a: ModelRun, e: ModelRun, what: string): void {
  assert.deepEqual(a.prompt, e.prompt, `${what}: prompt ids`);
  assert.deepEqual(a.greedy, e.greedy, `${what}: greedy tokens`);
  const got = new Map(a.top.map((t) => [t.id, t.logit]));
  let worst = 0;
  let worstId = -1;
  for (const t of e.top.slice(0, TOP_K - 1)) {
    const v = got.get(t.id);
    assert.ok(v !== undefined, `${what}: token ${t.id} (logit ${t.logit}) left the top ${TOP_K}`);
    const d = Math.abs(v - t.logit);
    if (d > worst) [worst, worstId] = [d, t.id];
  }
  assert.ok(
    worst <= LOGIT_TOL,
    `${what}: logit of token ${worstId} moved by ${
      worst.toExponential(2)
    } (tolerance ${LOGIT_TOL})`,
  );
  for (let i = 0; i < e.top.length; i++) {
    if (a.top[i].id === e.top[i].id) continue;
    const gap = Math.abs(e.top[i].logit - a.top[i].logit);
    assert.ok(
      gap <= 2 * LOGIT_TOL,
      `${what}: rank ${i} is token ${a.top[i].id}, was ${e.top[i].id}`,
    );
  }
}

/** Deep equality, numbers under a `confidence` key within {@link CONFIDENCE_TOL}. */
function compareAnswer(a: Json, e: Json, path = "answer"): void {
  if (typeof e === "number" && /confidence$/.test(path)) {
    assert.equal(typeof a, "number", path);
    assert.ok(Math.abs(a - e) <= CONFIDENCE_TOL, `${path}: ${a} vs golden ${e}`);
    return;
  }
  if (typeof e === "string" && e !== "none" && /x-seap-confidence$/.test(path)) {
    assert.ok(Math.abs(Number(a) - Number(e)) <= 1e-4 + 1e-12, `${path}: ${a} vs golden ${e}`);
    return;
  }
  if (e === null || typeof e !== "object") {
    assert.deepEqual(a, e, path);
    return;
  }
  assert.ok(a !== null && typeof a === "object", `${path}: ${JSON.stringify(a)}`);
  assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), `${path}: keys`);
  for (const k of Object.keys(e)) compareAnswer(a[k], e[k], `${path}.${k}`);
}

/** A response with its volatile fields (id, created) blanked; SSE bodies as their events. */
async function answer(res: Response): Promise<Json> {
  const headers: Record<string, string> = {};
  for (const [k, v] of res.headers) {
    if (k.startsWith("x-seap-") || k === "content-type") headers[k] = v;
  }
  const text = await res.text();
  const blank = (o: Json) => {
    if (o && typeof o === "object") {
      if ("id" in o) o.id = "<id>";
      if ("created" in o) o.created = 0;
    }
    return o;
  };
  const body = headers["content-type"]?.startsWith("text/event-stream")
    ? text.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => {
      const d = f.slice("data: ".length);
      return d === "[DONE]" ? d : blank(JSON.parse(d));
    })
    : blank(JSON.parse(text));
  return { status: res.status, headers, body };
}

/** The requests the server answers; each is run on the fixture app and the default model. */
function requests(model: string, prompts: string[], forced: string): [string, string, Json][] {
  const out: [string, string, Json][] = [];
  prompts.forEach((p, i) => {
    const messages = [{ role: "user", content: p }];
    out.push([`chat ${i} auto`, "/v1/chat/completions", {
      model,
      messages,
      temperature: 0,
      max_tokens: GREEDY_STEPS,
    }]);
    out.push([`chat ${i} stream auto`, "/v1/chat/completions", {
      model,
      messages,
      temperature: 0,
      max_tokens: GREEDY_STEPS,
      stream: true,
      stream_options: { include_usage: true },
    }]);
  });
  out.push([`chat 0 ${forced}`, "/v1/chat/completions", {
    model,
    messages: [{ role: "user", content: prompts[0] }],
    temperature: 0,
    max_completion_tokens: GREEDY_STEPS,
    seap: { mask: forced },
  }]);
  out.push([`chat 1 dense seeded`, "/v1/chat/completions", {
    model,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: prompts[1] }],
    temperature: 0.8,
    seed: 42,
    max_tokens: GREEDY_STEPS,
    seap: { mask: "dense" },
  }]);
  out.push([`completion 0 auto`, "/v1/completions", {
    model,
    prompt: prompts[0],
    temperature: 0,
    max_tokens: GREEDY_STEPS,
  }]);
  out.push([`completion 1 stream generic`, "/v1/completions", {
    model,
    prompt: prompts[1],
    temperature: 0,
    max_tokens: GREEDY_STEPS,
    stream: true,
    seap: { mask: "generic" },
  }]);
  // Longer than the app's prefill chunk (64 tokens): routed on a scratch head pass, then
  // prefilled in chunks.
  out.push([`chat long stream auto`, "/v1/chat/completions", {
    model,
    messages: [{ role: "user", content: `${prompts.join(" ")} `.repeat(8) + prompts[0] }],
    temperature: 0,
    max_tokens: GREEDY_STEPS,
    stream: true,
  }]);
  out.push([`route 0`, "/v1/route", { model, messages: [{ role: "user", content: prompts[0] }] }]);
  return out;
}

const FIXTURES = ["llama_gqa_llama3rope", "qwen3_qknorm", "mistral"];
const FIXTURE_PROMPTS = [[1, 17, 42, 5, 88, 23, 61, 9], [1, 70, 70, 12, 4, 96, 33]];
const CHAT_PROMPTS = ["reverse: cat", "Is 7 bigger than 3?"];
const DEFAULT_PROMPTS = ["Reverse the letters: j g t v s", "Sort the digits: 5 3 9 1 7"];

Deno.test("golden: fixture models, greedy tokens and first-step logits", async () => {
  for (const name of FIXTURES) {
    const model = await loadModel(fixture(name));
    for (const [i, p] of FIXTURE_PROMPTS.entries()) {
      const key = `model ${name} prompt ${i}`;
      check(key, await runModel(model, p), (a, e) => compareModelRun(a, e, key));
    }
  }
});

Deno.test("golden: tiny chat fixture, dense and masked, and its server answers", async () => {
  const { app, engine } = await tinyApp({ threshold: 0 });
  for (const [i, p] of CHAT_PROMPTS.entries()) {
    const ids = engine.tokenizer.encodeChat([{ role: "user", content: p }], {
      addGenerationPrompt: true,
    });
    const key = `model tiny_chat chat ${i}`;
    check(key, await runModel(engine.model, ids), (a, e) => compareModelRun(a, e, key));
    const masked = engine.catalog.entries.find((e) => e.name === "beta@0.5")!;
    const mkey = `model tiny_chat chat ${i} mask beta@0.5`;
    check(
      mkey,
      await runModel(engine.model, ids, masked.prepared),
      (a, e) => compareModelRun(a, e, mkey),
    );
  }
  for (const [name, path, body] of requests(engine.modelId, CHAT_PROMPTS, "gamma@0.25")) {
    const key = `server tiny_chat ${name}`;
    check(key, await answer(await post(app, path, body)), (a, e) => compareAnswer(a, e, key));
  }
});

Deno.test("golden: default model, dense and masked, and its server answers", async () => {
  const tok = await Tokenizer.load(DEFAULT_MODEL_DIR);
  const plain = await loadModel(DEFAULT_MODEL_DIR);
  for (const [i, p] of DEFAULT_PROMPTS.entries()) {
    const ids = tok.encodeChat([{ role: "user", content: p }], { addGenerationPrompt: true });
    const key = `model default chat ${i}`;
    check(key, await runModel(plain, ids), (a, e) => compareModelRun(a, e, key));
  }
  // As served: mask-overlap neuron order, the committed masks and router.
  const engine = await loadEngine({ ...DEFAULT_CONFIG, backend: "reference" });
  try {
    const ids = tok.encodeChat([{ role: "user", content: DEFAULT_PROMPTS[0] }], {
      addGenerationPrompt: true,
    });
    const masked = engine.catalog.entries.find((e) => e.name === "reverse@0.5")!;
    const key = `model default chat 0 mask reverse@0.5`;
    check(
      key,
      await runModel(engine.model, ids, masked.prepared),
      (a, e) => compareModelRun(a, e, key),
    );
    const app = createApp(engine);
    for (const [name, path, body] of requests(engine.modelId, DEFAULT_PROMPTS, "reverse@0.2")) {
      const key = `server default ${name}`;
      check(key, await answer(await post(app, path, body)), (a, e) => compareAnswer(a, e, key));
    }
  } finally {
    engine.catalog.release();
  }
});

Deno.test("golden: the logit check fails when one weight of the model flips sign", async () => {
  // A copy of the tiny chat fixture with the largest-magnitude weight of one FFN matrix negated
  // in the safetensors bytes: the golden comparison must reject its answers.
  if (WRITE) return;
  const dir = await Deno.makeTempDir({ prefix: "seap_golden_" });
  try {
    for (const f of Deno.readDirSync(TINY_CHAT)) {
      await Deno.copyFile(`${TINY_CHAT}/${f.name}`, `${dir}/${f.name}`);
    }
    const bytes = await Deno.readFile(`${dir}/model.safetensors`);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const t = header["model.layers.1.mlp.down_proj.weight"];
    assert.equal(t.dtype, "F32");
    const data = new Float32Array(
      bytes.buffer.slice(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]),
    );
    let k = 0;
    for (let i = 1; i < data.length; i++) if (Math.abs(data[i]) > Math.abs(data[k])) k = i;
    bytes[8 + n + t.data_offsets[0] + 4 * k + 3] ^= 0x80; // the f32 sign bit (little-endian)
    await Deno.writeFile(`${dir}/model.safetensors`, bytes);
    const model = await loadModel(dir);
    const tok = await Tokenizer.load(dir);
    const ids = tok.encodeChat([{ role: "user", content: CHAT_PROMPTS[0] }], {
      addGenerationPrompt: true,
    });
    const key = "model tiny_chat chat 0";
    const flipped = await runModel(model, ids);
    assert.throws(() => compareModelRun(flipped, golden[key], key), /moved by|greedy|top|rank/);
    // and the unmodified copy passes (the failure is the flip, not the copy)
    bytes[8 + n + t.data_offsets[0] + 4 * k + 3] ^= 0x80;
    await Deno.writeFile(`${dir}/model.safetensors`, bytes);
    compareModelRun(await runModel(await loadModel(dir), ids), golden[key], key);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Write mode only (not a test): the answers recorded above become the golden file.
if (WRITE) {
  Deno.test.afterAll(async () => {
    await Deno.mkdir(new URL("./golden", import.meta.url).pathname, { recursive: true });
    const sorted = Object.fromEntries(Object.entries(written).sort(([a], [b]) => a < b ? -1 : 1));
    await Deno.writeTextFile(GOLDEN, JSON.stringify(sorted, null, 2) + "\n");
    console.log(`wrote ${Object.keys(sorted).length} golden entries to ${GOLDEN}`);
  });
}
