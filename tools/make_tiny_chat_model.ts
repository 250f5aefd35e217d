/**
 * Writes `tests/fixtures/tiny_chat/`: a random-weight Llama (H=64, 6 layers, 4 heads, 2 kv
 * heads, I=256, tied embeddings, F32) with a real byte-level BPE tokenizer trained on a small
 * built-in corpus, a chat template and generation defaults. Seeded: reruns give identical bytes.
 *
 * Usage: deno run -A tools/make_tiny_chat_model.ts [out_dir]
 */

import { join } from "node:path";
import { Rng } from "../lib/generate/sampler.ts";
import { parseConfig } from "../lib/model/config.ts";

const SEED = 1234;
const NUM_MERGES = 48;
const HIDDEN = 64;
const LAYERS = 6;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = HIDDEN / HEADS;
const INTERMEDIATE = 256;
const SPECIALS = ["<|begin|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"];

const CORPUS = `The quick brown fox jumps over the lazy dog. Hello there, how are you today?
I am fine, thank you. What is the weather like in the city? It is sunny and warm.
The model answers the question of the user. The user asks the assistant for help.
Tell me a story about a cat and a dog that live in the same house.
In the beginning there was the word, and then there were the tokens.`;

/** GPT-2 byte → printable-character table used by ByteLevel pre-tokenizers. */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}

/** Tiny deterministic BPE trainer over GPT-2-style pre-tokenized words. */
function trainMerges(corpus: string, numMerges: number, byteChar: string[]): string[][] {
  const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const m of corpus.match(pat) ?? []) {
    const w = [...enc.encode(m)].map((b) => byteChar[b]).join("\u0000");
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  let words = [...counts].map(([w, n]) => ({ syms: w.split("\u0000"), n }));
  const merges: string[][] = [];
  for (let step = 0; step < numMerges; step++) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + "\u0000" + syms[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    // Most frequent pair; ties broken by the pair text so the result is order independent.
    let best: string | null = null;
    let bestN = 0;
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== null && k < best)) {
        best = k;
        bestN = n;
      }
    }
    if (best === null || bestN < 2) break;
    const [a, b] = best.split("\u0000");
    merges.push([a, b]);
    words = words.map(({ syms, n }) => {
      const out: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(syms[i]);
      }
      return { syms: out, n };
    });
  }
  return merges;
}

function buildTokenizer(): { json: unknown; vocabSize: number; specialIds: Map<string, number> } {
  const byteChar = bytesToUnicode();
  const vocab: Record<string, number> = {};
  byteChar.forEach((c, i) => (vocab[c] = i));
  const merges = trainMerges(CORPUS, NUM_MERGES, byteChar);
  for (const [a, b] of merges) {
    if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
  }
  let next = Object.keys(vocab).length;
  const specialIds = new Map<string, number>();
  const added = SPECIALS.map((content) => {
    const id = next++;
    specialIds.set(content, id);
    return {
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
  });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: false,
      use_regex: true,
    },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { json, vocabSize: next, specialIds };
}

const CHAT_TEMPLATE = "{{ bos_token }}" +
  "{% for message in messages %}" +
  "{% if message['role'] not in ['system', 'user', 'assistant'] %}" +
  "{{ raise_exception('tiny_chat: unknown role ' + message['role']) }}{% endif %}" +
  "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/** Serialises F32 tensors as safetensors: u64 LE header length, JSON header, raw data. */
function safetensors(tensors: [string, number[], Float32Array][]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (headerText.length % 8)) % 8); // data starts 8-aligned
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, , data] of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Uniform init with the given standard deviation. */
function randomTensor(rng: Rng, n: number, std: number): Float32Array {
  const a = std * Math.sqrt(3);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * a;
  return out;
}

function buildWeights(vocabSize: number): [string, number[], Float32Array][] {
  const rng = new Rng(SEED);
  const t: [string, number[], Float32Array][] = [];
  // Linear weights in HF orientation [out, in], std 1/sqrt(in).
  const lin = (name: string, outDim: number, inDim: number) =>
    t.push([name, [outDim, inDim], randomTensor(rng, outDim * inDim, 1 / Math.sqrt(inDim))]);
  const ones = (name: string, n: number) => t.push([name, [n], new Float32Array(n).fill(1)]);
  t.push([
    "model.embed_tokens.weight",
    [vocabSize, HIDDEN],
    randomTensor(rng, vocabSize * HIDDEN, 0.3),
  ]);
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`, HIDDEN);
    lin(`${p}.self_attn.q_proj.weight`, HEADS * HEAD_DIM, HIDDEN);
    lin(`${p}.self_attn.k_proj.weight`, KV_HEADS * HEAD_DIM, HIDDEN);
    lin(`${p}.self_attn.v_proj.weight`, KV_HEADS * HEAD_DIM, HIDDEN);
    lin(`${p}.self_attn.o_proj.weight`, HIDDEN, HEADS * HEAD_DIM);
    ones(`${p}.post_attention_layernorm.weight`, HIDDEN);
    lin(`${p}.mlp.gate_proj.weight`, INTERMEDIATE, HIDDEN);
    lin(`${p}.mlp.up_proj.weight`, INTERMEDIATE, HIDDEN);
    lin(`${p}.mlp.down_proj.weight`, HIDDEN, INTERMEDIATE);
  }
  ones("model.norm.weight", HIDDEN);
  return t;
}

async function main(outDir: string): Promise<void> {
  const { json: tokenizerJson, vocabSize, specialIds } = buildTokenizer();
  const bos = specialIds.get("<|begin|>")!;
  const eos = specialIds.get("<|end|>")!;
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: HIDDEN,
    intermediate_size: INTERMEDIATE,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS,
    head_dim: HEAD_DIM,
    hidden_act: "silu",
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: true,
    vocab_size: vocabSize,
    bos_token_id: bos,
    eos_token_id: eos,
    torch_dtype: "float32",
  };
  parseConfig(config); // fail here, not in the server tests, if the engine cannot read it
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: "<|begin|>",
    eos_token: "<|end|>",
    pad_token: null,
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    tokenizer_class: "PreTrainedTokenizerFast",
    chat_template: CHAT_TEMPLATE,
  };
  const generationConfig = {
    bos_token_id: bos,
    eos_token_id: [eos],
    do_sample: true,
    temperature: 0.7,
    top_p: 0.9,
    top_k: 40,
    max_new_tokens: 64,
  };
  await Deno.mkdir(outDir, { recursive: true });
  const js = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  await Deno.writeTextFile(join(outDir, "config.json"), js(config));
  await Deno.writeTextFile(join(outDir, "tokenizer.json"), js(tokenizerJson));
  await Deno.writeTextFile(join(outDir, "tokenizer_config.json"), js(tokenizerConfig));
  await Deno.writeTextFile(join(outDir, "generation_config.json"), js(generationConfig));
  await Deno.writeFile(join(outDir, "model.safetensors"), safetensors(buildWeights(vocabSize)));
  console.log(`wrote ${outDir}: vocab ${vocabSize}, bos ${bos}, eos ${eos}`);
}

if (import.meta.main) {
  await main(Deno.args[0] ?? "tests/fixtures/tiny_chat");
}
