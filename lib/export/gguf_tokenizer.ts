/**
 * A Hugging Face byte-level BPE tokenizer (`tokenizer.json` + `tokenizer_config.json`) as GGUF
 * `tokenizer.*` metadata: tokens by id, token types, merges, special ids, chat template. A
 * folder without a tokenizer (random and test models) gets a placeholder byte-level vocabulary
 * (ids 0-255 the 256 bytes, the rest unused control tokens, no merges): llama.cpp refuses to
 * run with `tokenizer.ggml.model = "none"`, and ids in, logits out is all such a model needs.
 */

import { join } from "node:path";
import type { GgufValue } from "./gguf_writer.ts";

/** llama.cpp token types (llama_token_type). */
const NORMAL = 1, CONTROL = 3, USER_DEFINED = 4;

type Json = Record<string, unknown>;

async function readJsonOrNull(path: string): Promise<Json | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as Json;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`GGUF export: cannot read ${path}: ${(e as Error).message}`);
  }
}

function tokenText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  return null;
}

/**
 * The llama.cpp pre-tokenizer name for a tokenizer.json pre_tokenizer: "gpt-2" for the plain
 * ByteLevel regex. Others would need llama.cpp's hash of sample tokenizations; refused clearly.
 */
function preTokenizer(pre: unknown, path: string): string {
  const p = pre as Json | null;
  if (p?.type === "ByteLevel" && p.use_regex !== false) return "gpt-2";
  throw new Error(
    `GGUF export: ${path}: pre_tokenizer ${
      JSON.stringify(p?.type ?? null)
    } is not supported (only the byte-level GPT-2 regex)`,
  );
}

/** GPT-2's byte → printable character table (bytes_to_unicode). */
function byteChars(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + extra++));
}

function placeholderVocab(
  vocabSize: number,
  ids: { bos: number | null; eos: number[] },
): Map<string, GgufValue> {
  const bytes = byteChars();
  const tokens = Array.from({ length: vocabSize }, (_, i) => i < 256 ? bytes[i] : `<unused_${i}>`);
  const types = Int32Array.from({ length: vocabSize }, (_, i) => i < 256 ? NORMAL : CONTROL);
  const md = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: "gpt-2" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: types }],
    ["tokenizer.ggml.merges", { type: "string[]", value: [] }],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: false }],
  ]);
  const valid = (id: number | null | undefined) =>
    id !== null && id !== undefined && id >= 0 && id < vocabSize;
  if (valid(ids.bos)) md.set("tokenizer.ggml.bos_token_id", { type: "u32", value: ids.bos! });
  if (valid(ids.eos[0])) md.set("tokenizer.ggml.eos_token_id", { type: "u32", value: ids.eos[0] });
  return md;
}

/**
 * Tokenizer metadata for `dir`. `vocabSize` is the model's embedding rows: tokens past the
 * tokenizer's last id are written as unused control tokens "<unused_N>".
 */
export async function ggufTokenizerMetadata(
  dir: string,
  vocabSize: number,
  ids: { bos: number | null; eos: number[] },
): Promise<Map<string, GgufValue>> {
  const md = new Map<string, GgufValue>();
  const tokPath = join(dir, "tokenizer.json");
  const tok = await readJsonOrNull(tokPath);
  if (!tok) return placeholderVocab(vocabSize, ids);
  const cfg = (await readJsonOrNull(join(dir, "tokenizer_config.json"))) ?? {};
  const model = tok.model as Json;
  if (model?.type !== "BPE" || typeof model.vocab !== "object") {
    throw new Error(`GGUF export: ${tokPath}: only BPE tokenizers are supported`);
  }
  const tokens: string[] = new Array(vocabSize).fill(null);
  const types = new Int32Array(vocabSize).fill(NORMAL);
  const put = (text: string, id: number, type: number) => {
    if (id >= vocabSize) {
      throw new Error(`GGUF export: token "${text}" has id ${id} ≥ vocab size ${vocabSize}`);
    }
    tokens[id] = text;
    types[id] = type;
  };
  for (const [text, id] of Object.entries(model.vocab as Record<string, number>)) {
    put(text, id, NORMAL);
  }
  for (const a of (tok.added_tokens ?? []) as Json[]) {
    put(a.content as string, a.id as number, a.special ? CONTROL : USER_DEFINED);
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === null) {
      tokens[i] = `<unused_${i}>`;
      types[i] = CONTROL;
    }
  }
  const merges = ((model.merges ?? []) as (string | string[])[]).map((m) => {
    const pair = Array.isArray(m) ? m : m.split(" ");
    if (pair.length !== 2 || pair.some((p) => p.includes(" "))) {
      throw new Error(`GGUF export: ${tokPath}: merge ${JSON.stringify(m)} cannot be written`);
    }
    return pair.join(" ");
  });
  md.set("tokenizer.ggml.model", { type: "string", value: "gpt2" });
  md.set("tokenizer.ggml.pre", { type: "string", value: preTokenizer(tok.pre_tokenizer, tokPath) });
  md.set("tokenizer.ggml.tokens", { type: "string[]", value: tokens });
  md.set("tokenizer.ggml.token_type", { type: "i32[]", value: types });
  md.set("tokenizer.ggml.merges", { type: "string[]", value: merges });
  const idOf = (v: unknown) => {
    const t = tokenText(v);
    return t === null ? undefined : tokens.indexOf(t);
  };
  const bos = idOf(cfg.bos_token) ?? ids.bos;
  const eos = idOf(cfg.eos_token) ?? ids.eos[0];
  const pad = idOf(cfg.pad_token);
  if (bos !== null && bos !== undefined && bos >= 0) {
    md.set("tokenizer.ggml.bos_token_id", { type: "u32", value: bos });
  }
  if (eos !== undefined && eos >= 0) {
    md.set("tokenizer.ggml.eos_token_id", { type: "u32", value: eos });
  }
  if (pad !== undefined && pad >= 0) {
    md.set("tokenizer.ggml.padding_token_id", { type: "u32", value: pad });
  }
  md.set("tokenizer.ggml.add_bos_token", { type: "bool", value: cfg.add_bos_token === true });
  md.set("tokenizer.ggml.add_eos_token", { type: "bool", value: cfg.add_eos_token === true });
  if (typeof cfg.chat_template === "string") {
    md.set("tokenizer.chat_template", { type: "string", value: cfg.chat_template });
  }
  return md;
}
