/**
 * `deno task data`: generate the task suite's splits deterministically, train the byte-level
 * BPE tokenizer on the training corpus, and write
 *   models/<name>/{tokenizer.json, tokenizer_config.json, calibration.jsonl, eval.jsonl}
 *   tmp/<name>/{train_ids.jsonl, eval_ids.jsonl, meta.json}   (for the PyTorch trainer)
 * Flags: --seed N, --train-per-task N, --general N, --calib-per-task N, --eval-per-task N,
 * --vocab N, --name NAME.
 */

import { Tokenizer } from "@huggingface/tokenizers";
import { parseArgs } from "node:util";
import { SPECIAL_TOKENS, tokenizerConfig } from "../lib/tasks/chat_format.ts";
import {
  GENERAL_TASK,
  generalRows,
  heldRows,
  type SuiteRow,
  TASKS,
  trainRows,
} from "../lib/tasks/suite.ts";
import { toTokenizerJson, trainBpe } from "../lib/text/bpe_trainer.ts";

const { values: args } = parseArgs({
  options: {
    seed: { type: "string", default: "1234" },
    "train-per-task": { type: "string", default: "120000" },
    general: { type: "string", default: "90000" },
    "calib-per-task": { type: "string", default: "256" },
    "eval-per-task": { type: "string", default: "200" },
    vocab: { type: "string", default: "768" },
    name: { type: "string", default: "seap-tiny-skills" },
  },
});
const seed = Number(args.seed);
const modelDir = new URL(`../models/${args.name}/`, import.meta.url).pathname;
const dataDir = new URL(`../tmp/${args.name}/`, import.meta.url).pathname;
await Deno.mkdir(modelDir, { recursive: true });
await Deno.mkdir(dataDir, { recursive: true });
const t0 = performance.now();
const log = (msg: string) =>
  console.log(`[make_data ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

// 1. rows of every split
const train: SuiteRow[] = [];
const calib: SuiteRow[] = [];
const evalRows: SuiteRow[] = [];
for (const task of TASKS) {
  train.push(...trainRows(task, Number(args["train-per-task"]), seed));
  calib.push(...heldRows(task, "calibration", Number(args["calib-per-task"]), seed));
  evalRows.push(...heldRows(task, "eval", Number(args["eval-per-task"]), seed));
}
train.push(...generalRows("train", Number(args.general), seed));
calib.push(...generalRows("calibration", Number(args["calib-per-task"]), seed));
evalRows.push(...generalRows("eval", Number(args["eval-per-task"]), seed));
log(`rows: train ${train.length}, calibration ${calib.length}, eval ${evalRows.length}`);

// 2. tokenizer, trained on the training corpus only
const bpe = trainBpe(train.map((r) => r.text), {
  vocabSize: Number(args.vocab),
  specialTokens: SPECIAL_TOKENS,
});
const tokJson = toTokenizerJson(bpe, SPECIAL_TOKENS);
const tokCfg = tokenizerConfig(bpe.vocab);
await Deno.writeTextFile(`${modelDir}tokenizer.json`, JSON.stringify(tokJson, null, 1) + "\n");
await Deno.writeTextFile(
  `${modelDir}tokenizer_config.json`,
  JSON.stringify(tokCfg, null, 2) + "\n",
);
log(`tokenizer: ${bpe.vocab.size} tokens, ${bpe.merges.length} merges`);

// 3. token ids for the trainer
const tok = new Tokenizer(tokJson, tokCfg);
const cache = new Map<string, number[]>();
function encode(text: string): number[] {
  let ids = cache.get(text);
  if (!ids) {
    ids = tok.encode(text, { add_special_tokens: false }).ids;
    cache.set(text, ids);
  }
  return ids;
}
const taskIndex = new Map<string, number>(
  [...TASKS.map((t) => t.name), GENERAL_TASK].map((n, i) => [n, i]),
);
const bosId = bpe.vocab.get(SPECIAL_TOKENS[0])!;
let nTokens = 0;
const trainLines: string[] = [];
for (const r of train) {
  let ids: number[];
  let start: number;
  if (r.task === GENERAL_TASK) {
    ids = [bosId, ...encode(r.text)];
    start = 1;
  } else {
    ids = encode(r.text);
    const ctx = encode(r.context!);
    if (ctx.some((id, i) => ids[i] !== id)) throw new Error(`prompt not a prefix: ${r.text}`);
    start = ctx.length;
  }
  nTokens += ids.length;
  trainLines.push(JSON.stringify([taskIndex.get(r.task), start, ...ids]));
}
await Deno.writeTextFile(`${dataDir}train_ids.jsonl`, trainLines.join("\n") + "\n");
log(`train ids: ${trainLines.length} rows, ${nTokens} tokens`);

const evalIdLines = evalRows.map((r) =>
  JSON.stringify({
    id: r.id,
    task: r.task,
    held_out_phrasing: r.held_out_phrasing ?? false,
    answer: r.answer ?? null,
    prompt_ids: r.context ? encode(r.context) : null,
    text_ids: [bosId, ...encode(r.text)],
  })
);
await Deno.writeTextFile(`${dataDir}eval_ids.jsonl`, evalIdLines.join("\n") + "\n");
const jsonl = (rows: SuiteRow[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
await Deno.writeTextFile(`${modelDir}calibration.jsonl`, jsonl(calib));
await Deno.writeTextFile(`${modelDir}eval.jsonl`, jsonl(evalRows));
await Deno.writeTextFile(
  `${dataDir}meta.json`,
  JSON.stringify(
    {
      seed,
      tasks: [...taskIndex.keys()],
      vocab_size: bpe.vocab.size,
      bos_token_id: bosId,
      eos_token_id: bpe.vocab.get(SPECIAL_TOKENS[1]),
      pad_token_id: bpe.vocab.get("<|pad|>"),
      train_rows: trainLines.length,
      train_tokens: nTokens,
    },
    null,
    2,
  ) + "\n",
);
log("done");
