/**
 * WebGPU backend: every {@link Backend} op as a WGSL compute shader (kernels/wgsl/, one op per
 * file), weights resident on the GPU.
 *
 * Ops are *recorded* into one pending command encoder (one compute pass, split only where a
 * buffer copy or clear must sit between dispatches); nothing runs until {@link
 * WebGpuBackend.read}, which submits everything and maps one staging buffer. So a decode step
 * is one submission whose only readback is the logits.
 *
 * - Weights: one GPUBuffer per {@link WeightBuffer}, f32 or f16 (two halves packed per u32,
 *   unpacked in WGSL with `unpack2x16float`, so no `enable f16` is needed), or q8
 *   (lib/formats/q8.ts: 9-word blocks; the *_q8.wgsl kernels quantize activations with
 *   quantize_q8.wgsl and sum int8 products exactly; q8 views bind the whole buffer). A {@link MatView}'s
 *   offset/stride go to the kernel as uniforms; a view larger than the device's storage
 *   binding limit is bound in row chunks (one dispatch per chunk).
 * - Tensors: f32 storage buffers `[rows, cols]` row-major, pooled by size on free.
 * - Index lists: uploaded once as i32 storage buffers; kernels read only the listed rows.
 * - Uniforms: one 256-byte slot of a ring buffer per dispatch (dynamic offset), so bind groups
 *   are cached and reused from one decode step to the next.
 *
 * This module (with lib/backends/webgpu_*.ts helpers) is the only code that touches
 * `navigator.gpu`.
 */

import type { Backend, IndexList, MatView, Tensor, WeightBuffer, WeightDType } from "./backend.ts";
import { dequantizeQ8, Q8_BLOCK, quantizeQ8 } from "../formats/q8.ts";
import { expandIncludes, loadWgslIncludes } from "./wgsl_include.ts";

/** Thrown when no WebGPU adapter (or device) is available. */
export class WebGpuUnavailableError extends Error {
  override name = "WebGpuUnavailableError";
}

/** Thrown for a GPU validation error or a lost device, reported at the next `read`. */
export class WebGpuError extends Error {
  override name = "WebGpuError";
}

/**
 * Ask `navigator.gpu` for an adapter. Returns null when WebGPU is absent, when no adapter
 * exists, or (with `allowFallback: false`) when the only adapter is a software fallback such
 * as llvmpipe.
 */
export async function requestWebGpuAdapter(
  opts: { allowFallback?: boolean; powerPreference?: GPUPowerPreference } = {},
): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return null;
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({
      powerPreference: opts.powerPreference ?? "high-performance",
    });
  } catch {
    return null;
  }
  if (!adapter) return null;
  if (opts.allowFallback === false && isFallbackAdapter(adapter)) return null;
  return adapter;
}

/** Whether an adapter is a software fallback (llvmpipe, SwiftShader, WARP). */
export function isFallbackAdapter(adapter: GPUAdapter): boolean {
  const a = adapter as GPUAdapter & { isFallbackAdapter?: boolean; info?: GPUAdapterInfo };
  const info = a.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
  return Boolean(a.isFallbackAdapter ?? info?.isFallbackAdapter);
}

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

// ---------------------------------------------------------------------------------------------
// Kernel table

/** Pipeline-overridable constants: packed-f16 weight / bias, aligned vec4 path, rope table. */
interface Flags {
  W_F16?: boolean;
  B_F16?: boolean;
  U_F16?: boolean;
  VEC?: boolean;
  TABLE?: boolean;
  /** matmul_rows: lanes per output row. */
  LANES?: number;
}

/** Binding kinds: u = uniform (dynamic offset), s = read-write storage, r = read-only storage. */
type BindKind = "u" | "s" | "r";

interface KernelSpec {
  /** File under kernels/wgsl/ without extension. */
  file: string;
  bindings: BindKind[];
  /** Override constants the shader declares. */
  overrides: (keyof Flags)[];
  /** Indices of f32 fields in the uniform struct (all others are u32). */
  floats?: number[];
}

const KERNELS = {
  matmul_rows: {
    file: "matmul_rows",
    bindings: ["u", "r", "s", "r", "r", "s"],
    overrides: ["W_F16", "B_F16", "VEC", "LANES"],
  },
  matmul_t_add: {
    file: "matmul_t_add",
    bindings: ["u", "r", "s", "r", "s", "s"],
    overrides: ["W_F16", "VEC"],
  },
  ffn_gate_up: {
    file: "ffn_gate_up",
    bindings: ["u", "r", "s", "r", "r", "s"],
    overrides: ["W_F16", "U_F16", "VEC", "LANES"],
  },
  attention: {
    file: "attention",
    bindings: ["u", "s", "s", "s", "r", "s", "s"],
    overrides: [],
    floats: [5],
  },
  rms_norm: { file: "rms_norm", bindings: ["u", "s", "r", "s"], overrides: ["W_F16"], floats: [3] },
  rope: { file: "rope", bindings: ["u", "s", "r", "r"], overrides: ["W_F16", "TABLE"] },
  silu_mul: { file: "silu_mul", bindings: ["u", "s", "s", "s"], overrides: [] },
  add: { file: "add", bindings: ["u", "s", "s"], overrides: [] },
  add_row: { file: "add_row", bindings: ["u", "s", "r"], overrides: ["W_F16"] },
  embed: { file: "embed", bindings: ["u", "r", "r", "s"], overrides: ["W_F16"] },
  kv_write: { file: "kv_write", bindings: ["u", "s", "s", "r"], overrides: [] },
  copy_rows: { file: "copy_rows", bindings: ["u", "s", "s"], overrides: [] },
  zero: { file: "zero", bindings: ["u", "s"], overrides: [] },
  quantize_q8: { file: "quantize_q8", bindings: ["u", "s", "s"], overrides: [] },
  matmul_rows_q8: {
    file: "matmul_rows_q8",
    bindings: ["u", "r", "s", "r", "r", "s"],
    overrides: ["B_F16"],
  },
  matmul_t_add_q8: { file: "matmul_t_add_q8", bindings: ["u", "r", "s", "r", "s"], overrides: [] },
  ffn_gate_up_q8: {
    file: "ffn_gate_up_q8",
    bindings: ["u", "r", "r", "s", "r", "s"],
    overrides: [],
  },
  embed_q8: { file: "embed_q8", bindings: ["u", "r", "r", "s"], overrides: [] },
} satisfies Record<string, KernelSpec>;

type KernelName = keyof typeof KERNELS;

/**
 * Load the WGSL source of every kernel (kernels/wgsl/<name>.wgsl), with its `//!include <name>`
 * lines replaced by the shared helpers in kernels/wgsl/include/ (lib/backends/wgsl_include.ts).
 */
