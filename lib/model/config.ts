/**
 * Parsing of a Hugging Face `config.json` for the Llama family (Llama, Mistral, Qwen2, Qwen3,
 * SmolLM) into the engine's own normalised {@link ModelConfig}.
 */

/** Architectures the engine runs, keyed by the `architectures[0]` / `model_type` of config.json. */
export type Family = "llama" | "mistral" | "qwen2" | "qwen3";

/** RoPE frequency scaling, as in HF `rope_scaling`. */
export type RopeScaling =
  | { type: "none" }
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** Normalised model hyper-parameters; every size the engine needs, no optional fields. */
export interface ModelConfig {
  family: Family;
  /** H: hidden size. */
  hiddenSize: number;
  /** I: FFN intermediate size (number of prunable neurons per layer). */
  intermediateSize: number;
  /** L: number of decoder layers. */
  numLayers: number;
  /** n_h: query heads. */
  numHeads: number;
  /** n_kv: key/value heads (GQA when < n_h). */
  numKvHeads: number;
  /** d_h: per-head size. */
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Qwen2: q/k/v projections carry biases. */
  attentionBias: boolean;
  /** Qwen3: RMSNorm over each q and k head before RoPE. */
  qkNorm: boolean;
  bosTokenId: number | null;
  /** Every id that ends generation. */
  eosTokenIds: number[];
}

/** Error for a config.json the engine cannot run; the message names the field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const ARCH_TO_FAMILY: Record<string, Family> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
};

const MODEL_TYPE_TO_FAMILY: Record<string, Family> = {
  llama: "llama",
  mistral: "mistral",
  qwen2: "qwen2",
  qwen3: "qwen3",
};

function num(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`config.json: required field "${key}" is missing`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ConfigError(`config.json: field "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function posInt(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = num(raw, key, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`config.json: field "${key}" must be a positive integer, got ${v}`);
  }
  return v;
}

function ids(v: unknown): number[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "number") return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return v as number[];
  throw new ConfigError(
    `config.json: eos_token_id must be a number or list, got ${JSON.stringify(v)}`,
  );
}

function parseRopeScaling(raw: unknown): RopeScaling {
  if (raw === undefined || raw === null) return { type: "none" };
  if (typeof raw !== "object") throw new ConfigError("config.json: rope_scaling must be an object");
  const r = raw as Record<string, unknown>;
  const type = (r.rope_type ?? r.type) as string | undefined;
  switch (type) {
    case "default":
      return { type: "none" };
    case "linear":
      return { type: "linear", factor: num(r, "factor") };
    case "llama3":
      return {
        type: "llama3",
        factor: num(r, "factor"),
        lowFreqFactor: num(r, "low_freq_factor"),
        highFreqFactor: num(r, "high_freq_factor"),
        originalMaxPositionEmbeddings: posInt(r, "original_max_position_embeddings"),
      };
    default:
      throw new ConfigError(
        `config.json: unsupported rope_scaling type "${type}" (supported: linear, llama3)`,
      );
  }
}

/** Parse the JSON object of a config.json; throws {@link ConfigError} naming the offending field. */
export function parseConfig(raw: unknown): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError("config.json: expected a JSON object");
  }
  const r = raw as Record<string, unknown>;
  const archs = r.architectures;
  let family: Family | undefined;
  if (Array.isArray(archs) && archs.length > 0) {
    family = ARCH_TO_FAMILY[String(archs[0])];
    if (!family) {
      throw new ConfigError(
        `config.json: unsupported architecture "${archs[0]}" (supported: ${
          Object.keys(ARCH_TO_FAMILY).join(", ")
        })`,
      );
    }
  } else {
    family = MODEL_TYPE_TO_FAMILY[String(r.model_type)];
    if (!family) {
      throw new ConfigError(`config.json: unsupported model_type "${r.model_type}"`);
    }
  }
  const act = r.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new ConfigError(`config.json: unsupported hidden_act "${act}" (only silu)`);
  }
  if (r.mlp_bias === true) throw new ConfigError("config.json: unsupported field mlp_bias=true");
  const hiddenSize = posInt(r, "hidden_size");
  const numHeads = posInt(r, "num_attention_heads");
  const numKvHeads = posInt(r, "num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      `config.json: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  const headDim = posInt(r, "head_dim", hiddenSize / numHeads);
  const ropeScaling = parseRopeScaling(r.rope_scaling);
  const attentionBias = family === "qwen2" ? true : r.attention_bias === true;
  const eos = ids(r.eos_token_id);
  const bos = typeof r.bos_token_id === "number" ? r.bos_token_id : null;
  let maxPos = posInt(r, "max_position_embeddings", 2048);
  // Sliding-window attention only differs from full attention past the window, so the engine
  // clamps its context to the window and stays exact.
  if (
    typeof r.sliding_window === "number" && r.use_sliding_window !== false && family === "mistral"
  ) {
    maxPos = Math.min(maxPos, r.sliding_window);
  }
  return {
    family,
    hiddenSize,
    intermediateSize: posInt(r, "intermediate_size"),
    numLayers: posInt(r, "num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: posInt(r, "vocab_size"),
    rmsNormEps: num(r, "rms_norm_eps", 1e-6),
    ropeTheta: num(r, "rope_theta", 10000),
    ropeScaling,
    maxPositionEmbeddings: maxPos,
    tieWordEmbeddings: r.tie_word_embeddings === true,
    attentionBias,
    qkNorm: family === "qwen3",
    bosTokenId: bos,
    eosTokenIds: eos,
  };
}
