/**
 * Thin adapter between the engine (model, tokenizer, mask set, router) and the HTTP layer:
 * loading everything once from a {@link ServerConfig}, and a handle whose state /healthz
 * reports (503 until the model and masks are loaded).
 */

import type { Backend, WeightDType } from "../backends/backend.ts";
import { DEFAULT_MODEL_DIR } from "../default_model.ts";
import { type BackendChoice, selectBackend } from "../backends/select_backend.ts";
import { catalogFromSet, MaskCatalog } from "../masks/catalog.ts";
import { layoutMasks, loadMaskSet, type MaskSet } from "../masks/mask_io.ts";
import { fingerprintFolder, readCheckpoint } from "../model/checkpoint.ts";
import { neuronOrderOf } from "../model/neuron_order.ts";
import { loadModel, type Model, readConfig } from "../model/model.ts";
import { Tokenizer } from "../text/tokenizer.ts";
import { DEFAULT_CONFIG, type ServerConfig } from "./config.ts";
import { memoryLimitFor } from "./memory_fit.ts";

/** Everything a request needs, loaded once. */
export interface ServerEngine {
  model: Model;
  tokenizer: Tokenizer;
  catalog: MaskCatalog;
  /** Model id clients pass as `model`. */
  modelId: string;
  /** Context cap (prompt + completion tokens). */
  maxContext: number;
  /**
   * Why {@link maxContext} is below the model's own limit, when it is (set by
   * lib/server/admission.ts when memory is the limit); error messages quote it.
   */
  contextLimit?: string;
  /** Completion budget when a chat request gives none. */
  defaultMaxTokens: number;
  /** Unix seconds of loading. */
  created: number;
  /** Backend name. */
  backendName: string;
  /**
   * How the WASM backend converts f16 weights ("fp16-simd": half-precision SIMD, Deno run with
   * `--v8-flags=--experimental-wasm-fp16`; "bit-trick": the portable kernels); null for other
   * backends.
   */
  f16Path: string | null;
  /**
   * Prompt text longer than this (UTF-16 units) cannot fit the context whatever its tokens
   * (2 × longest vocabulary entry × context), so it is refused before tokenizing.
   */
  maxPromptChars: number;
}

