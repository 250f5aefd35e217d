/**
 * Server settings from environment variables or command-line flags (flags win), with
 * defaults that work out of the box on the embedded default model.
 *
 * | env                    | flag                 | default                                  |
 * |------------------------|----------------------|------------------------------------------|
 * | SEAP_MODEL             | --model              | DEFAULT_MODEL_DIR (lib/default_model.ts) |
 * | SEAP_MASKS             | --masks              | masks/<model name>, if present           |
 * | SEAP_BACKEND           | --backend            | auto (hw WebGPU, else wasm, else ref.)   |
 * | SEAP_MAX_CONCURRENT    | --max-concurrent     | 4                                        |
 * | SEAP_QUEUE             | --queue              | 32                                       |
 * | SEAP_TIMEOUT_MS        | --timeout-ms         | 120000                                   |
 * | SEAP_MAX_CONTEXT       | --max-context        | max_position_embeddings, or less when    |
 * |                        |                      | the backend's memory cannot hold its KV  |
 * |                        |                      | cache at SEAP_MAX_CONCURRENT (admission) |
 * | SEAP_MAX_BODY_BYTES    | --max-body-bytes     | 1048576                                  |
 * | SEAP_MAX_TOKENS        | --max-tokens         | 256 (default completion budget for chat) |
 * | SEAP_SPARSITY          | --sparsity           | the mask set's default                   |
 * | SEAP_PREFILL_CHUNK     | --prefill-chunk      | 64 (longer prompts prefill in chunks)    |
 * | SEAP_NEURON_ORDER      | --neuron-order       | overlap (or keep-frequency, identity)    |
 * | SEAP_WEIGHTS           | --weights            | f32 (or f16 / q8: 1/2 / ~1/3.6 the bytes)|
 * | SEAP_MAX_MEMORY        | --max-memory         | WASM memory limit, e.g. 12G: 4 GiB when  |
 * |                        |                      | the weights leave 1 GiB of it, else 3/4  |
 * |                        |                      | of the host's (≤ 16 GiB, memory64)       |
 * | SEAP_THREADS           | --threads            | 1 (wasm: > 1 cuts ops across workers)    |
 * | SEAP_HOST              | --host               | 127.0.0.1 (loopback; 0.0.0.0 = all)      |
 * | SEAP_PORT              | --port               | 8000                                     |
 * | SEAP_READ_TIMEOUT_MS   | --read-timeout-ms    | 30000 (slow request bodies get a 408)    |
 * | SEAP_ALLOW_SPECIAL_TOKENS | --allow-special-tokens | 0 (1: requests may opt in to parsing |
 * |                        |                      | special tokens in chat content)          |
 * | SEAP_DRAIN_MS          | --drain-ms           | 25000 (SIGTERM: time for in-flight work) |
 */

import { parseSwitch } from "../util/parse_switch.ts";
import type { WeightDType } from "../backends/backend.ts";
import { parseByteSize } from "../backends/wasm_memory.ts";
import { NEURON_ORDER_KINDS, type NeuronOrderKind } from "../model/neuron_order.ts";

/** Error for a setting that does not parse; the message names the variable. */
export class ServerConfigError extends Error {
  override name = "ServerConfigError";
}

