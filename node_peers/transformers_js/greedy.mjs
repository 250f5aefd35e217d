// Greedy generation with transformers.js from a local model folder (no network), as a new
// user would run an exported model. Reads one JSON request on stdin:
//   {dir, prompts: number[][], steps, padId}
// and prints {single: number[][], batched: number[][]}: the new tokens of each prompt run
// alone, and of all prompts run as one left-padded batch (attention_mask 0 on the padding).
import { AutoModelForCausalLM, env, Tensor } from "@huggingface/transformers";
import { basename, dirname } from "node:path";

let raw = "";
for await (const chunk of process.stdin) raw += chunk;
const { dir, prompts, steps, padId } = JSON.parse(raw);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = dirname(dir) + "/";
const model = await AutoModelForCausalLM.from_pretrained(basename(dir), {
  dtype: "fp32",
  device: "cpu",
  local_files_only: true,
});

async function run(rows) {
  const width = Math.max(...rows.map((r) => r.length));
  const ids = [], mask = [];
  for (const r of rows) {
    const pad = width - r.length;
    ids.push(...Array(pad).fill(padId), ...r);
    mask.push(...Array(pad).fill(0), ...Array(r.length).fill(1));
  }
  const shape = [rows.length, width];
  const out = await model.generate({
    input_ids: new Tensor("int64", BigInt64Array.from(ids.map(BigInt)), shape),
    attention_mask: new Tensor("int64", BigInt64Array.from(mask.map(BigInt)), shape),
    max_new_tokens: steps,
    do_sample: false,
  });
  const n = out.dims[1];
  const data = Array.from(out.data, Number);
  return rows.map((_, b) => data.slice(b * n + width, (b + 1) * n));
}

const single = [];
for (const p of prompts) single.push((await run([p]))[0]);
const batched = await run(prompts);
await model.dispose();
process.stdout.write(JSON.stringify({ single, batched }) + "\n");
