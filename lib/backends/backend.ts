/**
 * The `Backend` interface: every heavy op of the forward pass, on opaque backend-owned tensors.
 *
 * Model code (lib/model/sequence.ts) calls only these methods, so the plain TypeScript
 * `reference` backend, the WASM SIMD backend and the WebGPU backend are drop-in replacements.
 * Ops are *enqueued*: a backend may run them eagerly (CPU) or record them and run them at the
 * next `read` (GPU: one submission per decode step). Only `read` returns data to the host.
 *
 * Conventions: activations are row-major 2-D tensors `[rows, cols]`, one row per token.
 * Weights live in {@link WeightBuffer}s uploaded once; a {@link MatView} addresses a strided
 * 2-D block inside one, so bundled layouts (gate/up/down rows of a neuron side by side) need
 * no copies. Masks are {@link IndexList}s of kept rows, uploaded once per mask.
 */

/**
 * A backend could not allocate memory for a tensor or weights (its address space or the host
 * is exhausted). Nothing was allocated by the failing call; the caller may free and retry.
 */
export class BackendMemoryError extends RangeError {
  override name = "BackendMemoryError";
}

/** An activation tensor `[rows, cols]` owned by a backend. */
export interface Tensor {
  readonly rows: number;
  readonly cols: number;
}

/** A weight buffer uploaded once (element count `length`). */
export interface WeightBuffer {
  readonly length: number;
  /** Storage precision of this buffer, when the backend records it (the shared checks compare). */
  readonly dtype?: WeightDType;
}

/**
 * A 2-D view into a weight buffer: row r is elements
 * `[offset + r * stride, offset + r * stride + cols)`.
 */
export interface MatView {
  readonly buf: WeightBuffer;
  readonly offset: number;
  readonly stride: number;
  readonly rows: number;
  readonly cols: number;
}

/** A list of row indices uploaded to a backend (kept neurons, kept head rows, kv-head maps). */
export interface IndexList {
  readonly length: number;
  /** The host copy (always kept; small). */
  readonly host: Int32Array;
}

/**
 * Weight storage precision a backend may use: "f32", "f16", or "q8" (blocks of 32 int8 values
 * with one f32 scale, lib/formats/q8.ts). With q8 weights, {@link Backend.matmul} (and the gate
 * and up products of {@link Backend.ffn}) quantize the activation too, per token and block of
 * 32, in the same format (llama.cpp's Q8_0 x Q8_0 dot product): block sums are exact integers,
 * scaled by both blocks' scales. {@link Backend.matmulTAdd} and the down product use the
 * dequantized weights with f32 coefficients. The kernels need q8 views to start on a block:
 * offset, stride and cols multiples of 32 (the model loader stores matrices whose rows are not a
 * multiple of 32 long as f32, as llama.cpp does); elementwise ops accept any q8 view.
 */
export type WeightDType = "f32" | "f16" | "q8";

/** Every heavy op of the forward pass. See the module comment for conventions. */
export interface Backend {
  /** "reference" | "wasm" | "webgpu". */
  readonly name: string;
  /** Storage precision of weights uploaded with {@link Backend.weights}. */
  readonly weightDType: WeightDType;
  /**
   * Optional: the most bytes this backend may hold (weights, KV caches, temporaries), when it
   * has a hard limit (the WASM backend's linear memory); the server sizes the context by it.
   */
  readonly memoryLimitBytes?: number;
  /** Optional: bytes held now, counted against {@link memoryLimitBytes}. */
  readonly usedBytes?: number;

  /**
   * Upload a weight buffer (converted to {@link weightDType} if needed). `dtype` overrides the
   * storage precision of this one buffer: pass "f32" for small precision-sensitive vectors
   * (norm weights, rope `invFreq`, biases) on an f16 backend, which must honour it (an
   * f32-only backend stores f32 anyway).
   */
  weights(data: Float32Array, dtype?: WeightDType): WeightBuffer;
  /**
   * Optional, for lean loading: a weight buffer of `length` values (zeros) to be filled piece
   * by piece with {@link writeWeights}, so a large tensor never exists whole in f32 on the
   * host. Backends without it get whole tensors through {@link weights}.
   */
  allocWeights?(length: number, dtype?: WeightDType): WeightBuffer;
  /**
   * Convert and store `data` as values `[offset, offset + data.length)` of a buffer from
   * {@link allocWeights}. With `rowLen` (and `stride`, default `rowLen`) `data` is rows of
   * `rowLen` values and row i goes to `[offset + i * stride, offset + i * stride + rowLen)`:
   * a panel of a matrix, e.g. some columns of a transposed tensor. For q8 buffers every row
   * starts on a 32-value block and is a whole number of blocks, unless it is a single row
   * that ends the buffer.
   */
  writeWeights?(
    buf: WeightBuffer,
    offset: number,
    data: Float32Array,
    rowLen?: number,
    stride?: number,
  ): void;
  /** Upload an index list. */
  indices(idx: Int32Array): IndexList;
  /** A zero-filled activation tensor `[rows, cols]`. */
  tensor(rows: number, cols: number): Tensor;
  /** Overwrite a tensor's contents (`data.length === rows * cols`). */
  write(t: Tensor, data: Float32Array): void;
  /** Run everything enqueued and copy a tensor back to the host. */
  read(t: Tensor): Promise<Float32Array>;
  /** Release a tensor (a backend may pool it). Using it afterwards is an error. */
  free(t: Tensor): void;
  /** Release a weight buffer or index list. */
  release(b: WeightBuffer | IndexList): void;