async function loadSources(): Promise<Map<string, string>> {
  const includes = await loadWgslIncludes();
  const out = new Map<string, string>();
  for (const k of Object.values(KERNELS) as KernelSpec[]) {
    const url = new URL(`../../kernels/wgsl/${k.file}.wgsl`, import.meta.url);
    out.set(k.file, expandIncludes(await Deno.readTextFile(url), k.file, includes));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Opaque handles

let nextBufId = 1;

class GpuTensor implements Tensor {
  freed = false;
  constructor(
    readonly rows: number,
    readonly cols: number,
    public buf: GPUBuffer,
    readonly id: number,
    readonly owner: WebGpuBackend,
  ) {}
}

class GpuWeights implements WeightBuffer {
  released = false;
  constructor(
    readonly length: number,
    readonly dtype: WeightDType,
    /** Host copy of small buffers (rope invFreq tables are computed from it). */
    readonly host: Float32Array | null,
    readonly buf: GPUBuffer,
    readonly id: number,
    readonly owner: WebGpuBackend,
  ) {}
}

class GpuIndices implements IndexList {
  released = false;
  /** Smallest and largest index (computed once at upload; Infinity / -Infinity when empty). */
  readonly min: number;
  readonly max: number;
  constructor(
    readonly length: number,
    readonly host: Int32Array,
    readonly buf: GPUBuffer,
    readonly id: number,
    readonly owner: WebGpuBackend,
  ) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < host.length; i++) {
      if (host[i] < lo) lo = host[i];
      if (host[i] > hi) hi = host[i];
    }
    this.min = lo;
    this.max = hi;
  }
}

/** A buffer range for one binding (id identifies the GPUBuffer for the bind-group cache). */
interface Res {
  buf: GPUBuffer;
  id: number;
  offset: number;
  size: number;
}

/** A bound weight range: `base` is the element index of the first wanted element in it. */
interface WRange {
  res: Res;
  base: number;
}

