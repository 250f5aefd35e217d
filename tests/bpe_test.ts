/**
 * Byte-level BPE trainer: the tokenizer it writes loads in `@huggingface/tokenizers`,
 * round-trips every string of the suite exactly, never merges digits, keeps special tokens
 * whole, and training is deterministic. The shipped tokenizer is checked the same way.
 */

import assert from "node:assert/strict";
import { Tokenizer } from "@huggingface/tokenizers";
import { SPECIAL_TOKENS, tokenizerConfig } from "../lib/tasks/chat_format.ts";
import { generalRows, heldRows, TASKS, trainRows } from "../lib/tasks/suite.ts";
import { bytesToUnicode, toTokenizerJson, trainBpe } from "../lib/text/bpe_trainer.ts";

const MODEL_DIR = new URL("../models/seap-tiny-skills/", import.meta.url).pathname;

function suiteStrings(): string[] {
  const out: string[] = [];
  for (const t of TASKS) {
    for (const r of [...trainRows(t, 200, 1234), ...heldRows(t, "eval", 200, 1234)]) {
      out.push(r.text, r.context!, r.answer!, r.prompt!, ...(r.choices ?? []));
    }
  }
  for (const r of generalRows("eval", 200, 1234)) out.push(r.text);
  return out;
}

const EXTRA = [
  "",
  " ",
  "  two  spaces\tand tab\n\nnewlines ",
  "héllo wörld — naïve café ✓ 日本語 🙂",
  "12345 007 3.14 -42",
  "<|end|><|begin|> <|user|>x<|assistant|>",
  "don't we'll it's I'M",
];

function roundTrips(tok: Tokenizer, strings: string[]): void {
  for (const s of strings) {
    const ids = tok.encode(s, { add_special_tokens: false }).ids;
    if (s === "") {
      assert.equal(ids.length, 0);
      continue;
    }
    assert.equal(tok.decode(ids, { skip_special_tokens: false }), s, JSON.stringify(s));
  }
}

Deno.test("byte map is a bijection onto printable characters", () => {
  const m = bytesToUnicode();
  assert.equal(new Set(m).size, 256);
  assert.equal(m["a".charCodeAt(0)], "a");
  assert.equal(m[32], "Ġ");
  assert.equal(m[10], "Ċ");
});

Deno.test("a freshly trained tokenizer loads and round-trips the suite", () => {
  const strings = suiteStrings();
  const model = trainBpe(strings, { vocabSize: 400, specialTokens: SPECIAL_TOKENS });
  assert.equal(model.vocab.size, 400);
  const json = toTokenizerJson(model, SPECIAL_TOKENS);
  const tok = new Tokenizer(json, tokenizerConfig(model.vocab));
  roundTrips(tok, [...strings, ...EXTRA]);
  // merges really compress: fewer tokens than bytes on suite text
  const s = strings[0];
  assert.ok(tok.encode(s, { add_special_tokens: false }).ids.length < s.length * 0.8);
  // deterministic
  const again = trainBpe(strings, { vocabSize: 400, specialTokens: SPECIAL_TOKENS });
  assert.deepEqual(again.merges, model.merges);
});

Deno.test("the shipped tokenizer round-trips every string of the suite", async () => {
  const json = JSON.parse(await Deno.readTextFile(`${MODEL_DIR}tokenizer.json`));
  const cfg = JSON.parse(await Deno.readTextFile(`${MODEL_DIR}tokenizer_config.json`));
  const tok = new Tokenizer(json, cfg);
  const strings = [...suiteStrings(), ...EXTRA];
  for (const split of ["calibration", "eval"]) {
    for (const l of (await Deno.readTextFile(`${MODEL_DIR}${split}.jsonl`)).trim().split("\n")) {
      const r = JSON.parse(l);
      strings.push(r.text, ...(r.choices ?? []));
    }
  }
  roundTrips(tok, strings);
  // special tokens are single ids 0..n-1; digits are never merged
  SPECIAL_TOKENS.forEach((t, i) => {
    assert.deepEqual(tok.encode(t, { add_special_tokens: false }).ids, [i]);
  });
  for (const t of Object.keys(json.model.vocab)) {
    if (/[0-9]/.test(t)) assert.equal(t.length, 1, `merged digit token ${t}`);
  }
  assert.ok(tok.encode("47", { add_special_tokens: false }).ids.length === 2);
});