  /** `out[t, :] = table[ids[t], :]`; out `[T, cols]`. */
  embed(table: MatView, ids: Int32Array, out: Tensor): void;
  /**
   * RMSNorm over groups of `weight.cols` consecutive values in each row:
   * `out = x / sqrt(mean(x^2) + eps) * weight`. x, out `[T, G * weight.cols]` (G = 1 for a
   * hidden-state norm, G = heads for Qwen3's per-head q/k norm). out may alias x.
   */
  rmsNorm(x: Tensor, weight: MatView, eps: number, out: Tensor): void;
  /**
   * Row-gathered matrix product: `out[t, i] = sum_k x[t, k] * w[rows[i], k] (+ bias[rows[i]])`.
   * x `[T, K]`, w `[N, K]`, out `[T, R]` with R = rows.length (or N when rows is null);
   * bias is a 1-row view of length N. Pruned rows are never read.
   */
  matmul(x: Tensor, w: MatView, rows: IndexList | null, bias: MatView | null, out: Tensor): void;
  /**
   * Row-gathered transposed product, accumulated: `out[t, :] += sum_i a[t, i] * w[rows[i], :]`.
   * a `[T, R]`, w `[N, M]` (a transposed projection, e.g. W_down^T), out `[T, M]`.
   */
  matmulTAdd(a: Tensor, w: MatView, rows: IndexList | null, out: Tensor): void;
  /** `out = silu(gate) * up`, elementwise; all `[T, n]`. out may alias gate. */
  siluMul(gate: Tensor, up: Tensor, out: Tensor): void;
  /**
   * Rotary embedding in place, HF "rotate_half" convention, on every head of x `[T, nh * d]`:
   * token t has position `pos0 + t`; `invFreq` is a 1-row view of length d/2.
   */
  rope(x: Tensor, headDim: number, pos0: number, invFreq: MatView): void;
  /** `x[t, :] += bias` for every row; bias a 1-row view of length x.cols. */
  addRow(x: Tensor, bias: MatView): void;
  /** `x += y`, elementwise. */
  add(x: Tensor, y: Tensor): void;
  /**
   * Write new keys or values into a cache. cache `[nKv * maxT, d]` (kv head h, position p at row
   * `h * maxT + p`); kv `[T, heads.length * d]` holds kv heads `heads[j]` in slot j; token t
   * goes to position `pos0 + t`.
   */
  kvWrite(cache: Tensor, kv: Tensor, heads: IndexList, maxT: number, pos0: number): void;
  /**
   * Causal attention of new queries over the cache. q `[T, S * d]` (S query-head slots),
   * `kvOf[s]` = kv head of slot s; query t sees positions `0 ..= pos0 + t`.
   * out `[T, S * d]` = softmax(q k^T * scale) v per slot.
   */
  attention(
    q: Tensor,
    kCache: Tensor,
    vCache: Tensor,
    kvOf: IndexList,
    maxT: number,
    pos0: number,
    scale: number,
    out: Tensor,
  ): void;
  /** Copy `count` rows of src starting at `srcRow` into dst starting at `dstRow`. */
  copyRows(src: Tensor, srcRow: number, count: number, dst: Tensor, dstRow: number): void;
  /**
   * Optional fused SwiGLU FFN over kept neurons (`r = rows[i]`, all of them when null):
   * `a[t, i] = silu(x[t, :] . gate[r, :]) * (x[t, :] . up[r, :])`, `out[t, :] += sum_i a[t, i] *
   * downT[r, :]`; `act` `[T, R]`, when given, receives `a`. x `[T, K]`, gate/up `[N, K]`, downT
   * `[N, M]`, out `[T, M]`. Same result as matmul(gate), matmul(up), siluMul, matmulTAdd, but with
   * the bundled layout a neuron's three rows are one contiguous stream read once: scattered
   * 2.3 KB row fragments get a fraction of the sequential bandwidth on CPUs (bench/ffn_bench.ts).
   * Callers fall back to the four ops when a backend lacks it.
   */
  ffn?(
    x: Tensor,
    gate: MatView,
    up: MatView,
    downT: MatView,
    rows: IndexList | null,
    out: Tensor,
    act?: Tensor | null,
  ): void;
}