const UNI_SLOT = 256;
const UNI_SLOTS = 2048;
const MAX_WG_X = 65535;
const HOST_COPY_MAX = 1 << 16; // weight buffers up to this many elements keep a host copy
const TT = 4; // tokens per workgroup in the matmul kernels (matches the WGSL)

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/** f32 -> IEEE half bits, round to nearest even (used when Float16Array is missing). */
function toHalfBits(data: Float32Array): Uint16Array {
  const F16 = (globalThis as { Float16Array?: new (a: ArrayLike<number>) => ArrayBufferView })
    .Float16Array;
  if (F16) {
    const h = new F16(data);
    return new Uint16Array(h.buffer, h.byteOffset, data.length);
  }
  const out = new Uint16Array(data.length);
  const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < data.length; i++) {
    const x = u[i];
    const sign = (x >>> 16) & 0x8000;
    const e = (x >>> 23) & 0xff;
    let m = x & 0x7fffff;
    if (e === 0xff) {
      out[i] = sign | 0x7c00 | (m ? 0x200 : 0);
      continue;
    }
    const ex = e - 112;
    if (ex >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (ex <= 0) {
      if (ex < -10) {
        out[i] = sign;
        continue;
      }
      m |= 0x800000;
      const shift = 14 - ex;
      let h = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && (h & 1))) h++;
      out[i] = sign | h;
    } else {
      let h = (ex << 10) | (m >>> 13);
      const rem = m & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
      out[i] = sign | h;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** The WebGPU implementation of {@link Backend}. Create with {@link WebGpuBackend.create}. */
export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  /** Description of the adapter in use (e.g. "llvmpipe (LLVM 15...)"). */
  readonly adapterDescription: string;
  /** Whether the adapter is a software fallback. */
  readonly isFallback: boolean;
  /** Counters since creation: submissions, compute passes, dispatches, tensor readbacks. */
  readonly stats = { submissions: 0, passes: 0, dispatches: 0, readbacks: 0 };

  /** Device storage-binding limit (tensors, scratch). */
  private readonly maxBind: number;
  /** Bytes bound per weight binding (the device limit, or less for tests). */
  private readonly maxWBind: number;
  private readonly align: number;
  private readonly tSplitRows: number | undefined;
  private readonly attnChunk: number | undefined;
  /** Lanes per output row in matmul_rows (64 on GPUs, 1 on software adapters). */
  private readonly lanes: number;

  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pipeLayouts = new Map<string, GPUPipelineLayout>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();

  private readonly uniBuf: GPUBuffer;
  private readonly uniHost = new ArrayBuffer(UNI_SLOT * UNI_SLOTS);
  private readonly uniView = new DataView(this.uniHost);
  private uniUsed = 0;

  private readonly dummyR: Res;
  private readonly dummyW: Res;
  private scratch: Res | null = null;
  /** Quantized activations of the q8 products (see quantizeX). */
  private q8x: Res | null = null;
  /** f32 twins of small q8 buffers used by elementwise ops (see f32View). */
  private readonly q8Twins = new WeakMap<GpuWeights, GpuWeights>();

  private enc: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private passPipe: GPUComputePipeline | null = null;
  private deferred: GPUBuffer[] = [];
  private arena: GPUBuffer;
  private arenaId = nextBufId++;
  private arenaHost: ArrayBuffer;
  /** Bytes of the arena in use / already written to the GPU since the last rewind. */
  private arenaUsed = 0;
  private arenaWritten = 0;
  /** Rope (cos, sin) tables uploaded for the pending submission. */
  private readonly ropeTables = new Map<string, Res>();
  private readonly tensorPool = new Map<number, GPUBuffer[]>();
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private gpuError: string | null = null;
  private lost: string | null = null;
  private destroyed = false;

  private constructor(
    readonly device: GPUDevice,
    adapter: GPUAdapter,
    readonly weightDType: WeightDType,
    private readonly f16Ok: boolean,
    private readonly sources: Map<string, string>,
    opts: WebGpuBackendOptions,
  ) {
    const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
    this.adapterDescription = info
      ? [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(
        " ",
      )
      : "unknown adapter";
    this.isFallback = isFallbackAdapter(adapter);
    this.maxBind = device.limits.maxStorageBufferBindingSize;
    this.maxWBind = Math.min(this.maxBind, opts.maxBindingBytes ?? Infinity);
    this.align = device.limits.minStorageBufferOffsetAlignment;
    this.tSplitRows = opts.tSplitRows;
    this.attnChunk = opts.attnChunk;
    this.lanes = opts.matmulLanes ?? (this.isFallback ? 1 : 64);
    if (![1, 2, 4, 8, 16, 32, 64, 128, 256].includes(this.lanes)) {
      throw new RangeError(`webgpu: matmulLanes ${this.lanes} is not a power of two <= 256`);
    }
    this.uniBuf = device.createBuffer({
      size: UNI_SLOT * UNI_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    const mk = (): Res => {
      const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
      return { buf, id: nextBufId++, offset: 0, size: 16 };
    };
    this.dummyR = mk();
    this.arena = device.createBuffer({
      size: 1 << 20,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    this.arenaHost = new ArrayBuffer(this.arena.size);
    this.dummyW = mk();
    device.addEventListener("uncapturederror", (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error?.message ?? String(ev);
      if (this.gpuError === null) this.gpuError = msg;
    });
    device.lost.then((info) => {
      if (!this.destroyed) this.lost = info.message || String(info.reason);
    });
  }

  /**
   * Open a device on the given (or the default) adapter and load the kernels. Throws
   * {@link WebGpuUnavailableError} when there is no adapter. With `weightDType: "f16"` the
   * packed-half kernels are compiled up front; if that fails the backend uses f32 instead
   * (`weightDType` says which).
   */
  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    const adapter = opts.adapter ??
      await requestWebGpuAdapter({ allowFallback: opts.allowFallback ?? true });
    if (!adapter) {
      throw new WebGpuUnavailableError(
        "no WebGPU adapter: navigator.gpu is missing or requestAdapter() returned null" +
          (opts.allowFallback === false ? " (software fallback adapters excluded)" : ""),
      );
    }
    const lim = adapter.limits;
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({
        requiredLimits: {
          maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
          maxBufferSize: lim.maxBufferSize,
        },
      });
    } catch (e) {
      throw new WebGpuUnavailableError(`WebGPU requestDevice failed: ${(e as Error).message}`);
    }
    const sources = await loadSources();
    let dtype: WeightDType = opts.weightDType ?? "f32";
    let f16Ok = true;
    {
      device.pushErrorScope("validation");
      try {
        const m = device.createShaderModule({ code: sources.get("matmul_rows")! });
        device.createComputePipeline({
          layout: "auto",
          compute: { module: m, entryPoint: "main", constants: { W_F16: 1, VEC: 1 } },
        });
      } catch {
        // reported through the error scope below
      }
      const err = await device.popErrorScope();
      if (err) {
        if (dtype === "f16") {
          console.warn(`webgpu: packed f16 weights unsupported (${err.message}); using f32`);
          dtype = "f32";
        }
        f16Ok = false;
      }
    }
    return new WebGpuBackend(device, adapter, dtype, f16Ok, sources, opts);
  }

  /** Submit pending work, free every GPU resource and the device. */
  destroy(): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    this.device.destroy();
  }

  // -------------------------------------------------------------------------------------------
  // Resources

  /**
   * Upload a weight buffer, stored as `dtype` (default {@link weightDType}); "f16" packs two
   * halves per u32. If packed f16 is unsupported every buffer is stored as f32.
   */
  weights(data: Float32Array, dtype?: WeightDType): WeightBuffer {
    this.alive();
    const want = dtype ?? this.weightDType;
    const dt: WeightDType = want === "f16" && !this.f16Ok ? "f32" : want;
    const bytes = dt === "f16"
      ? new Uint8Array(toHalfBits(data).buffer, 0, data.length * 2)
      : dt === "q8"
      ? quantizeQ8(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const size = Math.max(16, roundUp(bytes.byteLength, 16));
    if (size > this.device.limits.maxBufferSize) {
      throw new RangeError(
        `webgpu: a weight buffer of ${size} bytes exceeds this device's maxBufferSize ` +
          `${this.device.limits.maxBufferSize}; split it or use f16 weights`,
      );
    }
    const buf = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    const host = data.length <= HOST_COPY_MAX ? data.slice() : null;
    return new GpuWeights(data.length, dt, host, buf, nextBufId++, this);
  }

  /** Upload an index list (kept rows); the host copy is kept. */
  indices(idx: Int32Array): IndexList {
    this.alive();
    const host = idx.slice();
    const buf = this.device.createBuffer({
      size: Math.max(16, roundUp(host.byteLength, 16)),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Int32Array(buf.getMappedRange(), 0, host.length).set(host);
    buf.unmap();
    return new GpuIndices(host.length, host, buf, nextBufId++, this);
  }

  /**
   * A zero-filled tensor `[rows, cols]`: a new buffer (zeroed by WebGPU), or a pooled one
   * cleared by a `zero.wgsl` dispatch recorded in stream order (keeps the compute pass open).
   */
  tensor(rows: number, cols: number): Tensor {
    this.alive();
    if (!(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 0 && cols >= 0)) {
      throw new RangeError(`webgpu: bad tensor shape [${rows}, ${cols}]`);
    }
    const size = Math.max(16, roundUp(rows * cols * 4, 16));
    if (size > this.maxBind) {
      throw new RangeError(
        `webgpu: tensor [${rows}, ${cols}] (${size} bytes) exceeds the storage binding limit ` +
          `${this.maxBind}`,
      );
    }
    const pooled = this.tensorPool.get(size)?.pop();
    if (pooled) {
      const t = new GpuTensor(rows, cols, pooled, this.bufId(pooled), this);
      const n = size / 4;
      this.dispatch("zero", "main", {}, [n, 0, 0, 0], [this.tres(t)], Math.ceil(n / 256));
      return t;
    }
    const buf = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return new GpuTensor(rows, cols, buf, this.bufId(buf), this);
  }

  /** Overwrite a tensor, in stream order with the ops recorded so far. */
  write(t: Tensor, data: Float32Array): void {
    const g = this.t(t);
    if (data.length !== g.rows * g.cols) {
      throw new RangeError(
        `webgpu.write: ${data.length} values for a [${g.rows}, ${g.cols}] tensor`,
      );
    }
    if (data.length === 0) return;
    if (this.enc === null) {
      this.device.queue.writeBuffer(
        g.buf,
        0,
        data.buffer as ArrayBuffer,
        data.byteOffset,
        data.byteLength,
      );
      return;
    }
    const up = this.arenaAlloc(data.byteLength);
    new Float32Array(this.arenaHost, up.offset, data.length).set(data);
    this.endPass();
    this.encoder().copyBufferToBuffer(up.buf, up.offset, g.buf, 0, data.byteLength);
  }

  /** Submit everything recorded and copy the tensor back. */
  async read(t: Tensor): Promise<Float32Array> {
    const g = this.t(t);
    const n = g.rows * g.cols;
    const bytes = Math.max(16, roundUp(n * 4, 16));
    const staging = this.stagingPool.get(bytes)?.pop() ?? this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.endPass();
    this.encoder().copyBufferToBuffer(g.buf, 0, staging, 0, bytes);
    this.device.pushErrorScope("validation");
    this.flush(true);
    const err = await this.device.popErrorScope();
    if (err) throw new WebGpuError(`webgpu: ${err.message}`);
    await staging.mapAsync(GPUMapMode.READ);
    this.stats.readbacks++;
    const out = new Float32Array(n);
    out.set(new Float32Array(staging.getMappedRange(0, bytes), 0, n));
    staging.unmap();
    const list = this.stagingPool.get(bytes) ?? [];
    list.push(staging);
    this.stagingPool.set(bytes, list);
    this.checkErrors();
    return out;
  }

  /** Return a tensor's buffer to the pool; ops recorded before still see its contents. */
  free(t: Tensor): void {
    const g = this.t(t);
    g.freed = true;
    const list = this.tensorPool.get(g.buf.size) ?? [];
    list.push(g.buf);
    this.tensorPool.set(g.buf.size, list);
  }

  /** Release a weight buffer or index list (destroyed after pending work is submitted). */
  release(b: WeightBuffer | IndexList): void {
    if (!(b instanceof GpuWeights || b instanceof GpuIndices) || b.owner !== this) {
      throw new TypeError("webgpu.release: not a buffer of this backend");
    }
    if (b.released) return;
    b.released = true;
    this.bindGroups.clear();
    if (this.enc) this.deferred.push(b.buf);
    else b.buf.destroy();
  }

  // -------------------------------------------------------------------------------------------
  // Ops

  /** `out[t, :] = table[ids[t], :]`; out `[T, cols]`. */
  embed(table: MatView, ids: Int32Array, out: Tensor): void {
    const o = this.t(out);
    const w = this.view(table);
    const T = ids.length;
    if (o.rows !== T || o.cols !== table.cols) {
      throw new RangeError(
        `webgpu.embed: out [${o.rows}, ${o.cols}] for ${T} ids of width ${table.cols}`,
      );
    }
    for (let i = 0; i < T; i++) {
      if (!(ids[i] >= 0 && ids[i] < table.rows)) {
        throw new RangeError(`webgpu.embed: id ${ids[i]} outside [0, ${table.rows})`);
      }
    }
    if (T === 0 || table.cols === 0) return;
    const idsRes = this.arenaAlloc(T * 4);
    new Int32Array(this.arenaHost, idsRes.offset, T).set(ids);
    if (w.dtype === "q8") {
      this.dispatch(
        "embed_q8",
        "main",
        {},
        [T, table.cols, table.offset, table.stride],
        [this.q8Res(w), idsRes, this.tres(o)],
        Math.ceil((T * table.cols) / 256),
      );
      return;
    }
    const f16 = w.dtype === "f16";
    const emit = (t0: number, tn: number, row0: number, rowLast: number) => {
      const wr = this.bindRange(
        w,
        table.offset + row0 * table.stride,
        table.offset + rowLast * table.stride + table.cols,
      );
      this.dispatch(
        "embed",
        "main",
        { W_F16: f16 },
        [t0, tn, table.cols, wr.base, table.stride, row0, 0, 0],
        [wr.res, idsRes, this.tres(o)],
        Math.ceil((tn * table.cols) / 256),
      );
    };
    if (w.buf.size <= this.maxWBind) {
      emit(0, T, 0, 0);
    } else {
      for (let t = 0; t < T; t++) emit(t, 1, ids[t], ids[t]);
    }
  }

  /** Grouped RMSNorm; x, out `[T, G * weight.cols]`; out may alias x. */
  rmsNorm(x: Tensor, weight: MatView, eps: number, out: Tensor): void {
    const a = this.t(x);
    const o = this.t(out);
    weight = this.f32View(weight);
    const w = this.view(weight);
    const gs = weight.cols;
    if (gs === 0 || a.cols % gs !== 0 || o.rows !== a.rows || o.cols !== a.cols) {
      throw new RangeError(
        `webgpu.rmsNorm: x [${a.rows}, ${a.cols}], out [${o.rows}, ${o.cols}], weight ${gs}`,
      );
    }
    const groups = a.rows * (a.cols / gs);
    if (groups === 0) return;
    const wr = this.bindRange(w, weight.offset, weight.offset + gs);
    this.dispatch(
      "rms_norm",
      "main",
      { W_F16: w.dtype === "f16" },
      [groups, gs, wr.base, eps],
      [this.tres(a), wr.res, this.tres(o)],
      groups,
    );
  }

  /** Row-gathered product `out[t, i] = x[t, :] . w[rows[i], :] (+ bias[rows[i]])`. */
  matmul(x: Tensor, w: MatView, rows: IndexList | null, bias: MatView | null, out: Tensor): void {
    const a = this.t(x);
    const o = this.t(out);
    const wb = this.view(w);
    const idx = rows ? this.idx(rows) : null;
    const T = a.rows;
    const K = w.cols;
    const R = idx ? idx.length : w.rows;
    if (a.cols !== K || o.rows !== T || o.cols !== R) {
      throw new RangeError(
        `webgpu.matmul: x [${a.rows}, ${a.cols}], w [${w.rows}, ${K}], ${R} rows, ` +
          `out [${o.rows}, ${o.cols}]`,
      );
    }
    if (idx) this.checkRows(idx, w.rows, "matmul");
    if (bias) bias = this.f32View(bias);
    const bb = bias ? this.view(bias) : null;
    if (bias && bias.cols !== w.rows) {
      throw new RangeError(`webgpu.matmul: bias length ${bias.cols}, want ${w.rows}`);
    }
    if (T === 0 || R === 0) return;
    if (wb.dtype === "q8") {
      const q8 = this.q8View(w, "matmul");
      const xq = this.quantizeX(a, T, K);
      const br = bb && bias ? this.bindRange(bb, bias.offset, bias.offset + w.rows) : null;
      this.dispatch(
        "matmul_rows_q8",
        "main",
        { B_F16: bb?.dtype === "f16" },
        [T, K, R, q8.block0, q8.sb, idx ? 1 : 0, br ? 1 : 0, br?.base ?? 0, xq.qBase, 0, 0, 0],
        [
          this.q8Res(wb),
          xq.res,
          idx ? this.ires(idx) : this.dummyR,
          br?.res ?? this.dummyR,
          this.tres(o),
        ],
        Math.ceil((T * R) / 64),
      );
      return;
    }
    const f16 = wb.dtype === "f16";
    const q = f16 ? 8 : 4;
    this.chunks(w, idx, 0, R, (p0, p1, r0, r1) => {
      const wr = this.bindRange(wb, w.offset + r0 * w.stride, w.offset + r1 * w.stride + K);
      const br = bb && bias ? this.bindRange(bb, bias.offset + r0, bias.offset + r1 + 1) : null;
      const vec = wr.base % q === 0 && w.stride % q === 0 && K % q === 0;
      const count = p1 - p0;
      this.dispatch(
        "matmul_rows",
        "main",
        { W_F16: f16, VEC: vec, B_F16: bb?.dtype === "f16", LANES: this.lanes },
        [T, K, R, p0, count, wr.base, w.stride, r0, idx ? 1 : 0, br ? 1 : 0, br?.base ?? 0, 0],
        [
          wr.res,
          this.tres(a),
          idx ? this.ires(idx) : this.dummyR,
          br?.res ?? this.dummyR,
          this.tres(o),
        ],
        Math.ceil(count / (256 / this.lanes)) * Math.ceil(T / TT),
      );
    });
  }

  /** Row-gathered transposed product, accumulated: `out[t, :] += sum_i a[t, i] w[rows[i], :]`. */
  matmulTAdd(a: Tensor, w: MatView, rows: IndexList | null, out: Tensor): void {
    const at = this.t(a);
    const o = this.t(out);
    const wb = this.view(w);
    const idx = rows ? this.idx(rows) : null;
    const T = at.rows;
    const M = w.cols;
    const R = idx ? idx.length : w.rows;
    if (at.cols !== R || o.rows !== T || o.cols !== M) {
      throw new RangeError(
        `webgpu.matmulTAdd: a [${at.rows}, ${at.cols}], w [${w.rows}, ${M}], ${R} rows, ` +
          `out [${o.rows}, ${o.cols}]`,
      );
    }
    if (idx) this.checkRows(idx, w.rows, "matmulTAdd");
    if (T === 0 || R === 0 || M === 0) return;
    if (wb.dtype === "q8") {
      const q8 = this.q8View(w, "matmulTAdd");
      this.dispatch(
        "matmul_t_add_q8",
        "main",
        {},
        [T, M, R, q8.block0, q8.sb, idx ? 1 : 0, 0, 0],
        [this.q8Res(wb), this.tres(at), idx ? this.ires(idx) : this.dummyR, this.tres(o)],
        Math.ceil((T * M) / 64),
      );
      return;
    }
    const f16 = wb.dtype === "f16";
    const nCt = Math.ceil(M / 256);
    const nTiles = Math.ceil(T / TT);
    this.chunks(w, idx, 0, R, (p0, p1, r0, r1) => {
      const count = p1 - p0;
      const wr = this.bindRange(wb, w.offset + r0 * w.stride, w.offset + r1 * w.stride + M);
      const vec = wr.base % 4 === 0 && w.stride % 4 === 0 && M % 4 === 0;
      let split: number;
      if (this.tSplitRows) {
        split = this.tSplitRows;
      } else {
        const want = Math.max(1, Math.ceil(256 / (nCt * nTiles)));
        split = Math.max(32, Math.ceil(count / want));
      }
      const nSplit = Math.ceil(count / split);
      const partial = nSplit > 1 ? this.scratchRes(nSplit * T * M * 4) : this.dummyW;
      const uni = [T, M, R, p0, count, wr.base, w.stride, r0, idx ? 1 : 0, split, nSplit, 0];
      const res = [
        wr.res,
        this.tres(at),
        idx ? this.ires(idx) : this.dummyR,
        partial,
        this.tres(o),
      ];
      const flags = { W_F16: f16, VEC: vec };
      this.dispatch("matmul_t_add", "main", flags, uni, res, nCt * nSplit * nTiles);
      if (nSplit > 1) {
        this.dispatch("matmul_t_add", "reduce", flags, uni, res, Math.ceil((T * M) / 256));
      }
    });
  }

  /**
   * Fused SwiGLU FFN over kept neurons: `act = silu(x gate[rows]^T) * (x up[rows]^T)` in one
   * dispatch (ffn_gate_up.wgsl: x read once, two dot products per row), then
   * `out += act downT[rows]` (matmul_t_add.wgsl). x `[T, K]`, out `[T, M]`, act `[T, R]`.
   */
  ffn(
    x: Tensor,
    gate: MatView,
    up: MatView,
    downT: MatView,
    rows: IndexList | null,
    out: Tensor,
    act?: Tensor | null,
  ): void {
    const xt = this.t(x);
    const o = this.t(out);
    const gb = this.view(gate);
    const ub = this.view(up);
    this.view(downT);
    const idx = rows ? this.idx(rows) : null;
    const T = xt.rows;
    const K = gate.cols;
    const N = gate.rows;
    const R = idx ? idx.length : N;
    const at = act ? this.t(act) : null;
    if (
      xt.cols !== K || up.cols !== K || up.rows !== N || downT.rows !== N || o.rows !== T ||
      o.cols !== downT.cols || (at && (at.rows !== T || at.cols !== R))
    ) {
      throw new RangeError(
        `webgpu.ffn: x [${T}, ${xt.cols}], gate [${N}, ${K}], up [${up.rows}, ${up.cols}], ` +
          `downT [${downT.rows}, ${downT.cols}], ${R} rows, out [${o.rows}, ${o.cols}]` +
          (at ? `, act [${at.rows}, ${at.cols}]` : ""),
      );
    }
    if (idx) this.checkRows(idx, N, "ffn");
    if (T === 0 || R === 0) return;
    const a = at ?? (this.tensor(T, R) as GpuTensor);
    if (gb.dtype === "q8" || ub.dtype === "q8") {
      if (gb.dtype !== ub.dtype) throw new TypeError("webgpu.ffn: gate and up must share q8");
      const g8 = this.q8View(gate, "ffn gate"), u8 = this.q8View(up, "ffn up");
      const xq = this.quantizeX(xt, T, K);
      this.dispatch(
        "ffn_gate_up_q8",
        "main",
        {},
        [T, K, R, g8.block0, g8.sb, u8.block0, u8.sb, idx ? 1 : 0, xq.qBase, 0, 0, 0],
        [this.q8Res(gb), this.q8Res(ub), xq.res, idx ? this.ires(idx) : this.dummyR, this.tres(a)],
        Math.ceil((T * R) / 64),
      );
      this.matmulTAdd(a, downT, rows, out);
      if (!at) this.free(a);
      return;
    }
    const gf16 = gb.dtype === "f16";
    const uf16 = ub.dtype === "f16";
    const q = gf16 ? 8 : 4;
    this.chunks(gate, idx, 0, R, (p0, p1, r0, r1) => {
      const gr = this.bindRange(
        gb,
        gate.offset + r0 * gate.stride,
        gate.offset + r1 * gate.stride + K,
      );
      const ur = this.bindRange(ub, up.offset + r0 * up.stride, up.offset + r1 * up.stride + K);
      const vec = gf16 === uf16 && K % q === 0 && gr.base % q === 0 && gate.stride % q === 0 &&
        ur.base % q === 0 && up.stride % q === 0;
      const count = p1 - p0;
      this.dispatch(
        "ffn_gate_up",
        "main",
        { W_F16: gf16, U_F16: uf16, VEC: vec, LANES: this.lanes },
        [T, K, R, p0, count, gr.base, gate.stride, r0, idx ? 1 : 0, ur.base, up.stride, 0],
        [gr.res, this.tres(xt), idx ? this.ires(idx) : this.dummyR, ur.res, this.tres(a)],
        Math.ceil(count / (256 / this.lanes)) * Math.ceil(T / TT),
      );
    });
    this.matmulTAdd(a, downT, rows, out);
    if (!at) this.free(a);
  }

  /** `out = silu(gate) * up`, elementwise; out may alias gate. */
  siluMul(gate: Tensor, up: Tensor, out: Tensor): void {
    const g = this.t(gate);
    const u = this.t(up);
    const o = this.t(out);
    this.sameShape("siluMul", g, u);
    this.sameShape("siluMul", g, o);
    const n = g.rows * g.cols;
    if (n === 0) return;
    this.dispatch(
      "silu_mul",
      "main",
      {},
      [n, 0, 0, 0],
      [this.tres(g), this.tres(u), this.tres(o)],
      Math.ceil(n / 256),
    );
  }

  /** Rotary embedding in place (HF rotate_half) on every head of x `[T, nh * d]`. */
  rope(x: Tensor, headDim: number, pos0: number, invFreq: MatView): void {
    const a = this.t(x);
    invFreq = this.f32View(invFreq);
    const f = this.view(invFreq);
    const d = headDim;
    if (d <= 0 || d % 2 !== 0 || a.cols % d !== 0 || invFreq.cols < d / 2 || pos0 < 0) {
      throw new RangeError(
        `webgpu.rope: x [${a.rows}, ${a.cols}], headDim ${d}, invFreq ${invFreq.cols}, ` +
          `pos0 ${pos0}`,
      );
    }
    const nh = a.cols / d;
    const n = a.rows * nh * (d / 2);
    if (n === 0) return;
    const fr = this.bindRange(f, invFreq.offset, invFreq.offset + d / 2);
    const tab = f.host ? this.ropeTable(f, f.host, invFreq.offset, d / 2, pos0, a.rows) : null;
    this.dispatch(
      "rope",
      "main",
      { W_F16: f.dtype === "f16", TABLE: tab !== null },
      [a.rows, nh, d, pos0, fr.base, 0, 0, 0],
      [this.tres(a), fr.res, tab ?? this.dummyR],
      Math.ceil(n / 256),
    );
  }

  /** `x[t, :] += bias` for every row. */
  addRow(x: Tensor, bias: MatView): void {
    const a = this.t(x);
    bias = this.f32View(bias);
    const b = this.view(bias);
    if (bias.cols !== a.cols) {
      throw new RangeError(`webgpu.addRow: bias ${bias.cols} for x [${a.rows}, ${a.cols}]`);
    }
    const n = a.rows * a.cols;
    if (n === 0) return;
    const br = this.bindRange(b, bias.offset, bias.offset + bias.cols);
    this.dispatch(
      "add_row",
      "main",
      { W_F16: b.dtype === "f16" },
      [n, a.cols, br.base, 0],
      [this.tres(a), br.res],
      Math.ceil(n / 256),
    );
  }

  /** `x += y`, elementwise. */
  add(x: Tensor, y: Tensor): void {
    const a = this.t(x);
    const b = this.t(y);
    this.sameShape("add", a, b);
    const n = a.rows * a.cols;
    if (n === 0) return;
    this.dispatch(
      "add",
      "main",
      {},
      [n, 0, 0, 0],
      [this.tres(a), this.tres(b)],
      Math.ceil(n / 256),
    );
  }

  /** Write keys or values of kv heads `heads[j]` into cache rows `heads[j] * maxT + pos0 + t`. */
  kvWrite(cache: Tensor, kv: Tensor, heads: IndexList, maxT: number, pos0: number): void {
    const c = this.t(cache);
    const k = this.t(kv);
    const h = this.idx(heads);
    const d = c.cols;
    const T = k.rows;
    if (
      maxT <= 0 || c.rows % maxT !== 0 || k.cols !== h.length * d || pos0 < 0 ||
      pos0 + T > maxT
    ) {
      throw new RangeError(
        `webgpu.kvWrite: cache [${c.rows}, ${d}], kv [${T}, ${k.cols}], ${h.length} heads, ` +
          `maxT ${maxT}, pos0 ${pos0}`,
      );
    }
    this.checkRows(h, c.rows / maxT, "kvWrite");
    const n = T * k.cols;
    if (n === 0) return;
    this.dispatch(
      "kv_write",
      "main",
      {},
      [T, h.length, d, maxT, pos0, 0, 0, 0],
      [this.tres(c), this.tres(k), this.ires(h)],
      Math.ceil(n / 256),
    );
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
    const qt = this.t(q);
    const kc = this.t(kCache);
    const vc = this.t(vCache);
    const map = this.idx(kvOf);
    const o = this.t(out);
    const d = kc.cols;
    const S = map.length;
    const T = qt.rows;
    if (
      d > 256 || vc.cols !== d || vc.rows !== kc.rows || maxT <= 0 || kc.rows % maxT !== 0 ||
      qt.cols !== S * d || o.rows !== T || o.cols !== S * d || pos0 < 0 || pos0 + T > maxT
    ) {
      throw new RangeError(
        `webgpu.attention: q [${T}, ${qt.cols}], caches [${kc.rows}, ${d}] / ` +
          `[${vc.rows}, ${vc.cols}], ${S} slots, out [${o.rows}, ${o.cols}], maxT ${maxT}, ` +
          `pos0 ${pos0} (head dim <= 256)`,
      );
    }
    this.checkRows(map, kc.rows / maxT, "attention");
    if (T === 0 || S === 0) return;
    // Split the positions into chunks when (slot, token) pairs alone would leave a GPU idle.
    const nMax = pos0 + T;
    let chunk: number;
    if (this.attnChunk) {
      chunk = roundUp(this.attnChunk, 64);
    } else {
      const want = Math.min(Math.ceil(128 / (S * T)), Math.ceil(nMax / 256));
      chunk = roundUp(Math.ceil(nMax / Math.max(1, want)), 64);
    }
    const nChunk = Math.ceil(nMax / chunk);
    const part = nChunk > 1 ? this.scratchRes(S * T * nChunk * (d + 2) * 4) : this.dummyW;
    const uni = [T, S, d, maxT, pos0, scale, chunk, nChunk];
    const res = [
      this.tres(qt),
      this.tres(kc),
      this.tres(vc),
      this.ires(map),
      this.tres(o),
      part,
    ];
    this.dispatch("attention", "main", {}, uni, res, S * T * nChunk);
    if (nChunk > 1) this.dispatch("attention", "combine", {}, uni, res, S * T);
  }

  /** Copy `count` rows of src from `srcRow` into dst from `dstRow`. */
  copyRows(src: Tensor, srcRow: number, count: number, dst: Tensor, dstRow: number): void {
    const s = this.t(src);
    const d = this.t(dst);
    if (
      s.cols !== d.cols || srcRow < 0 || dstRow < 0 || count < 0 ||
      srcRow + count > s.rows || dstRow + count > d.rows
    ) {
      throw new RangeError(
        `webgpu.copyRows: ${count} rows from ${srcRow} of [${s.rows}, ${s.cols}] to ${dstRow} ` +
          `of [${d.rows}, ${d.cols}]`,
      );
    }
    if (s === d && srcRow !== dstRow && Math.abs(srcRow - dstRow) < count) {
      throw new RangeError("webgpu.copyRows: overlapping copy within one tensor");
    }
    const n = count * s.cols;
    if (n === 0 || (s === d && srcRow === dstRow)) return;
    this.dispatch(
      "copy_rows",
      "main",
      {},
      [n, srcRow * s.cols, dstRow * s.cols, 0],
      [this.tres(s), this.tres(d)],
      Math.ceil(n / 256),
    );
  }

  /**
   * (cos, sin) of `(pos0 + t) * invFreq[i]` in float64, `[T, half, 2]`, uploaded once per
   * step (upload arena) and shared by every rope call with the same positions (q and k of all
   * layers).
   */
  private ropeTable(
    w: GpuWeights,
    host: Float32Array,
    offset: number,
    half: number,
    pos0: number,
    T: number,
  ): Res {
    const key = `${w.id}:${offset}:${half}:${pos0}:${T}`;
    const hit = this.ropeTables.get(key);
    if (hit) return hit;
    const res = this.arenaAlloc(T * half * 8);
    const tab = new Float32Array(this.arenaHost, res.offset, T * half * 2);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const ang = (pos0 + t) * host[offset + i];
        tab[(t * half + i) * 2] = Math.cos(ang);
        tab[(t * half + i) * 2 + 1] = Math.sin(ang);
      }
    }
    this.ropeTables.set(key, res);
    return res;
  }

  // -------------------------------------------------------------------------------------------
  // Recording machinery

  private alive(): void {
    if (this.destroyed) throw new WebGpuError("webgpu: backend destroyed");
    if (this.lost) throw new WebGpuError(`webgpu: device lost: ${this.lost}`);
  }

  private checkErrors(): void {
    this.alive();
    if (this.gpuError) {
      const m = this.gpuError;
      this.gpuError = null;
      throw new WebGpuError(`webgpu: ${m}`);
    }
  }

  private readonly bufIds = new WeakMap<GPUBuffer, number>();
  private bufId(b: GPUBuffer): number {
    let id = this.bufIds.get(b);
    if (id === undefined) {
      id = nextBufId++;
      this.bufIds.set(b, id);
    }
    return id;
  }

  private t(x: Tensor): GpuTensor {
    this.alive();
    if (!(x instanceof GpuTensor) || x.owner !== this) {
      throw new TypeError("webgpu: tensor does not belong to this backend");
    }
    if (x.freed) throw new Error("webgpu: tensor used after free");
    return x;
  }

  private view(v: MatView): GpuWeights {
    const b = v.buf;
    if (!(b instanceof GpuWeights) || b.owner !== this) {
      throw new TypeError("webgpu: weight view does not belong to this backend");
    }
    if (b.released) throw new Error("webgpu: weight buffer used after release");
    if (
      v.offset < 0 || v.rows < 0 || v.cols < 0 ||
      (v.rows > 0 && v.offset + (v.rows - 1) * v.stride + v.cols > b.length)
    ) {
      throw new RangeError(
        `webgpu: view (offset ${v.offset}, stride ${v.stride}, [${v.rows}, ${v.cols}]) ` +
          `outside a buffer of ${b.length}`,
      );
    }
    return b;
  }

  /**
   * A q8 view's first block and row stride in blocks; the q8 kernels need views that start on
   * a block (offset, stride and cols multiples of 32).
   */
  private q8View(v: MatView, op: string): { block0: number; sb: number } {
    const stride = v.rows > 1 ? v.stride : v.cols;
    if (v.offset % Q8_BLOCK !== 0 || stride % Q8_BLOCK !== 0 || v.cols % Q8_BLOCK !== 0) {
      throw new RangeError(
        `webgpu.${op}: q8 weights need offset, stride and cols that are multiples of ` +
          `${Q8_BLOCK} (offset ${v.offset}, stride ${v.stride}, cols ${v.cols})`,
      );
    }
    return { block0: v.offset / Q8_BLOCK, sb: stride / Q8_BLOCK };
  }

  /** The whole q8 buffer as one binding (q8 views are not bound in chunks). */
  private q8Res(w: GpuWeights): Res {
    if (w.buf.size > this.maxWBind) {
      throw new RangeError(
        `webgpu: a q8 weight buffer of ${w.buf.size} bytes exceeds the binding limit ` +
          `${this.maxWBind}`,
      );
    }
    return { buf: w.buf, id: w.id, offset: 0, size: w.buf.size };
  }

  /**
   * The f32 twin of a small q8 buffer for the elementwise kernels (norm weights, biases, rope
   * frequencies), holding the same dequantized values; other views pass through unchanged.
   */
  private f32View(v: MatView): MatView {
    const b = this.view(v);
    if (b.dtype !== "q8") return v;
    let twin = this.q8Twins.get(b);
    if (!twin) {
      if (!b.host) {
        throw new RangeError(
          `webgpu: a q8 buffer of ${b.length} values cannot feed an elementwise op (only ` +
            `buffers up to ${HOST_COPY_MAX} values keep the host copy it is rebuilt from)`,
        );
      }
      twin = this.weights(dequantizeQ8(quantizeQ8(b.host), b.length), "f32") as GpuWeights;
      this.q8Twins.set(b, twin);
    }
    return { ...v, buf: twin };
  }

  /**
   * Quantize x [T, K] for a q8 product (quantize_q8.wgsl) into the q8 activation buffer: T *
   * K/32 scales from word 0, the packed values from word `qBase`.
   */
  private quantizeX(x: GpuTensor, T: number, K: number): { res: Res; qBase: number } {
    const nb = K / Q8_BLOCK;
    const qBase = T * nb;
    const bytes = (qBase + (T * K) / 4) * 4;
    if (!this.q8x || this.q8x.size < bytes) {
      if (this.q8x) this.deferred.push(this.q8x.buf);
      const size = roundUp(Math.max(bytes, 1 << 12), 256);
      if (size > this.maxBind) {
        throw new RangeError(`webgpu: ${size} bytes of quantized activations exceed the limit`);
      }
      const buf = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
      this.q8x = { buf, id: nextBufId++, offset: 0, size };
    }
    this.dispatch(
      "quantize_q8",
      "main",
      {},
      [T, K, qBase, 0],
      [this.tres(x), this.q8x],
      Math.ceil((T * nb) / 64),
    );
    return { res: this.q8x, qBase };
  }

  private idx(l: IndexList): GpuIndices {
    if (!(l instanceof GpuIndices) || l.owner !== this) {
      throw new TypeError("webgpu: index list does not belong to this backend");
    }
    if (l.released) throw new Error("webgpu: index list used after release");
    return l;
  }

  private checkRows(l: GpuIndices, n: number, op: string): void {
    if (l.length > 0 && !(l.min >= 0 && l.max < n && Number.isInteger(l.min))) {
      const h = l.host;
      const i = h.findIndex((v) => !(v >= 0 && v < n));
      throw new RangeError(`webgpu.${op}: index ${h[i]} at ${i} outside [0, ${n})`);
    }
  }

  private sameShape(op: string, a: GpuTensor, b: GpuTensor): void {
    if (a.rows !== b.rows || a.cols !== b.cols) {
      throw new RangeError(`webgpu.${op}: [${a.rows}, ${a.cols}] vs [${b.rows}, ${b.cols}]`);
    }
  }

  private tres(t: GpuTensor): Res {
    return { buf: t.buf, id: t.id, offset: 0, size: t.buf.size };
  }

  private ires(l: GpuIndices): Res {
    return { buf: l.buf, id: l.id, offset: 0, size: l.buf.size };
  }

  private scratchRes(bytes: number): Res {
    if (!this.scratch || this.scratch.size < bytes) {
      if (this.scratch) this.deferred.push(this.scratch.buf);
      const size = roundUp(Math.max(bytes, 1 << 16), 256);
      if (size > this.maxBind) {
        throw new RangeError(`webgpu: split-K scratch of ${size} bytes exceeds the binding limit`);
      }
      const buf = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
      this.scratch = { buf, id: nextBufId++, offset: 0, size };
    }
    return this.scratch;
  }

  /**
   * Bind the elements [start, end) of a weight buffer: the whole buffer when it fits the
   * binding limit, else an aligned sub-range. `base` = index of `start` within the binding.
   */
  private bindRange(w: GpuWeights, start: number, end: number): WRange {
    const size = w.buf.size;
    if (size <= this.maxWBind) {
      return { res: { buf: w.buf, id: w.id, offset: 0, size }, base: start };
    }
    const eb = w.dtype === "f16" ? 2 : 4;
    const alignEl = this.align / eb;
    const s0 = Math.floor(start / alignEl) * alignEl;
    const b0 = s0 * eb;
    const b1 = Math.min(size, roundUp(end * eb, 16));
    if (b1 - b0 > this.maxWBind) {
      throw new RangeError(
        `webgpu: a weight range of ${b1 - b0} bytes exceeds the binding limit ${this.maxWBind}`,
      );
    }
    return { res: { buf: w.buf, id: w.id, offset: b0, size: b1 - b0 }, base: start - s0 };
  }

  /**
   * Split positions [p0, p1) of a (gathered) view into chunks whose rows fit one binding;
   * calls `emit(p0, p1, firstRow, lastRow)` per chunk (rows are the min and max row used).
   */
  private chunks(
    v: MatView,
    idx: GpuIndices | null,
    p0: number,
    p1: number,
    emit: (p0: number, p1: number, r0: number, r1: number) => void,
  ): void {
    let r0: number, r1: number;
    if (idx && p0 === 0 && p1 === idx.length) {
      r0 = idx.min;
      r1 = idx.max;
    } else if (idx) {
      r0 = Infinity;
      r1 = -Infinity;
      const h = idx.host;
      for (let i = p0; i < p1; i++) {
        if (h[i] < r0) r0 = h[i];
        if (h[i] > r1) r1 = h[i];
      }
    } else {
      r0 = p0;
      r1 = p1 - 1;
    }
    const w = v.buf as GpuWeights;
    const eb = w.dtype === "f16" ? 2 : 4;
    const need = ((r1 - r0) * v.stride + v.cols) * eb + this.align + 16;
    if (w.buf.size <= this.maxWBind || need <= this.maxWBind || p1 - p0 === 1) {
      emit(p0, p1, r0, r1);
      return;
    }
    const mid = (p0 + p1) >> 1;
    this.chunks(v, idx, p0, mid, emit);
    this.chunks(v, idx, mid, p1, emit);
  }

  private encoder(): GPUCommandEncoder {
    if (!this.enc) this.enc = this.device.createCommandEncoder();
    return this.enc;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /**
   * Submit everything recorded so far (uniforms and upload-arena contents first), without
   * waiting. The arena is only rewound with `resetArena` (reads, or when it is full): a flush
   * forced by a full uniform ring may sit between an op's arena upload and its dispatch, and
   * rewriting unchanged arena bytes at the next flush is harmless.
   */
  private flush(resetArena = false): void {
    this.endPass();
    if (this.uniUsed > 0) {
      this.device.queue.writeBuffer(this.uniBuf, 0, this.uniHost, 0, this.uniUsed * UNI_SLOT);
    }
    if (this.arenaUsed > this.arenaWritten) {
      this.device.queue.writeBuffer(
        this.arena,
        this.arenaWritten,
        this.arenaHost,
        this.arenaWritten,
        this.arenaUsed - this.arenaWritten,
      );
      this.arenaWritten = this.arenaUsed;
    }
    if (this.enc) {
      this.device.queue.submit([this.enc.finish()]);
      this.stats.submissions++;
      this.enc = null;
    }
    this.uniUsed = 0;
    for (const b of this.deferred) b.destroy();
    this.deferred = [];
    if (resetArena) {
      this.arenaUsed = 0;
      this.arenaWritten = 0;
      this.ropeTables.clear();
    }
  }

  /**
   * Room for `bytes` of per-step host data (embed ids, rope tables, tensor writes) in the
   * upload arena: a persistent storage buffer whose host mirror is written just before
   * submission, so bind groups on it are cached like any other. Grows when too small.
   */
  private arenaAlloc(bytes: number): Res {
    const size = Math.max(16, roundUp(bytes, 16));
    let offset = roundUp(this.arenaUsed, this.align);
    if (offset + size > this.arena.size) {
      this.flush(true);
      offset = 0;
      if (size > this.arena.size) {
        if (size > this.maxBind) {
          throw new RangeError(`webgpu: ${bytes} bytes of per-step data exceed the binding limit`);
        }
        this.deferred.push(this.arena);
        this.bindGroups.clear();
        this.arena = this.device.createBuffer({
          size: Math.min(this.maxBind, Math.max(roundUp(size, 256), 2 * this.arena.size)),
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        });
        this.arenaHost = new ArrayBuffer(this.arena.size);
        this.arenaId = nextBufId++;
      }
    }
    this.arenaUsed = offset + size;
    return { buf: this.arena, id: this.arenaId, offset, size };
  }

  private layout(kinds: BindKind[]): GPUBindGroupLayout {
    const key = kinds.join("");
    let l = this.layouts.get(key);
    if (!l) {
      l = this.device.createBindGroupLayout({
        entries: kinds.map((k, i) => ({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: k === "u"
            ? { type: "uniform" as const, hasDynamicOffset: true }
            : { type: k === "s" ? "storage" as const : "read-only-storage" as const },
        })),
      });
      this.layouts.set(key, l);
      this.pipeLayouts.set(key, this.device.createPipelineLayout({ bindGroupLayouts: [l] }));
    }
    return l;
  }

  private pipeline(
    name: KernelName,
    entry: string,
    flags: Flags,
  ): GPUComputePipeline {
    const spec: KernelSpec = KERNELS[name];
    const key = `${name}:${entry}:${flags.W_F16 ? 1 : 0}${flags.B_F16 ? 1 : 0}` +
      `${flags.U_F16 ? 1 : 0}` +
      `${flags.VEC ? 1 : 0}${flags.TABLE ? 1 : 0}:${flags.LANES ?? ""}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const constants: Record<string, number> = {};
      for (const o of spec.overrides) {
        if (flags[o] !== undefined) constants[o] = Number(flags[o]);
      }
      let module = this.modules.get(spec.file);
      if (!module) {
        module = this.device.createShaderModule({
          label: spec.file,
          code: this.sources.get(spec.file)!,
        });
        this.modules.set(spec.file, module);
      }
      this.layout(spec.bindings);
      p = this.device.createComputePipeline({
        label: key,
        layout: this.pipeLayouts.get(spec.bindings.join(""))!,
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Record one dispatch of `nwg` workgroups (folded into x/y for the 65535 limit; kernels use
   * the linear id and skip the excess). `uni` are the uniform fields in order; `res` the
   * storage bindings 1..n. Bind groups are cached by their buffer ranges.
   */
  private dispatch(
    name: KernelName,
    entry: string,
    flags: Flags,
    uni: number[],
    res: Res[],
    nwg: number,
  ): void {
    const spec: KernelSpec = KERNELS[name];
    const pipe = this.pipeline(name, entry, flags);
    if (this.uniUsed === UNI_SLOTS) this.flush();
    const slot = this.uniUsed++;
    const base = slot * UNI_SLOT;
    const floats = spec.floats ?? [];
    for (let i = 0; i < uni.length; i++) {
      if (floats.includes(i)) this.uniView.setFloat32(base + 4 * i, uni[i], true);
      else this.uniView.setUint32(base + 4 * i, uni[i], true);
    }
    const key = name + "|" + res.map((r) => `${r.id}:${r.offset}:${r.size}`).join("|");
    let bg = this.bindGroups.get(key);
    if (!bg) {
      bg = this.device.createBindGroup({
        layout: this.layout(spec.bindings),
        entries: [
          { binding: 0, resource: { buffer: this.uniBuf, offset: 0, size: UNI_SLOT } },
          ...res.map((r, i) => ({
            binding: i + 1,
            resource: { buffer: r.buf, offset: r.offset, size: r.size },
          })),
        ],
      });
      if (this.bindGroups.size > 8192) this.bindGroups.clear();
      this.bindGroups.set(key, bg);
    }
    if (!this.pass) {
      this.pass = this.encoder().beginComputePass();
      this.passPipe = null;
      this.stats.passes++;
    }
    if (this.passPipe !== pipe) {
      this.pass.setPipeline(pipe);
      this.passPipe = pipe;
    }
    this.pass.setBindGroup(0, bg, [base]);
    const x = Math.min(nwg, MAX_WG_X);
    this.pass.dispatchWorkgroups(x, Math.ceil(nwg / x));
    this.stats.dispatches++;
  }
}
