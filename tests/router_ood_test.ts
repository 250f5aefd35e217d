/**
 * Prompts that belong to no task get the generic mask: through a calibration on the fixture
 * model (the OOD test is trained, thresholded and written like the real one), and on the
 * default model's committed router, down to the server's /v1/route.
 */

import assert from "node:assert/strict";
import { DEFAULT_MASK_PARAMS } from "../lib/calibrate/build_masks.ts";
import { encodeSample } from "../lib/calibrate/collect_stats.ts";
import { loadMaskSet } from "../lib/masks/mask_io.ts";
import { runCalibration } from "../lib/calibrate/pipeline.ts";
import { route, type Router } from "../lib/masks/router.ts";
import { loadModel, type Model } from "../lib/model/model.ts";
import { Sequence } from "../lib/model/sequence.ts";
import { createApp } from "../lib/server/app.ts";
import { DEFAULT_CONFIG } from "../lib/server/config.ts";
import { loadEngine } from "../lib/server/engine_handle.ts";
import { renderPrompt } from "../lib/tasks/chat_format.ts";
import { oodPrompts } from "../lib/tasks/ood_prompts.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { post, TINY_CHAT } from "./server_helpers.ts";

const DEFAULT_MODEL = new URL("../models/seap-tiny-skills", import.meta.url).pathname;
const DEFAULT_MASKS = new URL("../masks/seap-tiny-skills", import.meta.url).pathname;

/** Router feature of one chat-rendered prompt. */
async function feature(model: Model, tok: Tokenizer, context: string, m: number) {
  const ids = encodeSample(tok, context, 256);
  const seq = new Sequence(model, { maxTokens: ids.length });
  try {
    return await seq.prefillHead(ids, m);
  } finally {
    seq.free();
  }
}

/** Share of `contexts` that `ok` accepts the routing decision of. */
async function share(
  model: Model,
  tok: Tokenizer,
  r: Router,
  contexts: string[],
  ok: (d: ReturnType<typeof route>, i: number) => boolean,
): Promise<number> {
  let n = 0;
  for (const [i, c] of contexts.entries()) {
    if (ok(route(r, await feature(model, tok, c, r.layer)), i)) n++;
  }
  return n / contexts.length;
}

/** Task rows in the chat format: two skills with a handful of phrasings each. */
function taskRows(): string {
  const words = ["b a d", "c a t", "d o g", "f i s h", "m o o n", "s u n", "t r e e", "r o c k"];
  const upper = ["Uppercase: {w}", "Write in capitals: {w}", "Make {w} upper case."];
  const count = ["How many letters in {w}?", "Count the letters of {w}", "Length of {w}?"];
  const out: string[] = [];
  for (let i = 0; i < 24; i++) {
    const w = words[i % words.length];
    const u = upper[i % 3].replace("{w}", w);
    const c = count[i % 3].replace("{w}", w);
    const n = String(w.split(" ").length);
    out.push(JSON.stringify({ task: "upper", context: renderPrompt(u), target: w.toUpperCase() }));
    out.push(JSON.stringify({ task: "count", context: renderPrompt(c), target: n }));
  }
  return out.join("\n") + "\n";
}

