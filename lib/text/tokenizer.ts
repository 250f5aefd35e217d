/**
 * Model tokenizer: `tokenizer.json` through `@huggingface/tokenizers`, chat template from
 * `tokenizer_config.json` through `@huggingface/jinja`, sampling defaults from
 * `generation_config.json`.
 */

import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { join } from "node:path";

/** One chat turn as fed to the chat template. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** Sampling defaults read from `generation_config.json`; absent fields stay undefined. */
export interface GenerationDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxNewTokens?: number;
  doSample?: boolean;
  /** `eos_token_id` of generation_config.json, normalised to a list (empty when absent). */
  eosTokenIds: number[];
}

/** Error for a tokenizer directory the engine cannot use; the message names the file. */
export class TokenizerError extends Error {
  override name = "TokenizerError";
}

type Json = Record<string, unknown>;

async function readJson(path: string, required: boolean): Promise<Json | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!required && e instanceof Deno.errors.NotFound) return null;
    throw new TokenizerError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`malformed JSON in ${path}: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new TokenizerError(`${path}: expected a JSON object at top level`);
  }
  return parsed as Json;
}

/** `bos_token` / `eos_token` may be a plain string or an AddedToken object `{content, ...}`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  return null;
}

function idList(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Picks the default template out of `chat_template` (a string, or a list of {name, template}). */
function pickTemplate(v: unknown, path: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    const named = v.filter((t): t is { name: string; template: string } =>
      t && typeof t === "object" && typeof t.template === "string"
    );
    const chosen = named.find((t) => t.name === "default") ?? named[0];
    if (chosen) return chosen.template;
  }
  throw new TokenizerError(
    `${path}: chat_template must be a string or a list of {name, template}`,
  );
}

/** A loaded tokenizer with its chat template and generation defaults. */
export class Tokenizer {
  /** Id of the BOS token, or null when the model has none. */
  readonly bosTokenId: number | null;
  /** Every id that ends generation: eos_token of tokenizer_config ∪ generation_config ids. */
  readonly eosTokenIds: number[];
  /** Text of the BOS / EOS tokens ("" when absent), as passed to the chat template. */
  readonly bosToken: string;
  readonly eosToken: string;
  /** Defaults from generation_config.json. */
  readonly generationDefaults: GenerationDefaults;
  /** Number of ids (vocabulary plus added tokens): max id + 1. */
  readonly vocabSize: number;
  /** Whether encode(…, {addSpecialTokens: true}) prepends BOS itself (`add_bos_token`). */
  readonly addBosToken: boolean;

  readonly #hf: HfTokenizer;
  /** The same tokenizer without its special added tokens: user text never yields one. */
  readonly #plain: HfTokenizer;
  readonly #template: Template | null;
  readonly #templatePath: string;
  readonly #specialIds: Set<number>;

  private constructor(
    hf: HfTokenizer,
    plain: HfTokenizer,
    config: Json,
    gen: Json | null,
    template: Template | null,
    templatePath: string,
  ) {
    this.#hf = hf;
    this.#plain = plain;
    this.#template = template;
    this.#templatePath = templatePath;
    this.bosToken = tokenContent(config.bos_token) ?? "";
    this.eosToken = tokenContent(config.eos_token) ?? "";
    this.bosTokenId = this.bosToken ? hf.token_to_id(this.bosToken) ?? null : null;
    const eos = new Set<number>();
    const cfgEos = this.eosToken ? hf.token_to_id(this.eosToken) : undefined;
    if (cfgEos !== undefined) eos.add(cfgEos);
    const genEos = idList(gen?.eos_token_id);
    for (const id of genEos) eos.add(id);
    this.eosTokenIds = [...eos];
    this.addBosToken = config.add_bos_token === true;
    this.generationDefaults = {
      temperature: num(gen?.temperature),
      topP: num(gen?.top_p),
      topK: num(gen?.top_k),
      maxNewTokens: num(gen?.max_new_tokens),
      doSample: typeof gen?.do_sample === "boolean" ? gen.do_sample : undefined,
      eosTokenIds: genEos,
    };
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.#specialIds = new Set(
      [...hf.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id),
    );
  }

  /**
   * Loads `tokenizer.json`, `tokenizer_config.json` (required) and `generation_config.json`
   * (optional) from `dir`. Throws {@link TokenizerError} naming the file on bad input.
   */
  static async load(dir: string): Promise<Tokenizer> {
    const tokPath = join(dir, "tokenizer.json");
    const cfgPath = join(dir, "tokenizer_config.json");
    const genPath = join(dir, "generation_config.json");
    const [tokJson, cfg, gen] = await Promise.all([
      readJson(tokPath, true),
      readJson(cfgPath, true),
      readJson(genPath, false),
    ]);
    return Tokenizer.fromJson(tokJson!, cfg!, gen, { tokenizer: tokPath, config: cfgPath });
  }

  /** Builds a tokenizer from already-parsed JSON objects (paths only label errors). */
  static fromJson(
    tokenizerJson: Json,
    tokenizerConfig: Json,
    generationConfig: Json | null = null,
    paths = { tokenizer: "tokenizer.json", config: "tokenizer_config.json" },
  ): Tokenizer {
    const model = tokenizerJson.model as Json | undefined;
    if (!model || typeof model !== "object" || typeof model.vocab !== "object") {
      throw new TokenizerError(`${paths.tokenizer}: missing "model.vocab"`);
    }
    let hf: HfTokenizer;
    let plain: HfTokenizer;
    try {
      hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
      // A second instance that does not know the special added tokens, for untrusted text.
      const added = Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [];
      plain = new HfTokenizer(
        structuredClone({
          ...tokenizerJson,
          added_tokens: added.filter((t) => !(t as Json)?.special),
        }),
        structuredClone(tokenizerConfig),
      );
    } catch (e) {
      throw new TokenizerError(
        `${paths.tokenizer}: cannot build tokenizer: ${(e as Error).message}`,
      );
    }
    const src = pickTemplate(tokenizerConfig.chat_template, paths.config);
    let template: Template | null = null;
    if (src !== null) {
      try {
        template = new Template(src);
      } catch (e) {
        throw new TokenizerError(
          `${paths.config}: chat_template does not parse: ${(e as Error).message}`,
        );
      }
    }
    return new Tokenizer(hf, plain, tokenizerConfig, generationConfig, template, paths.config);
  }

  /** Whether tokenizer_config.json carries a chat template. */
  get hasChatTemplate(): boolean {
    return this.#template !== null;
  }

  /**
   * Text → ids. With `addSpecialTokens` (default true) the tokenizer's post-processor runs
   * (e.g. Llama 3 BOS), and BOS is prepended when `add_bos_token` asks for it and it is missing.
   */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const add = opts.addSpecialTokens ?? true;
    const ids = this.#hf.encode(text, { add_special_tokens: add }).ids;
    if (add && this.addBosToken && this.bosTokenId !== null && ids[0] !== this.bosTokenId) {
      ids.unshift(this.bosTokenId);
    }
    return ids;
  }

  /**
   * Untrusted text → ids with no special token: the special added tokens' strings ("<|end|>")
   * are encoded as the ordinary text they spell (the way llama.cpp's server treats user
   * content). Should the vocabulary merge such a string back into a special id, that string is
   * encoded one character at a time instead.
   */
  encodeText(text: string): number[] {
    if (text === "") return [];
    const ids = this.#plain.encode(text, { add_special_tokens: false }).ids;
    if (!ids.some((id) => this.#specialIds.has(id))) return ids;
    const out: number[] = [];
    for (const ch of text) {
      for (const id of this.#plain.encode(ch, { add_special_tokens: false }).ids) {
        if (this.#specialIds.has(id)) {
          throw new TokenizerError(`cannot encode ${JSON.stringify(ch)} without a special token`);
        }
        out.push(id);
      }
    }
    return out;
  }

  /**
   * Chat messages → prompt ids, with special tokens only where the template writes them: the
   * template is rendered with a random placeholder per message content, its own text (markup
   * such as "<|user|>", BOS) is encoded with special tokens, and each content is encoded with
   * {@link encodeText}. A template that transforms content (e.g. `| trim`) sees the placeholder,
   * so the content goes in untransformed; the Jinja templates shipped here insert it verbatim.
   */
  encodeChat(
    messages: ChatMessage[],
    opts: { addGenerationPrompt?: boolean; extra?: Record<string, unknown> } = {},
  ): number[] {
    const nonce = crypto.getRandomValues(new Uint32Array(2)).join("-");
    const mark = (i: number) => `\u{F0000}${nonce}:${i}\u{F0001}`;
    const rendered = this.applyChatTemplate(
      messages.map((m, i) => ({ ...m, content: mark(i) })),
      opts,
    );
    const re = new RegExp(`\u{F0000}${nonce}:(\\d+)\u{F0001}`, "gu");
    const ids: number[] = [];
    let last = 0;
    for (const m of rendered.matchAll(re)) {
      const markup = rendered.slice(last, m.index);
      if (markup) ids.push(...this.encode(markup, { addSpecialTokens: false }));
      ids.push(...this.encodeText(messages[Number(m[1])].content));
      last = m.index + m[0].length;
    }
    const tail = rendered.slice(last);
    if (tail) ids.push(...this.encode(tail, { addSpecialTokens: false }));
    return ids;
  }

  /** Ids → text ("" for no ids). `skipSpecialTokens` (default false) drops special added tokens. */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.#hf.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The raw vocabulary string of one id (e.g. "Ġthe"), or undefined. */
  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  /** The id of one vocabulary string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  /** Whether `id` is a special added token (BOS, EOS, chat markers, ...). */
  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }

  /**
   * Renders `messages` with the chat template (variables: messages, bos_token, eos_token,
   * add_generation_prompt, plus `extra`, e.g. {enable_thinking: false}). The result already
   * holds any BOS the template writes: encode it with `addSpecialTokens: false`.
   */
  applyChatTemplate(
    messages: ChatMessage[],
    opts: { addGenerationPrompt?: boolean; extra?: Record<string, unknown> } = {},
  ): string {
    if (!this.#template) {
      throw new TokenizerError(`${this.#templatePath}: no chat_template`);
    }
    try {
      return this.#template.render({
        ...opts.extra,
        messages,
        bos_token: this.bosToken,
        eos_token: this.eosToken,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
      });
    } catch (e) {
      // `raise_exception(msg)` is a built-in of @huggingface/jinja; its message lands here too.
      throw new TokenizerError(
        `${this.#templatePath}: chat_template failed to render: ${(e as Error).message}`,
      );
    }
  }
}