/** Every server setting. */
export interface ServerConfig {
  /** Model folder; null = the default model. */
  modelDir: string | null;
  /** Mask-set folder; null = `masks/<model name>` when it exists, else dense only. */
  masksDir: string | null;
  /** "auto" | "reference" | "wasm" | "webgpu". */
  backend: string;
  maxConcurrent: number;
  queueSize: number;
  /** Per-request timeout in ms (0 = none). */
  timeoutMs: number;
  /** Context cap in tokens (prompt + completion); null = the model's own limit. */
  maxContext: number | null;
  maxBodyBytes: number;
  /** Completion budget when a chat request gives no max_tokens. */
  defaultMaxTokens: number;
  /** Default sparsity; null = the mask set's default. */
  sparsity: number | null;
  /** Prompts longer than this prefill in chunks of this size, between other steps (0 = off). */
  prefillChunk: number;
  /**
   * FFN layout (lib/model/neuron_order.ts): "overlap" (neurons kept by the same masks side by
   * side), "keep-frequency" (neurons the masks keep most, first) or "identity".
   */
  neuronOrder: NeuronOrderKind;
  /** Weight storage of every backend: f32, f16 or q8 (lib/formats/q8.ts). */
  weights: WeightDType;
  /**
   * The WASM backend's memory limit in bytes; null = by the model's size
   * (lib/backends/wasm_memory.ts, defaultMemoryLimit). Past 4 GiB: the memory64 kernels.
   */
  maxMemory: number | null;
  /** Threads of the WASM backend (1: no workers; results are the same bit for bit). */
  threads: number;
  /** Listen address (loopback by default). */
  host: string;
  /** Listen port (0 = any free port). */
  port: number;
  /** Most ms a client may take to send its request body (0 = no limit). */
  readTimeoutMs: number;
  /** Whether requests may ask for special-token parsing of chat content (trusted callers). */
  allowSpecialTokens: boolean;
  /** On SIGTERM, how long in-flight generations may run before the process exits. */
  drainMs: number;
}

/**
 * Completion budget of a text completion that gives no max_tokens (OpenAI's documented default
 * for /v1/completions; chat uses {@link ServerConfig.defaultMaxTokens}).
 */
export const COMPLETIONS_MAX_TOKENS = 16;

/**
 * The defaults (model and masks resolved at load time): the one table of the server's
 * defaults, read by the app (lib/server/app.ts) and the engine loader as well.
 */
export const DEFAULT_CONFIG: ServerConfig = {
  modelDir: null,
  masksDir: null,
  backend: "auto",
  maxConcurrent: 4,
  queueSize: 32,
  timeoutMs: 120_000,
  maxContext: null,
  maxBodyBytes: 1 << 20,
  defaultMaxTokens: 256,
  sparsity: null,
  prefillChunk: 64,
  neuronOrder: "overlap",
  weights: "f32",
  maxMemory: null,
  threads: 1,
  host: "127.0.0.1",
  port: 8000,
  readTimeoutMs: 30_000,
  allowSpecialTokens: false,
  drainMs: 25_000,
};

const SPEC: [keyof ServerConfig, string, string, "str" | "int" | "num" | "bool" | "bytes"][] = [
  ["modelDir", "SEAP_MODEL", "model", "str"],
  ["masksDir", "SEAP_MASKS", "masks", "str"],
  ["backend", "SEAP_BACKEND", "backend", "str"],
  ["maxConcurrent", "SEAP_MAX_CONCURRENT", "max-concurrent", "int"],
  ["queueSize", "SEAP_QUEUE", "queue", "int"],
  ["timeoutMs", "SEAP_TIMEOUT_MS", "timeout-ms", "int"],
  ["maxContext", "SEAP_MAX_CONTEXT", "max-context", "int"],
  ["maxBodyBytes", "SEAP_MAX_BODY_BYTES", "max-body-bytes", "int"],
  ["defaultMaxTokens", "SEAP_MAX_TOKENS", "max-tokens", "int"],
  ["sparsity", "SEAP_SPARSITY", "sparsity", "num"],
  ["prefillChunk", "SEAP_PREFILL_CHUNK", "prefill-chunk", "int"],
  ["neuronOrder", "SEAP_NEURON_ORDER", "neuron-order", "str"],
  ["weights", "SEAP_WEIGHTS", "weights", "str"],
  ["maxMemory", "SEAP_MAX_MEMORY", "max-memory", "bytes"],
  ["threads", "SEAP_THREADS", "threads", "int"],
  ["host", "SEAP_HOST", "host", "str"],
  ["port", "SEAP_PORT", "port", "int"],
  ["readTimeoutMs", "SEAP_READ_TIMEOUT_MS", "read-timeout-ms", "int"],
  ["allowSpecialTokens", "SEAP_ALLOW_SPECIAL_TOKENS", "allow-special-tokens", "bool"],
  ["drainMs", "SEAP_DRAIN_MS", "drain-ms", "int"],
];

