/**
 * The WASM SIMD backend: every op of {@link Backend} runs eagerly in `kernels/wasm/seap_kernels.wasm`
 * (C compiled with clang, f32x4 SIMD) on tensors and weights that live in one
 * `WebAssembly.Memory` owned by the backend: 32-bit up to a 4 GiB limit, else 64-bit with the
 * memory64 build `seap_kernels64.wasm` (lib/backends/wasm_memory.ts; docs/design.md, WASM memory
 * past 4 GiB). One thread unless created with `threads` > 1 (`SEAP_THREADS`): then the memory is
 * shared and the big ops are cut across workers (lib/backends/wasm_threads.ts), bit for bit the
 * same results. Weights are stored as f32, f16 or q8
 * (`weightDType`, chosen at creation); f16 halves the bytes read per decoded token and is
 * converted to f32 inside the kernels; q8 (lib/formats/q8.ts) reads 1.125 bytes per weight with
 * integer dot products (kernels/wasm/matmul_q8.c). Matmuls read only the rows of the index list.
 *
 * The pieces, one file each:
 *
 * - lib/backends/wasm_memory.ts: the linear memory (32- or 64-bit, created and grown) and the
 *   wasm64 calling convention.
 * - lib/backends/wasm_kernels.ts: the kernels' exports and the compiled module of each build.
 * - lib/backends/wasm_heap.ts: the allocator over the memory and its typed-array views.
 * - lib/backends/wasm_handles.ts: tensors, weight buffers, index lists and their checks.
 * - lib/backends/wasm_weights.ts: weight upload and piecewise writes (q8 quantized in place).
 * - lib/backends/wasm_matmul.ts (the products) and lib/backends/wasm_ops.ts (the rest).
 */

import type { Backend, IndexList, MatView, Tensor, WeightBuffer, WeightDType } from "./backend.ts";
import * as check from "./arg_checks.ts";
import {
  type AddressBits,
  addressBitsFor,
  bindKernels,
  createLinearMemory,
  i64Params,
  type LinearMemory,
  WASM32_MAX_BYTES,
  WASM64_MAX_BYTES,
} from "./wasm_memory.ts";
import {
  type F16Path,
  fp16SimdFromEnv,
  fp16SimdSupported,
  kernelModule,
  type Kernels,
} from "./wasm_kernels.ts";
import { ReusableBlock, WasmHeap } from "./wasm_heap.ts";
import { tensorOf, WasmIndices, WasmTensor, WasmWeights } from "./wasm_handles.ts";
import { allocWeights, uploadWeights, writeWeights } from "./wasm_weights.ts";
import * as ops from "./wasm_ops.ts";
import * as products from "./wasm_matmul.ts";
import type { ThreadPool } from "./wasm_threads.ts";

/** Options of {@link WasmBackend.create}. */
export interface WasmBackendOptions {
  /** Weight storage: "f32" (default), "f16" or "q8". */
  weightDType?: WeightDType;
  /**
   * The most bytes of linear memory the backend may use (default 4 GiB; at most 16 GiB, V8's
   * memory64 ceiling). The server sets it from SEAP_MAX_MEMORY; tests force out-of-memory with
   * a small one.
   */
  maxBytes?: number;
  /**
   * 32 or 64: which kernel build and memory (default: wasm32 up to a 4 GiB limit, wasm64 beyond;
   * docs/design.md, WASM memory past 4 GiB). Tests force 64 on small models.
   */
  addressBits?: AddressBits;
  /**
   * Threads in all (`SEAP_THREADS`): above 1, the caller and `threads - 1` workers over a shared
   * memory (lib/backends/wasm_threads.ts), same results bit for bit; such a backend must be
   * {@link WasmBackend.close}d, or its workers keep the process alive. 1 (default): the
   * one-thread backend, no workers, no shared memory.
   */
  threads?: number;
  /**
   * Half-precision SIMD for f16 weights (kernels/wasm/seap_kernels*_fp16.wasm, one per address
   * width and memory: f16 converted by `f32x4.promote_low_f16x8`, which Deno's V8 validates only
   * with `--v8-flags=--experimental-wasm-fp16`). Unset (default): used when the weights are f16,
   * the runtime has it and `SEAP_FP16_SIMD` is not 0, on wasm32 and wasm64, one thread or
   * several; else the portable bit-trick kernels. false: never. true: required (throws where the
   * runtime lacks it).
   */
  fp16Simd?: boolean;
}

