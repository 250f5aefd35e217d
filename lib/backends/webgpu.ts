/**
 * WebGPU backend: every {@link Backend} op as a WGSL compute shader (kernels/wgsl/, one op per
 * file), weights resident on the GPU.
 *
 * Ops are *recorded* into one pending command encoder and nothing runs until
 * {@link WebGpuBackend.read}, which submits everything and maps one staging buffer, so a decode
 * step is one submission whose only readback is the logits. The pieces, one file each:
 *
 * - lib/backends/webgpu_device.ts: adapter and device acquisition (`navigator.gpu`).
 * - lib/backends/webgpu_kernels.ts: the kernel table, with each kernel's uniform fields by
 *   name (the WGSL struct is generated from it) and the constants host and shader share.
 * - lib/backends/webgpu_recorder.ts: the command recorder (uniform ring, upload arena,
 *   pipeline and bind-group caches, submission, GPU errors).
 * - lib/backends/webgpu_buffers.ts: handles, buffer pools, uploads, readbacks and the binding
 *   helpers (row-chunked binding of views larger than the device's storage binding limit).
 * - lib/backends/webgpu_upload.ts: weights filled piece by piece (lean loading).
 * - lib/backends/webgpu_ops.ts and webgpu_matmul.ts: the ops.
 *
 * Weights are f32, f16 (two halves packed per u32, unpacked in WGSL with `unpack2x16float`, so
 * no `enable f16` is needed) or q8 (lib/formats/q8.ts blocks; the *_q8.wgsl kernels quantize
 * activations with quantize_q8.wgsl and sum int8 products exactly).
 */

import type { Backend, IndexList, MatView, Tensor, WeightBuffer, WeightDType } from "./backend.ts";
import { checkTensorShape, checkWrite } from "./arg_checks.ts";
import {
  adapterOrDefault,
  describeAdapter,
  isFallbackAdapter,
  openDevice,
  packedF16Error,
} from "./webgpu_device.ts";
import { loadKernelSources } from "./webgpu_kernels.ts";
import { GpuRecorder } from "./webgpu_recorder.ts";
import { GpuMemory } from "./webgpu_buffers.ts";
import * as ops from "./webgpu_ops.ts";
import * as upload from "./webgpu_upload.ts";
import * as products from "./webgpu_matmul.ts";

export {
  isFallbackAdapter,
  requestWebGpuAdapter,
  WebGpuError,
  WebGpuUnavailableError,
} from "./webgpu_device.ts";

/** Options of {@link WebGpuBackend.create}. */
export interface WebGpuBackendOptions {
  /** Weight storage precision (default "f32"); "f16" falls back to f32 if unsupported. */
  weightDType?: WeightDType;
  /** Use this adapter instead of requesting one. */
  adapter?: GPUAdapter;
  /** Accept a software fallback adapter (default true). */
  allowFallback?: boolean;
  /** Cap on bytes bound per storage binding (default: the device limit). For tests. */
  maxBindingBytes?: number;
  /** Positions per split-K slice of matmulTAdd (default: chosen from the shape). For tests. */
  tSplitRows?: number;
  /** Lanes per output row in matmul (power of two <= 256; default 64, 1 on software). */
  matmulLanes?: number;
  /** Positions per attention chunk (split-K over positions; default from the shape). Tests. */
  attnChunk?: number;
}

