/**
 * The chat format the default model is trained on and served with. `renderPrompt` and the
 * jinja `CHAT_TEMPLATE` (shipped in tokenizer_config.json) produce the same text; a test
 * checks it.
 */

/** Beginning-of-sequence token. */
export const BOS_TOKEN = "<|begin|>";
/** End of a turn; also the end-of-sequence token that stops generation. */
export const EOS_TOKEN = "<|end|>";
/** Padding token (never trained on). */
export const PAD_TOKEN = "<|pad|>";
/** All special tokens, in vocabulary order (ids 0..n-1). */
export const SPECIAL_TOKENS = [
  BOS_TOKEN,
  EOS_TOKEN,
  "<|user|>",
  "<|assistant|>",
  "<|system|>",
  PAD_TOKEN,
] as const;

/** Jinja chat template: `<|role|>\ncontent<|end|>\n` per message, after the BOS token. */
export const CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}" +
  "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/** The text a single-turn user prompt renders to, ending with the assistant header. */
export function renderPrompt(prompt: string): string {
  return `${BOS_TOKEN}<|user|>\n${prompt}${EOS_TOKEN}\n<|assistant|>\n`;
}

/** Prompt plus the assistant's answer and its end token: one training example. */
export function renderChat(prompt: string, answer: string): string {
  return renderPrompt(prompt) + answer + EOS_TOKEN;
}

/** The `tokenizer_config.json` object that goes with the suite's tokenizer. */
export function tokenizerConfig(vocab: Map<string, number>): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of SPECIAL_TOKENS) {
    decoder[String(vocab.get(t))] = {
      content: t,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  }
  return {
    added_tokens_decoder: decoder,
    bos_token: BOS_TOKEN,
    eos_token: EOS_TOKEN,
    pad_token: PAD_TOKEN,
    unk_token: null,
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    tokenizer_class: "PreTrainedTokenizerFast",
    chat_template: CHAT_TEMPLATE,
  };
}
