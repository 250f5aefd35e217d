/**
 * WebGPU buffers: the backend's handles (tensors, weight buffers, index lists), the pools that
 * recycle tensor and staging buffers, uploads and readbacks, and the binding helpers the ops
 * use to bind (a range of) a buffer within the device's storage-binding limit.
 *
 * - Weights: one GPUBuffer per {@link GpuWeights}, f32, f16 (two halves packed per u32) or q8
 *   (lib/formats/q8.ts blocks), uploaded whole here or piece by piece (webgpu_upload.ts).
 *   Only buffers up to {@link HOST_COPY_MAX} values keep a host copy (rope tables and f32
 *   twins of q8 vectors are computed from it); nothing larger stays on the host.
 * - Tensors: f32 storage buffers `[rows, cols]` row-major, pooled by size on free; a pooled
 *   buffer is cleared by a zero.wgsl dispatch recorded in stream order.
 * - Index lists: uploaded once as i32 storage buffers, host copy kept.
 */

import type { IndexList, MatView, Tensor, WeightBuffer, WeightDType } from "./backend.ts";
import { dequantizeQ8, quantizeQ8 } from "../formats/q8.ts";
import { GpuRecorder, newBufferId, type Res, roundUp } from "./webgpu_recorder.ts";
import { WebGpuError } from "./webgpu_device.ts";

/** Weight buffers up to this many elements keep a host copy. */
export const HOST_COPY_MAX = 1 << 16;

/** An activation tensor `[rows, cols]` in a (pooled) storage buffer. */
export class GpuTensor implements Tensor {
  /** Set by free: the buffer went back to the pool. */
  freed = false;
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly buf: GPUBuffer,
    readonly id: number,
    readonly owner: GpuMemory,
  ) {}
}

/** A weight buffer of `length` elements stored as `dtype`. */
export class GpuWeights implements WeightBuffer {
  /** Set by release. */
  released = false;
  constructor(
    readonly length: number,
    readonly dtype: WeightDType,
    /** Host copy of small buffers (rope tables and q8 twins are computed from it). */
    readonly host: Float32Array | null,
    readonly buf: GPUBuffer,
    readonly id: number,
    readonly owner: GpuMemory,
  ) {}
}

/** An uploaded index list with its host copy and value range. */
export class GpuIndices implements IndexList {
  /** Set by release. */
  released = false;
  /** Smallest and largest index (computed once at upload; Infinity / -Infinity when empty). */
  readonly min: number;
  readonly max: number;
  constructor(
    readonly length: number,
    readonly host: Int32Array,
    readonly buf: GPUBuffer,
    readonly id: number,
    readonly owner: GpuMemory,
  ) {
    let lo = Infinity, hi = -Infinity;
    for (const v of host) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo;
    this.max = hi;
  }
}

/** A bound weight range: `base` is the element index of the first wanted element in it. */
export interface WRange {
  res: Res;
  base: number;
}

/** Options of {@link GpuMemory}. */
export interface GpuMemoryOptions {
  /** Default storage precision of weights. */
  weightDType: WeightDType;
  /** Whether packed-f16 kernels compile (else f16 buffers are stored as f32). */
  f16Ok: boolean;
  /** Cap on bytes bound per weight binding (default: the device limit). */
  maxBindingBytes?: number;
}

/** Buffers, pools and binding helpers of one WebGPU backend; see the module comment. */
export class GpuMemory {
  /** Bytes bound per weight binding (the device limit, or less for tests). */
  readonly maxWBind: number;
  /** 16-byte placeholders for absent optional bindings (read-only / read-write). */
  readonly dummyR: Res;
  readonly dummyW: Res;

  #tensorPool = new Map<number, GPUBuffer[]>();
  #stagingPool = new Map<number, GPUBuffer[]>();
  #bufIds = new WeakMap<GPUBuffer, number>();
  /** f32 twins of small q8 buffers used by elementwise ops (see f32View). */
  #q8Twins = new WeakMap<GpuWeights, GpuWeights>();
  #weightBytes = 0;

  constructor(readonly rec: GpuRecorder, private readonly opts: GpuMemoryOptions) {
    this.maxWBind = Math.min(rec.maxBind, opts.maxBindingBytes ?? Infinity);
    const mk = (): Res => {
      const buf = rec.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
      return { buf, id: newBufferId(), offset: 0, size: 16 };
    };
    this.dummyR = mk();
    this.dummyW = mk();
  }