const MINIMUM: Partial<Record<keyof ServerConfig, number>> = {
  maxConcurrent: 1,
  queueSize: 0,
  timeoutMs: 0,
  maxContext: 2,
  maxBodyBytes: 1024,
  defaultMaxTokens: 1,
  prefillChunk: 0,
  threads: 1,
  port: 0,
  readTimeoutMs: 0,
  drainMs: 0,
};

/**
 * Read the settings. `env` looks up a variable (default: Deno.env, when permitted); `args`
 * are flags `--name=value` or `--name value` (default: Deno.args).
 */
export function readServerConfig(
  env: (name: string) => string | undefined = safeEnv,
  args: string[] = Deno.args,
): ServerConfig {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < args.length && !args[i + 1].startsWith("--")) flags.set(a.slice(2), args[++i]);
    else flags.set(a.slice(2), "1"); // a bare switch, e.g. --allow-special-tokens
  }
  const cfg: ServerConfig = { ...DEFAULT_CONFIG };
  const out = cfg as unknown as Record<string, unknown>;
  for (const [key, envName, flag, type] of SPEC) {
    const raw = flags.get(flag) ?? env(envName);
    if (raw === undefined || raw === "") continue;
    const where = flags.has(flag) ? `--${flag}` : envName;
    if (type === "str") {
      out[key] = raw;
      continue;
    }
    if (type === "bytes") {
      try {
        out[key] = parseByteSize(raw, where);
      } catch (e) {
        throw new ServerConfigError((e as Error).message);
      }
      continue;
    }
    if (type === "bool") {
      const b = parseSwitch(raw);
      if (b === undefined) {
        throw new ServerConfigError(`${where}: expected 1/0, true/false or yes/no, got "${raw}"`);
      }
      out[key] = b;
      continue;
    }
    const v = Number(raw);
    if (!Number.isFinite(v) || (type === "int" && !Number.isInteger(v))) {
      throw new ServerConfigError(
        `${where}: expected ${type === "int" ? "an integer" : "a number"}, got "${raw}"`,
      );
    }
    const min = MINIMUM[key];
    if (min !== undefined && v < min) {
      throw new ServerConfigError(`${where}: must be ≥ ${min}, got ${v}`);
    }
    if (key === "threads" && v > 256) {
      throw new ServerConfigError(`${where}: must be ≤ 256, got ${v}`);
    }
    if (key === "port" && v > 65535) {
      throw new ServerConfigError(`${where}: must be ≤ 65535, got ${v}`);
    }
    if (key === "sparsity" && (v < 0 || v >= 1)) {
      throw new ServerConfigError(`${where}: must be in [0, 1), got ${v}`);
    }
    out[key] = v;
  }
  if (!["auto", "reference", "wasm", "webgpu"].includes(cfg.backend)) {
    throw new ServerConfigError(
      `SEAP_BACKEND: unknown backend "${cfg.backend}" (auto, reference, wasm, webgpu)`,
    );
  }
  if (!(NEURON_ORDER_KINDS as readonly string[]).includes(cfg.neuronOrder)) {
    throw new ServerConfigError(
      `SEAP_NEURON_ORDER: expected ${NEURON_ORDER_KINDS.join(", ")}, got "${cfg.neuronOrder}"`,
    );
  }
  if (!/^[A-Za-z0-9.:\[\]-]+$/.test(cfg.host)) {
    throw new ServerConfigError(`SEAP_HOST: not a host name or address: "${cfg.host}"`);
  }
  if (cfg.weights !== "f32" && cfg.weights !== "f16" && cfg.weights !== "q8") {
    throw new ServerConfigError(`SEAP_WEIGHTS: expected f32, f16 or q8, got "${cfg.weights}"`);
  }
  return cfg;
}

function safeEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: defaults apply
  }
}