/** The WebGPU implementation of {@link Backend}. Create with {@link WebGpuBackend.create}. */
export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  /** Description of the adapter in use (e.g. "llvmpipe (LLVM 15...)"). */
  readonly adapterDescription: string;
  /** Whether the adapter is a software fallback. */
  readonly isFallback: boolean;

  #rec: GpuRecorder;
  #mem: GpuMemory;
  #ops: ops.OpsContext;

  private constructor(
    readonly device: GPUDevice,
    adapter: GPUAdapter,
    readonly weightDType: WeightDType,
    f16Ok: boolean,
    sources: Map<string, string>,
    opts: WebGpuBackendOptions,
  ) {
    this.adapterDescription = describeAdapter(adapter);
    this.isFallback = isFallbackAdapter(adapter);
    const lanes = opts.matmulLanes ?? (this.isFallback ? 1 : 64);
    if (![1, 2, 4, 8, 16, 32, 64, 128, 256].includes(lanes)) {
      throw new RangeError(`webgpu: matmulLanes ${lanes} is not a power of two <= 256`);
    }
    this.#rec = new GpuRecorder(device, sources);
    this.#mem = new GpuMemory(this.#rec, {
      weightDType,
      f16Ok,
      maxBindingBytes: opts.maxBindingBytes,
    });
    this.#ops = {
      rec: this.#rec,
      mem: this.#mem,
      lanes,
      tSplitRows: opts.tSplitRows,
      attnChunk: opts.attnChunk,
      scratch: null,
      q8x: null,
    };
  }

  /**
   * Open a device on the given (or the default) adapter and load the kernels. Throws
   * {@link WebGpuUnavailableError} when there is no adapter. With `weightDType: "f16"` the
   * packed-half kernels are compiled up front; if that fails the backend uses f32 instead
   * (`weightDType` says which).
   */
  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    const adapter = await adapterOrDefault(opts.adapter, opts.allowFallback);
    const device = await openDevice(adapter);
    const sources = await loadKernelSources();
    let dtype: WeightDType = opts.weightDType ?? "f32";
    const f16Err = await packedF16Error(device, sources.get("matmul_rows")!);
    if (f16Err && dtype === "f16") {
      console.warn(`webgpu: packed f16 weights unsupported (${f16Err}); using f32`);
      dtype = "f32";
    }
    return new WebGpuBackend(device, adapter, dtype, f16Err === null, sources, opts);
  }

  /** Counters since creation: submissions, compute passes, dispatches, tensor readbacks. */
  get stats(): { submissions: number; passes: number; dispatches: number; readbacks: number } {
    return this.#rec.stats;
  }

  /** Submit pending work, free every GPU resource and the device. */
  destroy(): void {
    this.#rec.destroy();
  }

  /**
   * Upload a weight buffer, stored as `dtype` (default {@link weightDType}); "f16" packs two
   * halves per u32. If packed f16 is unsupported every buffer is stored as f32.
   */
  weights(data: Float32Array, dtype?: WeightDType): WeightBuffer {
    return this.#mem.weights(data, dtype ?? this.weightDType);
  }

  /**
   * A weight buffer of `length` values (zeros) created once at its final size, to be filled
   * with {@link writeWeights} (lean loading: no tensor is ever whole on the host).
   */
  allocWeights(length: number, dtype?: WeightDType): WeightBuffer {
    return upload.allocWeights(this.#mem, length, dtype ?? this.weightDType);
  }

  /**
   * Convert and store a piece of a buffer from {@link allocWeights}: rows of `rowLen` values,
   * row i at value `offset + i * stride` (see Backend.writeWeights), in stream order.
   */
  writeWeights(
    buf: WeightBuffer,
    offset: number,
    data: Float32Array,
    rowLen?: number,
    stride?: number,
  ): void {
    upload.writeWeights(this.#mem, buf, offset, data, rowLen, stride);
  }

  /** The bytes a weight buffer stores (f32, packed f16 or q8 blocks), after pending work. */
  readWeights(buf: WeightBuffer): Promise<Uint8Array> {
    return upload.readWeights(this.#mem, buf);
  }

  /** Bytes of the live weight buffers on the device (padding to 16 bytes included). */
  get weightBytes(): number {
    return this.#mem.weightBytes;
  }

  /** Upload an index list (kept rows); the host copy is kept. */
  indices(idx: Int32Array): IndexList {
    return this.#mem.indices(idx);
  }

  /**
   * A zero-filled tensor `[rows, cols]`: a new buffer (zeroed by WebGPU), or a pooled one
   * cleared by a `zero.wgsl` dispatch recorded in stream order (keeps the compute pass open).
   */
  tensor(rows: number, cols: number): Tensor {
    checkTensorShape(rows, cols);
    return this.#mem.tensor(rows, cols);
  }

  /** Overwrite a tensor, in stream order with the ops recorded so far. */
  write(t: Tensor, data: Float32Array): void {
    const g = this.#mem.t(t);
    checkWrite(g, data);
    this.#mem.write(g, data);
  }

  /** Submit everything recorded and copy the tensor back. */
  read(t: Tensor): Promise<Float32Array> {
    return this.#mem.read(this.#mem.t(t));
  }

  /** Return a tensor's buffer to the pool; ops recorded before still see its contents. */
  free(t: Tensor): void {
    this.#mem.free(this.#mem.t(t));
  }

  /** Release a weight buffer or index list (destroyed after pending work is submitted). */
  release(b: WeightBuffer | IndexList): void {
    this.#mem.release(b);
  }

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

  /** Fused SwiGLU FFN over kept neurons (ffn_gate_up.wgsl, then matmul_t_add.wgsl). */
  ffn(
    x: Tensor,
    gate: MatView,
    up: MatView,
    downT: MatView,
    rows: IndexList | null,
    out: Tensor,
    act?: Tensor | null,
  ): void {
    products.ffn(this.#ops, x, gate, up, downT, rows, out, act ?? null);
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
}