  /** Upload a weight buffer as `dtype` (f16 falls back to f32 where it does not compile). */
  weights(data: Float32Array, dtype: WeightDType): GpuWeights {
    this.rec.alive();
    const dt = this.storedDType(dtype);
    const bytes = dt === "f16"
      ? new Uint8Array(new Float16Array(data).buffer)
      : dt === "q8"
      ? quantizeQ8(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const size = Math.max(16, roundUp(bytes.byteLength, 16));
    this.checkWeightSize(size);
    const buf = this.rec.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    const host = data.length <= HOST_COPY_MAX ? data.slice() : null;
    return this.track(new GpuWeights(data.length, dt, host, buf, newBufferId(), this));
  }

  /** The precision a buffer asked for as `dtype` is stored in (f16 needs packed-f16 kernels). */
  storedDType(dtype: WeightDType): WeightDType {
    return dtype === "f16" && !this.opts.f16Ok ? "f32" : dtype;
  }

  /** Throws when a weight buffer of `size` bytes exceeds the device's maxBufferSize. */
  checkWeightSize(size: number): void {
    const max = this.rec.device.limits.maxBufferSize;
    if (size > max) {
      throw new RangeError(
        `webgpu: a weight buffer of ${size} bytes exceeds this device's maxBufferSize ` +
          `${max}; split it or use f16 weights`,
      );
    }
  }

  /** Bytes of the live weight buffers (their GPU allocations, padding included). */
  get weightBytes(): number {
    return this.#weightBytes;
  }

  /** Count a new weight buffer's bytes in {@link weightBytes}. */
  track(w: GpuWeights): GpuWeights {
    this.#weightBytes += w.buf.size;
    return w;
  }

  /** Upload an index list; the host copy is kept. */
  indices(idx: Int32Array): GpuIndices {
    this.rec.alive();
    const host = idx.slice();
    const buf = this.rec.device.createBuffer({
      size: Math.max(16, roundUp(host.byteLength, 16)),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Int32Array(buf.getMappedRange(), 0, host.length).set(host);
    buf.unmap();
    return new GpuIndices(host.length, host, buf, newBufferId(), this);
  }

  /** A zero-filled tensor: a new buffer (zeroed by WebGPU) or a pooled one cleared in order. */
  tensor(rows: number, cols: number): GpuTensor {
    this.rec.alive();
    const size = Math.max(16, roundUp(rows * cols * 4, 16));
    if (size > this.rec.maxBind) {
      throw new RangeError(
        `webgpu: tensor [${rows}, ${cols}] (${size} bytes) exceeds the storage binding limit ` +
          `${this.rec.maxBind}`,
      );
    }
    const pooled = this.#tensorPool.get(size)?.pop();
    if (pooled) {
      const t = new GpuTensor(rows, cols, pooled, this.#bufId(pooled), this);
      const n = size / 4;
      this.rec.dispatch("zero", "main", {}, { n }, [this.tres(t)], Math.ceil(n / 256));
      return t;
    }
    const buf = this.rec.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return new GpuTensor(rows, cols, buf, this.#bufId(buf), this);
  }

  /** Overwrite a tensor, in stream order with the ops recorded so far. */
  write(g: GpuTensor, data: Float32Array): void {
    if (data.length === 0) return;
    if (!this.rec.pending) {
      const src = data.buffer as ArrayBuffer;
      this.rec.device.queue.writeBuffer(g.buf, 0, src, data.byteOffset, data.byteLength);
      return;
    }
    const up = this.rec.arenaAlloc(data.byteLength);
    new Float32Array(this.rec.arenaHost, up.offset, data.length).set(data);
    this.rec.endPass();
    this.rec.encoder().copyBufferToBuffer(up.buf, up.offset, g.buf, 0, data.byteLength);
  }

  /** Submit everything recorded and copy the tensor back. */
  async read(g: GpuTensor): Promise<Float32Array> {
    const n = g.rows * g.cols;
    const bytes = Math.max(16, roundUp(n * 4, 16));
    const device = this.rec.device;
    const staging = this.#stagingPool.get(bytes)?.pop() ?? device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.rec.endPass();
    this.rec.encoder().copyBufferToBuffer(g.buf, 0, staging, 0, bytes);
    device.pushErrorScope("validation");
    this.rec.flush(true);
    const err = await device.popErrorScope();
    if (err) throw new WebGpuError(`webgpu: ${err.message}`);
    await staging.mapAsync(GPUMapMode.READ);
    this.rec.stats.readbacks++;
    const out = new Float32Array(n);
    out.set(new Float32Array(staging.getMappedRange(0, bytes), 0, n));
    staging.unmap();
    pushTo(this.#stagingPool, bytes, staging);
    this.rec.checkErrors();
    return out;
  }

  /** Return a tensor's buffer to the pool; ops recorded before still see its contents. */
  free(g: GpuTensor): void {
    g.freed = true;
    pushTo(this.#tensorPool, g.buf.size, g.buf);
  }

  /** Release a weight buffer or index list (destroyed after pending work is submitted). */
  release(b: WeightBuffer | IndexList): void {
    if (!(b instanceof GpuWeights || b instanceof GpuIndices) || b.owner !== this) {
      throw new TypeError("webgpu.release: not a buffer of this backend");
    }
    if (b.released) return;
    b.released = true;
    if (b instanceof GpuWeights) this.#weightBytes -= b.buf.size;
    this.rec.dropBindGroups();
    this.rec.defer(b.buf);
  }

  /** A live tensor of this backend. */
  t(x: Tensor): GpuTensor {
    this.rec.alive();
    if (!(x instanceof GpuTensor) || x.owner !== this) {
      throw new TypeError("webgpu: tensor does not belong to this backend");
    }
    if (x.freed) throw new Error("webgpu: tensor used after free");
    return x;
  }

  /** The live weight buffer of a view of this backend. */
  view(v: MatView): GpuWeights {
    const b = v.buf;
    if (!(b instanceof GpuWeights) || b.owner !== this) {
      throw new TypeError("webgpu: weight view does not belong to this backend");
    }
    if (b.released) throw new Error("webgpu: weight buffer used after release");
    return b;
  }

  /** A live index list of this backend. */
  idx(l: IndexList): GpuIndices {
    if (!(l instanceof GpuIndices) || l.owner !== this) {
      throw new TypeError("webgpu: index list does not belong to this backend");
    }
    if (l.released) throw new Error("webgpu: index list used after release");
    return l;
  }

  /** A whole tensor as a binding. */
  tres(t: GpuTensor): Res {
    return { buf: t.buf, id: t.id, offset: 0, size: t.buf.size };
  }

  /** A whole index list as a binding. */
  ires(l: GpuIndices): Res {
    return { buf: l.buf, id: l.id, offset: 0, size: l.buf.size };
  }

  /** The whole q8 buffer as one binding (q8 views are not bound in chunks). */
  q8Res(w: GpuWeights): Res {
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
  f32View(v: MatView): MatView {
    const b = this.view(v);
    if (b.dtype !== "q8") return v;
    let twin = this.#q8Twins.get(b);
    if (!twin) {
      if (!b.host) {
        throw new RangeError(
          `webgpu: a q8 buffer of ${b.length} values cannot feed an elementwise op (only ` +
            `buffers up to ${HOST_COPY_MAX} values keep the host copy it is rebuilt from)`,
        );
      }
      twin = this.weights(dequantizeQ8(quantizeQ8(b.host), b.length), "f32");
      this.#q8Twins.set(b, twin);
    }
    return { ...v, buf: twin };
  }

  /**
   * Bind the elements [start, end) of a weight buffer: the whole buffer when it fits the
   * binding limit, else an aligned sub-range. `base` = index of `start` within the binding.
   */
  bindRange(w: GpuWeights, start: number, end: number): WRange {
    const size = w.buf.size;
    if (size <= this.maxWBind) {
      return { res: { buf: w.buf, id: w.id, offset: 0, size }, base: start };
    }
    const eb = w.dtype === "f16" ? 2 : 4;
    const alignEl = this.rec.align / eb;
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
  chunks(
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
    const need = ((r1 - r0) * v.stride + v.cols) * eb + this.rec.align + 16;
    if (w.buf.size <= this.maxWBind || need <= this.maxWBind || p1 - p0 === 1) {
      emit(p0, p1, r0, r1);
      return;
    }
    const mid = (p0 + p1) >> 1;
    this.chunks(v, idx, p0, mid, emit);
    this.chunks(v, idx, mid, p1, emit);
  }

  #bufId(b: GPUBuffer): number {
    let id = this.#bufIds.get(b);
    if (id === undefined) {
      id = newBufferId();
      this.#bufIds.set(b, id);
    }
    return id;
  }
}

function pushTo(pool: Map<number, GPUBuffer[]>, size: number, buf: GPUBuffer): void {
  const list = pool.get(size) ?? [];
  list.push(buf);
  pool.set(size, list);
}