/** Build a {@link ServerEngine} from parts already loaded (tests use this with fixture masks). */
export function makeEngine(
  model: Model,
  tokenizer: Tokenizer,
  catalog: MaskCatalog,
  opts: { maxContext?: number | null; defaultMaxTokens?: number; modelId?: string } = {},
): ServerEngine {
  const limit = model.config.maxPositionEmbeddings;
  const maxContext = Math.min(opts.maxContext ?? limit, limit);
  let longest = 1;
  for (let i = 0; i < tokenizer.vocabSize; i++) {
    const t = tokenizer.idToToken(i);
    if (t && t.length > longest) longest = t.length;
  }
  return {
    model,
    tokenizer,
    catalog,
    modelId: opts.modelId ?? model.name,
    maxContext,
    defaultMaxTokens: opts.defaultMaxTokens ?? DEFAULT_CONFIG.defaultMaxTokens,
    created: Math.floor(Date.now() / 1000),
    backendName: model.backend.name,
    f16Path: (model.backend as { f16Path?: string }).f16Path ?? null,
    maxPromptChars: 2 * longest * maxContext,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The default model folder: `DEFAULT_MODEL_DIR` of lib/default_model.ts (imported statically,
 * so no read permission on lib/ is needed). A missing default model is an error at start, never
 * a silent fallback to a test fixture (which would answer with random weights).
 */
export async function defaultModelDir(): Promise<string> {
  if (await exists(`${DEFAULT_MODEL_DIR}/config.json`)) return DEFAULT_MODEL_DIR;
  throw new Error(
    `the default model ${DEFAULT_MODEL_DIR} has no config.json; set SEAP_MODEL or --model`,
  );
}

/**
 * Create the requested backend through the shared selector: "reference", "wasm", "webgpu",
 * or "auto" (WebGPU on a hardware adapter, else WASM, else reference). `SEAP_WEIGHTS=f16` or
 * `q8` stores weights as f16 or 8-bit blocks (lib/formats/q8.ts) on every backend.
 */
export async function createBackend(
  name: string,
  weightDType: WeightDType = "f32",
  maxMemoryBytes?: number,
  threads = 1,
): Promise<Backend> {
  const be = await selectBackend(name as BackendChoice, {
    weightDType,
    maxMemoryBytes,
    threads,
    log: (m) => console.log(`seap: ${m}`),
  });
  const bits = (be as { addressBits?: number }).addressBits;
  if (bits !== undefined && be.memoryLimitBytes !== undefined) {
    console.log(
      `seap: WASM memory: wasm${bits} kernels, limit ${
        (be.memoryLimitBytes / 2 ** 30).toFixed(2)
      } GiB`,
    );
  }
  const f16Path = (be as { f16Path?: string }).f16Path;
  if (f16Path !== undefined && weightDType === "f16") {
    console.log(
      f16Path === "fp16-simd"
        ? "seap: f16 kernels: half-precision SIMD (f32x4.promote_low_f16x8)"
        : "seap: f16 kernels: portable bit tricks (half-precision SIMD needs deno " +
          "--v8-flags=--experimental-wasm-fp16; SEAP_FP16_SIMD=0 turns it off)",
    );
  }
  return be;
}

/**
 * Load model, tokenizer and masks as configured. The mask set is read first (checked against
 * the model's fingerprint) so the FFN can be laid out with the neurons the same SEAP masks keep
 * side by side (`SEAP_NEURON_ORDER=overlap`, the default; lib/model/neuron_order.ts): each mask
 * then reads a few long runs of weights instead of many scattered rows.
 */
export async function loadEngine(cfg: ServerConfig): Promise<ServerEngine> {
  const dir = cfg.modelDir ?? await defaultModelDir();
  const backend = await createBackend(
    cfg.backend,
    cfg.weights,
    await memoryLimitFor(dir, cfg.weights, cfg.maxMemory, cfg.backend),
    cfg.threads,
  );
  try {
    return await loadOnto(backend, dir, cfg);
  } catch (e) {
    await backend.close?.(); // worker threads (SEAP_THREADS > 1) must not outlive a failed load
    throw e;
  }
}

async function loadOnto(backend: Backend, dir: string, cfg: ServerConfig): Promise<ServerEngine> {
  const name = dir.replace(/\/+$/, "").split("/").pop() ?? dir;
  let masksDir = cfg.masksDir ?? `masks/${name}`;
  if (!cfg.masksDir && !(await exists(`${masksDir}/manifest.json`))) {
    // Not under the working directory: try the repository's masks/ folder.
    masksDir = new URL(`../../masks/${name}`, import.meta.url).pathname;
  }
  let set: MaskSet | null = null;
  if (await exists(`${masksDir}/manifest.json`)) {
    const { config } = await readConfig(dir);
    try {
      set = await loadMaskSet(masksDir, {
        name,
        fingerprint: await fingerprintFolder(dir),
        config,
      });
    } catch (e) {
      // A fingerprint mismatch may mean a damaged model rather than stale masks: name the
      // model's own defect when its weights do not even parse.
      await readCheckpoint(dir);
      throw e;
    }
  } else if (cfg.masksDir) {
    throw new Error(`SEAP_MASKS: ${cfg.masksDir}/manifest.json not found`);
  } else {
    console.warn(`seap: no mask set at ${masksDir}; serving dense only`);
  }
  let neuronOrder: Int32Array[] | null = null;
  if (set && cfg.neuronOrder !== "identity") {
    const served = layoutMasks(set);
    const c = (await readConfig(dir)).config;
    if (served.length > 0) {
      neuronOrder = neuronOrderOf(cfg.neuronOrder, served, c.numLayers, c.intermediateSize);
    }
  }
  const used0 = backend.usedBytes ?? 0;
  const t0 = performance.now();
  const model = await loadModel(dir, { backend, neuronOrder });
  const held = backend.usedBytes === undefined
    ? ""
    : `, ${
      ((backend.usedBytes - used0) / 2 ** 20).toFixed(0)
    } MiB of ${backend.weightDType} weights`;
  console.log(
    `seap: loaded ${model.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s${held}`,
  );
  const tokenizer = await Tokenizer.load(dir);
  const catalog = set
    ? catalogFromSet(model, set, masksDir, cfg.sparsity)
    : new MaskCatalog(model, [], null, { source: "none" });
  return makeEngine(model, tokenizer, catalog, {
    maxContext: cfg.maxContext,
    defaultMaxTokens: cfg.defaultMaxTokens,
  });
}

/** Loading state of the engine, for /healthz and the 503 gate. */
export class EngineHandle {
  /**
   * "loading" until {@link engine} is set, "failed" with {@link error} on a load error,
   * "broken" when the loaded engine stopped working (a health probe failed after a request's
   * error), "draining" after SIGTERM.
   */
  status: "loading" | "ready" | "failed" | "broken" | "draining" = "loading";
  engine: ServerEngine | null = null;
  error: string | null = null;
  /** Stop taking requests (SIGTERM): /healthz and new /v1 requests answer 503. */
  drain(): void {
    this.status = "draining";
  }

  /** The engine no longer works (a probe failed): /healthz and /v1 answer 503 with `reason`. */
  markBroken(reason: string): void {
    if (this.status !== "ready") return;
    this.status = "broken";
    this.error = reason;
    console.error(`seap: engine broken: ${reason}`);
  }

  /** Resolves when loading ends (either way). */
  readonly settled: Promise<void>;

  /** Start loading with `load` (or wrap an engine that is already loaded). */
  constructor(load: Promise<ServerEngine> | ServerEngine) {
    if (!(load instanceof Promise)) {
      this.engine = load;
      this.status = "ready";
      this.settled = Promise.resolve();
      return;
    }
    this.settled = load.then(
      (e) => {
        this.engine = e;
        if (this.status === "loading") this.status = "ready";
      },
      (e) => {
        this.error = e instanceof Error ? e.message : String(e);
        this.status = "failed";
        console.error(`seap: engine failed to load: ${this.error}`);
      },
    );
  }
}