Deno.test("calibration on the fixture model: held-out OOD prompts fall back to generic, task prompts do not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/cal.jsonl`, taskRows());
    const res = await runCalibration({
      modelDir: TINY_CHAT,
      calibrationFiles: [`${dir}/cal.jsonl`],
      outDir: `${dir}/out`,
      samplesPerTask: 8,
      routerSamplesPerTask: 24,
      maxTokens: 64,
      mask: {
        ...DEFAULT_MASK_PARAMS,
        sparsities: [0.5],
        logistic: { m: 1, n: 1, k: 1.2, x0: 0.3 },
        baselines: false,
      },
      routerThreshold: 0.5,
      routerTestFraction: 0.25,
      seed: 3,
      oodGenerated: 60,
      routingCostPrompts: 2,
      progress: false,
      log: () => {},
    });
    const o = res.router.ood!;
    assert.ok(o, "the report has an OOD section");
    assert.equal(o.trainSamples, 60);
    assert.equal(o.heldOutSamples, 60);
    const model = res.model;
    const tok = await Tokenizer.load(TINY_CHAT);
    const set = await loadMaskSet(`${dir}/out`, model);
    const r = set.router!;
    assert.ok(r.ood, "the written router has the OOD test");
    assert.equal(set.manifest.router!.ood!.threshold, r.ood!.threshold);
    assert.ok(r.ood!.threshold >= 0.01 && r.ood!.threshold <= 0.5);
    // prompts of held-out templates the calibration never drew (another seed)
    const fresh = oodPrompts(40, "held-out", 99).map((p) => p.context);
    const oodShare = await share(model, tok, r, fresh, (d) => d.useGeneric);
    // the calibration's own task prompts, all of them (3/4 were trained on)
    const rows = taskRows().trim().split("\n").map((l) => JSON.parse(l));
    const inShare = await share(
      model,
      tok,
      r,
      rows.map((x) => x.context),
      (d, i) => !d.useGeneric && d.task === rows[i].task,
    );
    console.log(
      `fixture: threshold ${r.ood!.threshold.toFixed(4)}; held-out OOD served generic ` +
        `${(oodShare * 100).toFixed(1)}% (report: ${(o.heldOutGeneric * 100).toFixed(1)}%), ` +
        `task prompts served their mask ${(inShare * 100).toFixed(1)}%`,
    );
    assert.ok(oodShare >= 0.9, `held-out OOD served generic: ${oodShare}`);
    assert.ok(inShare >= 0.95, `task prompts served their mask: ${inShare}`);
    const md = await Deno.readTextFile(`${dir}/out/report.md`);
    assert.match(md, /### Out-of-distribution prompts/);
    assert.match(md, /### Cost of routing/);
    await Deno.stat(`${dir}/out/router_ood.svg`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Ordinary chat requests of no task: the examples and more, none from the generator. */
const CHAT_PROMPTS = [
  "Hello, how are you?",
  "Write a poem about the sea.",
  "Explain quantum computing in simple terms.",
  "The old man walked slowly to the harbour, where the boats were waiting.",
  "What's the weather like today?",
  "Can you help me plan a birthday party for my daughter?",
  "Tell me a joke.",
  "What is the meaning of life?",
  "Write a Python function to compute Fibonacci numbers.",
  "How do I make a good cup of coffee?",
  "Summarize the plot of Romeo and Juliet.",
  "I'm feeling a bit down today.",
  "Translate 'thank you' into German.",
  "What are the health benefits of green tea?",
  "Recommend a good science fiction book.",
  "My laptop is running slowly, what can I do?",
  "Give me three ideas for a weekend trip.",
  "Who painted the Mona Lisa?",
  "Describe a sunset over the mountains.",
  "Thanks, that was really helpful!",
  "Yesterday the city opened a new park with a playground and a small lake.",
  "Bonjour ! Je cherche un bon restaurant près d'ici.",
  "How many hours of sleep does an adult need?",
  "Write a limerick about a cat who loves cheese.",
  "What should I know before adopting a dog?",
];

Deno.test("default model: ordinary chat prompts get the generic mask through /v1/route, task prompts keep theirs", async () => {
  const engine = await loadEngine({
    ...DEFAULT_CONFIG,
    modelDir: DEFAULT_MODEL,
    masksDir: DEFAULT_MASKS,
  });
  const app = createApp(engine);
  const generic = `generic@${engine.catalog.defaultSparsity}`;
  const wrong: string[] = [];
  for (const content of CHAT_PROMPTS) {
    const r = await post(app, "/v1/route", { messages: [{ role: "user", content }] });
    assert.equal(r.status, 200, content);
    const body = await r.json();
    if (body.mask !== generic) {
      wrong.push(`${content} -> ${body.mask} (${body.task} ${body.confidence?.toFixed(3)})`);
    } else assert.equal(body.selection, "fallback");
  }
  console.log(
    `default model: ${CHAT_PROMPTS.length - wrong.length} of ${CHAT_PROMPTS.length} chat prompts ` +
      `served ${generic}` + (wrong.length ? `; not: ${wrong.join("; ")}` : ""),
  );
  assert.deepEqual(wrong, []);
  // the router still routes the skills it knows
  const skills: [string, string][] = [
    ["Reverse the letters: c a t", "reverse"],
    ["What is the capital of Atlantis?", "capital"],
    ["Sort these digits from smallest to largest: 4 1 3", "sort_digits"],
    ["Which is larger, 17 or 71?", "compare"],
  ];
  for (const [content, task] of skills) {
    const body = await (await post(app, "/v1/route", { messages: [{ role: "user", content }] }))
      .json();
    assert.equal(body.mask, `${task}@${engine.catalog.defaultSparsity}`, content);
  }
});

Deno.test("default model's committed router: >= 95% of held-out OOD prompts generic, >= 99% of eval prompts their task", async () => {
  const model = await loadModel(DEFAULT_MODEL);
  const tok = await Tokenizer.load(DEFAULT_MODEL);
  const set = await loadMaskSet(DEFAULT_MASKS, model);
  const r = set.router!;
  assert.ok(r.ood, "the committed router has an OOD test (recalibrate: deno task calibrate)");
  // held-out templates, another seed than the calibration's: prompts it never saw
  const ood = oodPrompts(200, "held-out", 7).map((p) => p.context);
  const oodShare = await share(model, tok, r, ood, (d) => d.useGeneric);
  // every 4th row of the eval split (both phrasing kinds), general text included
  const rows = (await Deno.readTextFile(`${DEFAULT_MODEL}/eval.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((_, i) => i % 4 === 0);
  const inShare = await share(
    model,
    tok,
    r,
    rows.map((x) => x.context ?? x.text),
    (d, i) => !d.useGeneric && d.task === rows[i].task,
  );
  console.log(
    `committed router: held-out OOD served generic ${(oodShare * 100).toFixed(1)}% of ` +
      `${ood.length}; eval prompts served their task ${
        (inShare * 100).toFixed(1)
      }% of ${rows.length}`,
  );
  assert.ok(oodShare >= 0.95, `held-out OOD served generic: ${oodShare}`);
  assert.ok(inShare >= 0.99, `eval prompts served their task: ${inShare}`);
});