/**
 * The f16 conversion of a new backend (see {@link WasmBackendOptions.fp16Simd}): the
 * half-precision SIMD builds exist for every address width and memory (one thread or shared) and
 * only matter for f16 weights.
 */
function chooseF16Path(want: boolean | undefined, dtype: WeightDType): F16Path {
  if (want === false) return "bit-trick";
  if (want === true) {
    if (!fp16SimdSupported()) {
      throw new Error(
        "wasm backend: fp16Simd needs WebAssembly half-precision SIMD (run deno with " +
          "--v8-flags=--experimental-wasm-fp16)",
      );
    }
    return "fp16-simd";
  }
  return dtype === "f16" && fp16SimdFromEnv() && fp16SimdSupported() ? "fp16-simd" : "bit-trick";
}

/** WASM SIMD implementation of {@link Backend}; create it with {@link WasmBackend.create}. */
export class WasmBackend implements Backend {
  readonly name = "wasm";
  readonly weightDType: WeightDType;

  /** Address width of the kernel module and memory (32: wasm32, 64: memory64). */
  readonly addressBits: AddressBits;
  /**
   * How the kernels convert f16 weights: "fp16-simd" (the half-precision SIMD build) or
   * "bit-trick" (the portable build; see {@link WasmBackendOptions.fp16Simd}).
   */
  readonly f16Path: F16Path;
  #heap: WasmHeap;
  #ops: ops.WasmOpsContext;

