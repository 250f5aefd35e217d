/**
 * Loading a Hugging Face Llama-family folder into backend-resident weights laid out for
 * structured pruning (docs/design.md, Weight layout): every FFN neuron's gate, up and down^T rows side by side,
 * every head's q rows and o^T rows contiguous. One copy of the weights serves every mask.
 */

import type { Backend, MatView, WeightBuffer, WeightDType } from "../backends/backend.ts";
import { ReferenceBackend } from "../backends/reference.ts";
import { type ModelConfig, parseConfig } from "./config.ts";
import {
  type Checkpoint,
  fingerprintFolder,
  hasTensor,
  readCheckpoint,
  rowsF32,
  tensorF32,
} from "./checkpoint.ts";
import { ropeInvFreq } from "./rope.ts";
import { validateNeuronOrder } from "./neuron_order.ts";
import { Q8_BLOCK } from "../formats/q8.ts";

/** Weights of one decoder layer, as views into backend buffers. */
export interface LayerWeights {
  attnNorm: MatView; // [1, H]
  q: MatView; // [n_h * d_h, H] rows h*d_h .. h*d_h+d_h-1 = query head h
  k: MatView; // [n_kv * d_h, H] rows grouped by kv head
  v: MatView; // [n_kv * d_h, H]
  qBias: MatView | null; // [1, n_h * d_h] (Qwen2)
  kBias: MatView | null; // [1, n_kv * d_h]
  vBias: MatView | null; // [1, n_kv * d_h]
  qNorm: MatView | null; // [1, d_h] (Qwen3)
  kNorm: MatView | null; // [1, d_h]
  oT: MatView; // [n_h * d_h, H] row c = column c of W_o (HF o_proj is [H, n_h * d_h])
  mlpNorm: MatView; // [1, H]
  /** Bundle [I, 3H]: row j = [gate_j | up_j | down^T_j]; the three views below share it. */
  gate: MatView; // [I, H] stride 3H, offset 0
  up: MatView; // [I, H] stride 3H, offset H
  downT: MatView; // [I, H] stride 3H, offset 2H; row j = column j of W_down [H, I]
}

/** A loaded model: config, backend-resident weights and identity. */
export interface Model {
  /** Folder it was loaded from. */
  dir: string;
  /** Folder name, used as the model id. */
  name: string;
  config: ModelConfig;
  /** sha256 (hex) over config.json and every weight file, in order. */
  fingerprint: string;
  backend: Backend;
  embed: MatView; // [V, H]
  layers: LayerWeights[];
  finalNorm: MatView; // [1, H]
  lmHead: MatView; // [V, H] (the embedding table when tied)
  invFreq: MatView; // [1, d_h / 2]
  /** Bytes of weights per token read by a dense decode step (all layers + head). */
  denseWeightBytes: number;
  /**
   * Per layer, the FFN bundle's neuron order: row p holds original neuron `neuronOrder[l][p]`
   * (null: identity). Masks keep original indices; prepareMask maps them.
   */
  neuronOrder: Int32Array[] | null;
}

/** Options for {@link loadModel}. */
export interface LoadOptions {
  /** Backend that holds the weights; the plain TypeScript reference when omitted. */
  backend?: Backend;
  /**
   * Lay out FFN neurons in this order per layer (see neuron_order.ts), e.g. so that the
   * neurons a mask set keeps are contiguous. Identity when omitted.
   */
  neuronOrder?: Int32Array[] | null;
}

function view(buf: WeightBuffer, rows: number, cols: number, offset = 0, stride = cols): MatView {
  return { buf, offset, stride, rows, cols };
}

/** Transpose a row-major [rows, cols] matrix into [cols, rows]. */
export function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  }
  return out;
}

