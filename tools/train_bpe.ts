/**
 * Train the project's byte-level BPE tokenizer on a text corpus and write a Hugging Face
 * `tokenizer.json` (+ `tokenizer_config.json` with the suite's chat template).
 *
 *   deno run -A tools/train_bpe.ts --corpus corpus.txt --out models/x/ [--vocab 768]
 *
 * The corpus is one document per line (JSON-lines with a `text` field also accepted).
 * `deno task data` calls the same trainer on the task suite's training split.
 */

import { parseArgs } from "node:util";
import { SPECIAL_TOKENS, tokenizerConfig } from "../lib/tasks/chat_format.ts";
import { toTokenizerJson, trainBpe } from "../lib/text/bpe_trainer.ts";

const { values: args } = parseArgs({
  options: {
    corpus: { type: "string" },
    out: { type: "string" },
    vocab: { type: "string", default: "768" },
  },
});
if (!args.corpus || !args.out) {
  console.error("usage: train_bpe.ts --corpus FILE --out DIR [--vocab N]");
  Deno.exit(2);
}
const lines = (await Deno.readTextFile(args.corpus)).split("\n").filter((l) => l.length > 0);
const texts = lines.map((l) => (l.startsWith("{") ? String(JSON.parse(l).text) : l));
const model = trainBpe(texts, { vocabSize: Number(args.vocab), specialTokens: SPECIAL_TOKENS });
await Deno.mkdir(args.out, { recursive: true });
await Deno.writeTextFile(
  `${args.out}/tokenizer.json`,
  JSON.stringify(toTokenizerJson(model, SPECIAL_TOKENS), null, 1) + "\n",
);
await Deno.writeTextFile(
  `${args.out}/tokenizer_config.json`,
  JSON.stringify(tokenizerConfig(model.vocab), null, 2) + "\n",
);
console.log(`${model.vocab.size} tokens (${model.merges.length} merges) -> ${args.out}`);