  private constructor(
    lm: LinearMemory,
    k: Kernels,
    weightDType: WeightDType,
    limit: number,
    f16Path: F16Path,
  ) {
    this.addressBits = lm.bits;
    this.f16Path = f16Path;
    this.weightDType = weightDType;
    this.#heap = new WasmHeap(lm, k.heapBase, limit);
    this.#ops = {
      heap: this.#heap,
      k,
      pool: null,
      scratch: new ReusableBlock(this.#heap),
      vec: new ReusableBlock(this.#heap),
      rope: new ReusableBlock(this.#heap),
      ropeKey: [-1, -1, -1, -1, -1],
      ropeFreq: { buf: null, f: new Float32Array(0) },
    };
  }

  /**
   * Load and instantiate the kernels (the wasm32 or wasm64 build, by {@link addressBitsFor})
   * over a new memory growable to `maxBytes`; `weightDType` defaults to "f32".
   */
  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    const dtype = opts.weightDType ?? "f32";
    if (dtype !== "f32" && dtype !== "f16" && dtype !== "q8") {
      throw new Error(`wasm backend: bad weightDType ${dtype}`);
    }
    const threads = opts.threads ?? 1;
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
      throw new RangeError(`wasm backend: threads must be an integer in 1..256, got ${threads}`);
    }
    const limit = opts.maxBytes ?? WASM32_MAX_BYTES;
    if (!(Number.isFinite(limit) && limit > 0 && limit <= WASM64_MAX_BYTES)) {
      throw new RangeError(
        `wasm backend: maxBytes must be in (0, 16 GiB] (V8's memory64 ceiling), got ${limit}`,
      );
    }
    const bits = addressBitsFor(limit, opts.addressBits);
    const shared = threads > 1;
    const f16Path = chooseF16Path(opts.fp16Simd, dtype);
    const { module, bytes } = await kernelModule(bits, shared, f16Path);
    const lm = createLinearMemory({ bits, maxBytes: limit, shared });
    const inst = await WebAssembly.instantiate(module, { env: { memory: lm.memory } });
    const be = new WasmBackend(lm, bindKernels<Kernels>(inst, bytes), dtype, limit, f16Path);
    if (!shared) return be;
    const { ThreadPool } = await import("./wasm_threads.ts");
    const heap = be.#heap;
    be.#ops.pool = await ThreadPool.create(
      {
        memory: lm.memory,
        module,
        wide: Object.fromEntries(i64Params(bytes)),
        alloc: (n) => heap.alloc(n),
        free: (ptr, size) => heap.dealloc(ptr, size),
      },
      inst,
      threads,
    );
    return be;
  }

  /** Threads the ops run on (1: the calling thread only). */
  get threads(): number {
    return this.#ops.pool ? this.#ops.pool.threads : 1;
  }

  /** The worker pool (threads > 1), for tests and metrics; null on one thread. */
  get threadPool(): ThreadPool | null {
    return this.#ops.pool;
  }

  /**
   * Stop the worker threads (threads > 1; nothing to do on one thread): done when it returns
   * (the promise is for the {@link Backend} interface). The backend stays usable on the calling
   * thread alone. Idempotent.
   */
  close(): Promise<void> {
    const p = this.#ops.pool;
    this.#ops.pool = null;
    p?.close();
    return Promise.resolve();
  }

  /** Bytes of memory the backend currently holds (weights, tensors, pools). */
  get memoryBytes(): number {
    return this.#heap.memory.buffer.byteLength;
  }

  /** The most bytes of linear memory this backend may use (`maxBytes`, at most 16 GiB). */
  get memoryLimitBytes(): number {
    return this.#heap.limit;
  }

  /** Bytes held by live weights, tensors and pools (the heap top less its free blocks). */
  get usedBytes(): number {
    return this.#heap.usedBytes;
  }

  /** Bytes currently free for reuse below the top of the heap (for tests and metrics). */
  get freeBytes(): number {
    return this.#heap.freeBytes;
  }

  // ---------- storage ----------

  /** Upload a weight buffer, stored as `dtype` (default {@link weightDType}). */
  weights(data: Float32Array, dtype?: WeightDType): WeightBuffer {
    return uploadWeights(this.#heap, data, dtype ?? this.weightDType);
  }

  /** A zero-filled weight buffer of `length` values, to fill with {@link writeWeights}. */
  allocWeights(length: number, dtype?: WeightDType): WeightBuffer {
    return allocWeights(this.#heap, length, dtype ?? this.weightDType);
  }

  /** Write rows of `rowLen` values, `stride` apart, into a buffer from element `offset`. */
  writeWeights(
    buf: WeightBuffer,
    offset: number,
    data: Float32Array,
    rowLen = data.length,
    stride = rowLen,
  ): void {
    writeWeights(this.#heap, buf, offset, data, rowLen, stride);
  }

  /** Upload an index list (kept rows); the host copy is kept. */
  indices(idx: Int32Array): IndexList {
    const { ptr, size } = this.#heap.alloc(idx.length * 4);
    this.#heap.i32.set(idx, ptr / 4);
    return new WasmIndices(this.#heap, idx.slice(), ptr, size);
  }

  /** A zero-filled tensor `[rows, cols]`. */
  tensor(rows: number, cols: number): Tensor {
    check.checkTensorShape(rows, cols);
    const { ptr, size } = this.#heap.alloc(rows * cols * 4, true);
    return new WasmTensor(this.#heap, rows, cols, ptr, size);
  }

  /** Overwrite a tensor with `data` (row-major, rows * cols values). */
  write(x: Tensor, data: Float32Array): void {
    const t = tensorOf(this.#heap, x, "write target");
    check.checkWrite(t, data);
    this.#heap.f32.set(data, t.ptr / 4);
  }

  /** Copy a tensor back to the host. */
  read(x: Tensor): Promise<Float32Array> {
    const t = tensorOf(this.#heap, x, "read source");
    const p = t.ptr / 4;
    return Promise.resolve(this.#heap.f32.slice(p, p + t.rows * t.cols));
  }

  /** Give a tensor's block back to the heap; any later use of the tensor throws. */
  free(x: Tensor): void {
    const t = tensorOf(this.#heap, x, "freed tensor");
    t.freed = true;
    this.#heap.dealloc(t.ptr, t.bytes);
  }

  /** Release a weight buffer or index list of this backend (idempotent). */
  release(b: WeightBuffer | IndexList): void {
    if ((b instanceof WasmWeights || b instanceof WasmIndices) && b.owner === this.#heap) {
      if (b.released) return;
      b.released = true;
      this.#heap.dealloc(b.ptr, b.bytes);
    }
  }

  // ---------- ops ----------

  /** `out[t, :] = table[ids[t], :]`; out `[T, cols]`. */
  embed(table: MatView, ids: Int32Array, out: Tensor): void {
    ops.embed(this.#ops, table, ids, out);
  }

  /** Grouped RMSNorm; x, out `[T, G * weight.cols]`; out may alias x. */
  rmsNorm(x: Tensor, weight: MatView, eps: number, out: Tensor): void {
    ops.rmsNorm(this.#ops, x, weight, eps, out);
  }

  /** Row-gathered product `out[t, i] = x[t, :] . w[rows[i], :] (+ bias[rows[i]])`. */
  matmul(x: Tensor, w: MatView, rows: IndexList | null, bias: MatView | null, out: Tensor): void {
    products.matmul(this.#ops, x, w, rows, bias, out);
  }

  /** Row-gathered transposed product, accumulated: `out[t, :] += sum_i a[t, i] w[rows[i], :]`. */
  matmulTAdd(a: Tensor, w: MatView, rows: IndexList | null, out: Tensor): void {
    products.matmulTAdd(this.#ops, a, w, rows, out);
  }

  /** `out = silu(gate) * up`, elementwise; out may alias gate. */
  siluMul(gate: Tensor, up: Tensor, out: Tensor): void {
    ops.siluMul(this.#ops, gate, up, out);
  }

  /** Rotary embedding in place (HF rotate_half) on every head of x `[T, nh * d]`. */
  rope(x: Tensor, headDim: number, pos0: number, invFreq: MatView): void {
    ops.rope(this.#ops, x, headDim, pos0, invFreq);
  }

  /** `x[t, :] += bias` for every row. */
  addRow(x: Tensor, bias: MatView): void {
    ops.addRow(this.#ops, x, bias);
  }

  /** `x += y`, elementwise. */
  add(x: Tensor, y: Tensor): void {
    ops.add(this.#ops, x, y);
  }

  /** Write keys or values of kv heads `heads[j]` into cache rows `heads[j] * maxT + pos0 + t`. */
  kvWrite(cache: Tensor, kv: Tensor, heads: IndexList, maxT: number, pos0: number): void {
    ops.kvWrite(this.#ops, cache, kv, heads, maxT, pos0);
  }

  /** Causal attention of q `[T, S * d]` over the caches; `kvOf[s]` = kv head of slot s. */
  attention(
    q: Tensor,
    kCache: Tensor,
    vCache: Tensor,
    kvOf: IndexList,
    maxT: number,
    pos0: number,
    scale: number,
    out: Tensor,
  ): void {
    ops.attention(this.#ops, q, kCache, vCache, kvOf, maxT, pos0, scale, out);
  }

  /** Copy `count` rows of src from `srcRow` into dst from `dstRow`. */
  copyRows(src: Tensor, srcRow: number, count: number, dst: Tensor, dstRow: number): void {
    ops.copyRows(this.#ops, src, srcRow, count, dst, dstRow);
  }

  /** Fused SwiGLU FFN over kept neurons (one kernel, or cut across threads). */
  ffn(
    x: Tensor,
    gate: MatView,
    up: MatView,
    downT: MatView,
    rows: IndexList | null,
    out: Tensor,
    act: Tensor | null = null,
  ): void {
    products.ffn(this.#ops, x, gate, up, downT, rows, out, act);
  }

  /** Host copy (f32) of the first `n` values of row 0 of a view (any storage dtype). */
  hostView(v: MatView, n: number): Float32Array {
    return ops.hostView(this.#ops, v, n);
  }
}