/** Read and parse a folder's config.json. */
export async function readConfig(dir: string): Promise<{ config: ModelConfig; bytes: Uint8Array }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${dir}/config.json`);
  } catch (e) {
    throw new Error(`cannot read ${dir}/config.json: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${dir}/config.json is not valid JSON: ${(e as Error).message}`);
  }
  return { config: parseConfig(raw), bytes };
}

/** Load a model folder onto a backend. */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<Model> {
  const backend = opts.backend ?? new ReferenceBackend();
  const { config: cfg } = await readConfig(dir);
  const ckpt = await readCheckpoint(dir);
  const fingerprint = await fingerprintFolder(dir);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: d } = cfg;
  // q8 blocks of 32 must not straddle rows: matrices (all rows H long) of a model whose hidden
  // size is not a multiple of 32 are stored as f32 instead, as llama.cpp falls back for such
  // tensors.
  const q8Fallback = backend.weightDType === "q8" && H % Q8_BLOCK !== 0;
  const matDType = q8Fallback ? "f32" : undefined;
  const host = new HostBuffers();
  const store = matrixStore(backend, matDType);
  // Small precision-sensitive vectors (norms, biases, rope) stay f32 on an f16 backend.
  const vec = (name: string, n: number) =>
    view(backend.weights(tensorF32(ckpt, name, [n]), "f32"), 1, n);
  // A [rows, H] matrix from the file, converted and stored a piece at a time.
  const mat = (name: string, rows: number) =>
    view(
      store(rows, H, (put) =>
        putRows(put, host, rows, H, (r0, r1, out) =>
          rowsF32(ckpt, name, [rows, H], r0, r1, out))),
      rows,
      H,
    );

  const embed = mat("model.embed_tokens.weight", cfg.vocabSize);
  const order = opts.neuronOrder ?? null;
  if (order) validateNeuronOrder(order, cfg.numLayers, cfg.intermediateSize);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    layers.push(loadLayer(ckpt, cfg, l, { store, mat, vec, host }, order?.[l] ?? null));
  }
  const finalNorm = vec("model.norm.weight", H);
  let lmHead = embed;
  if (!cfg.tieWordEmbeddings) {
    if (!hasTensor(ckpt, "lm_head.weight")) {
      throw new Error(
        `${dir}: config says tie_word_embeddings=false but "lm_head.weight" is missing`,
      );
    }
    lmHead = mat("lm_head.weight", cfg.vocabSize);
  }
  const invFreq = view(backend.weights(ropeInvFreq(cfg), "f32"), 1, d / 2);
  const perLayer = (2 * nh * d * H + 2 * nkv * d * H + 3 * I * H) * 4;
  return {
    dir,
    name: dir.replace(/\/+$/, "").split("/").pop() ?? dir,
    config: cfg,
    fingerprint,
    backend,
    embed,
    layers,
    finalNorm,
    lmHead,
    invFreq,
    denseWeightBytes: cfg.numLayers * perLayer + cfg.vocabSize * H * 4,
    neuronOrder: order,
  };
}

/** Values per piece when a matrix is converted and stored a piece at a time (1 MiB of f32). */
const PIECE_VALUES = 1 << 18;

/**
 * Writes `data` into the matrix being stored: rows of `rowLen` values (default: all of `data`,
 * one row), row i at value `offset + i * stride` of the matrix (row-major; `stride` defaults
 * to `rowLen`).
 */
export type PutPiece = (
  offset: number,
  data: Float32Array,
  rowLen?: number,
  stride?: number,
) => void;

/**
 * Stores a [rows, cols] matrix that `fill` writes piece by piece through `put`. On a backend
 * with {@link Backend.allocWeights} each piece is converted straight into the backend's buffer,
 * so loading never holds more than one piece of a tensor in f32 besides the stored copy
 * (docs/design.md, Weight layout); otherwise the pieces are assembled into one host array
 * that is uploaded whole.
 */
export type MatrixStore = (
  rows: number,
  cols: number,
  fill: (put: PutPiece) => void,
) => WeightBuffer;

/**
 * Host buffers reused across one load, by purpose, grown as needed: converting piece by piece
 * leaves no garbage behind, so the resident peak does not wait on the garbage collector.
 */
class HostBuffers {
  #m = new Map<string, Float32Array>();
  /** `n` values of the buffer for `key` (contents undefined). */
  get(key: string, n: number): Float32Array {
    let b = this.#m.get(key);
    if (!b || b.length < n) this.#m.set(key, b = new Float32Array(n));
    return b.subarray(0, n);
  }
}

function matrixStore(backend: Backend, dtype: WeightDType | undefined): MatrixStore {
  return (rows, cols, fill) => {
    if (!backend.allocWeights || !backend.writeWeights) {
      // The backend may keep the array it is given: a fresh one.
      const host = new Float32Array(rows * cols); // [rows, cols]
      fill((offset, data, rowLen = data.length, stride = rowLen) => {
        for (let i = 0; i * rowLen < data.length; i++) {
          host.set(data.subarray(i * rowLen, (i + 1) * rowLen), offset + i * stride);
        }
      });
      return backend.weights(host, dtype);
    }
    const buf = backend.allocWeights(rows * cols, dtype);
    try {
      fill((offset, data, rowLen, stride) =>
        backend.writeWeights!(buf, offset, data, rowLen, stride)
      );
    } catch (e) {
      backend.release(buf);
      throw e;
    }
    return buf;
  };
}

/** Rows `[r0, r1)` of a source tensor in f32, written into (the start of) `out`. */
type RowsOf = (r0: number, r1: number, out: Float32Array) => Float32Array;

/**
 * Put a [rows, cols] source matrix whose rows `rowsOf` reads into the matrix being stored, a
 * piece of whole rows at a time, row r at `offset + r * stride`.
 */
function putRows(
  put: PutPiece,
  host: HostBuffers,
  rows: number,
  cols: number,
  rowsOf: RowsOf,
  offset = 0,
  stride = cols,
): void {
  const step = Math.max(1, Math.floor(PIECE_VALUES / Math.max(1, cols)));
  for (let r0 = 0; r0 < rows; r0 += step) {
    const r1 = Math.min(rows, r0 + step);
    const piece = rowsOf(r0, r1, host.get("piece", (r1 - r0) * cols)); // [r1-r0, cols]
    if (stride === cols) put(offset + r0 * cols, piece); // one contiguous run
    else put(offset + r0 * stride, piece, cols, stride);
  }
}

/**
 * Put the transpose of a [rows, cols] source matrix (`rowsOf` reads its rows) into the matrix
 * being stored: its column `pick[p]` (`p` when `pick` is null) becomes row p, at `offset +
 * p * stride`. Done in panels of a few source rows (a multiple of 32, so each stored row's
 * share of a panel is whole q8 blocks): read the panel, transpose it into a piece, put the
 * piece's short rows strided. Only a panel and a piece are ever on the host, never the tensor.
 */
function putTransposed(
  put: PutPiece,
  host: HostBuffers,
  rows: number,
  cols: number,
  rowsOf: RowsOf,
  offset: number,
  stride: number,
  pick: Int32Array | null = null,
): void {
  const P = pick ? pick.length : cols;
  const R = Math.max(32, Math.floor(PIECE_VALUES / Math.max(1, cols) / 32) * 32);
  for (let r0 = 0; r0 < rows; r0 += R) {
    const r1 = Math.min(rows, r0 + R), n = r1 - r0;
    const panel = rowsOf(r0, r1, host.get("panel", n * cols)); // [n, cols] source rows r0..r1-1
    const piece = host.get("piece", P * n); // [P, n] row p = source column pick[p], rows r0..r1-1
    for (let p = 0; p < P; p++) {
      const j = pick ? pick[p] : p;
      for (let r = 0; r < n; r++) piece[p * n + r] = panel[r * cols + j];
    }
    put(offset + r0, piece, n, stride);
  }
}

function loadLayer(
  ckpt: Checkpoint,
  cfg: ModelConfig,
  l: number,
  io: {
    store: MatrixStore;
    mat: (name: string, rows: number) => MatView;
    vec: (name: string, n: number) => MatView;
    host: HostBuffers;
  },
  order: Int32Array | null,
): LayerWeights {
  const { store, mat, vec, host } = io;
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, numKvHeads: nkv, headDim: d } = cfg;
  const p = `model.layers.${l}`;
  const rowsOf = (name: string, shape: number[]): RowsOf => (r0, r1, out) =>
    rowsF32(ckpt, name, shape, r0, r1, out);
  // o^T [n_h*d_h, H]: row c = column c of W_o [H, n_h*d_h], written in panels of W_o's rows.
  const oName = `${p}.self_attn.o_proj.weight`;
  const oT = store(
    nh * d,
    H,
    (put) => putTransposed(put, host, H, nh * d, rowsOf(oName, [H, nh * d]), 0, H),
  );
  // Bundle [I, 3H]: row p = gate_j, up_j, column j of W_down [H, I], for neuron j = order[p].
  const gateName = `${p}.mlp.gate_proj.weight`, upName = `${p}.mlp.up_proj.weight`;
  const downName = `${p}.mlp.down_proj.weight`;
  const ffn = store(I, 3 * H, (put) => {
    for (const [name, at] of [[gateName, 0], [upName, H]] as const) {
      // Rows of gate (up) in bundle order: read whole pieces, or row by row when reordered.
      const read: RowsOf = order
        ? (p0, p1, out) => {
          for (let q = p0; q < p1; q++) {
            rowsF32(ckpt, name, [I, H], order[q], order[q] + 1, out.subarray((q - p0) * H));
          }
          return out.subarray(0, (p1 - p0) * H);
        }
        : rowsOf(name, [I, H]);
      putRows(put, host, I, H, read, at, 3 * H);
    }
    putTransposed(put, host, H, I, rowsOf(downName, [H, I]), 2 * H, 3 * H, order);
  });
  const optVec = (name: string, n: number) => hasTensor(ckpt, name) ? vec(name, n) : null;
  if (cfg.attentionBias && !hasTensor(ckpt, `${p}.self_attn.q_proj.bias`)) {
    throw new Error(`checkpoint: "${p}.self_attn.q_proj.bias" is missing (attention_bias model)`);
  }
  return {
    attnNorm: vec(`${p}.input_layernorm.weight`, H),
    q: mat(`${p}.self_attn.q_proj.weight`, nh * d), // [n_h*d_h, H]
    k: mat(`${p}.self_attn.k_proj.weight`, nkv * d), // [n_kv*d_h, H]
    v: mat(`${p}.self_attn.v_proj.weight`, nkv * d), // [n_kv*d_h, H]
    qBias: optVec(`${p}.self_attn.q_proj.bias`, nh * d),
    kBias: optVec(`${p}.self_attn.k_proj.bias`, nkv * d),
    vBias: optVec(`${p}.self_attn.v_proj.bias`, nkv * d),
    qNorm: cfg.qkNorm ? vec(`${p}.self_attn.q_norm.weight`, d) : null,
    kNorm: cfg.qkNorm ? vec(`${p}.self_attn.k_norm.weight`, d) : null,
    oT: view(oT, nh * d, H),
    mlpNorm: vec(`${p}.post_attention_layernorm.weight`, H),
    gate: view(ffn, I, H, 0, 3 * H),
    up: view(ffn, I, H, H, 3 * H),
    downT: view(ffn, I, H, 2 * H, 3 * H),
  };
}

/**
 * Host copies of one layer's output projections in HF orientation, re-read from the folder
 * (for calibration: column norms and bias compensation). Not kept in memory by the engine.
 */
export async function readProjections(
  dir: string,
  cfg: ModelConfig,
): Promise<{ wDown: Float32Array; wO: Float32Array }[]> {
  const ckpt = await readCheckpoint(dir);
  const { hiddenSize: H, intermediateSize: I, numHeads: nh, headDim: d } = cfg;
  return Array.from({ length: cfg.numLayers }, (_, l) => ({
    wDown: tensorF32(ckpt, `model.layers.${l}.mlp.down_proj.weight`, [H, I]), // [H, I]
    wO: tensorF32(ckpt, `model.layers.${l}.self_attn.o_proj.weight`, [H, nh * d]), // [H, n_h*d_h]
  }));
}
