/**
 * The WASM SIMD backend: every op of {@link Backend} runs eagerly in `kernels/wasm/seap_kernels.wasm`
 * (C compiled with clang, f32x4 SIMD) on tensors and weights that live in one
 * `WebAssembly.Memory` owned by the backend. Single-threaded. Weights are stored as f32, f16 or q8
 * (`weightDType`, chosen at creation); f16 halves the bytes read per decoded token and is
 * converted to f32 inside the kernels; q8 (lib/formats/q8.ts) reads 1.125 bytes per weight with
 * integer dot products (kernels/wasm/matmul_q8.c). Matmuls read only the rows of the index list.
 */

import {
  type Backend,
  BackendMemoryError,
  type IndexList,
  type MatView,
  type Tensor,
  type WeightBuffer,
  type WeightDType,
} from "./backend.ts";
import {
  Q8_BLOCK,
  Q8_BLOCK_BYTES,
  q8Bytes,
  quantizeQ8Into,
  quantizeQ8RowsInto,
} from "../formats/q8.ts";
import * as check from "./arg_checks.ts";
import { fillRopeTable } from "./rope_table.ts";

/** The fused SwiGLU FFN export; `ffn_f32` and `ffn_f16` differ only in the weights' type. */
type FfnKernel = (
  x: number,
  T: number,
  K: number,
  gate: number,
  gs: number,
  up: number,
  us: number,
  down: number,
  ds: number,
  M: number,
  rows: number,
  R: number,
  out: number,
  act: number,
  tb: number,
  scratch: number,
) => void;

/** The C kernels' exports (pointers are byte offsets into the memory). */
interface Kernels {
  matmul_f32(
    x: number,
    T: number,
    K: number,
    w: number,
    wstride: number,
    rows: number,
    R: number,
    out: number,
    tb: number,
  ): void;
  matmul_f16(
    x: number,
    T: number,
    K: number,
    w: number,
    wstride: number,
    rows: number,
    R: number,
    out: number,
    tb: number,
    scratch: number,
  ): void;
  add_bias_gather(out: number, T: number, R: number, rows: number, bias: number, f16: number): void;
  matmul_t_add_f32(
    a: number,
    T: number,
    R: number,
    w: number,
    wstride: number,
    rows: number,
    M: number,
    out: number,
    tb: number,
  ): void;
  matmul_t_add_f16(
    a: number,
    T: number,
    R: number,
    w: number,
    wstride: number,
    rows: number,
    M: number,
    out: number,
    tb: number,
    scratch: number,
  ): void;
  attention(
    q: number,
    T: number,
    S: number,
    d: number,
    kc: number,
    vc: number,
    kvOf: number,
    maxT: number,
    pos0: number,
    scale: number,
    out: number,
    scratch: number,
  ): void;
  rmsnorm(
    x: number,
    groups: number,
    c: number,
    w: number,
    wF16: number,
    eps: number,
    out: number,
  ): void;
  rope(x: number, T: number, nh: number, d: number, cs: number): void;
  silu_mul(g: number, u: number, n: number, out: number): void;
  add(x: number, y: number, n: number): void;
  add_row(x: number, T: number, c: number, b: number, bF16: number): void;
  embed(
    table: number,
    stride: number,
    f16: number,
    ids: number,
    T: number,
    c: number,
    out: number,
  ): void;
  ffn_f32: FfnKernel;
  ffn_f16: FfnKernel;
  /** q8 kernels: weights are block pointers, strides in blocks (kernels/wasm/matmul_q8.c). */
  matmul_q8(
    x: number,
    T: number,
    K: number,
    w: number,
    wsb: number,
    rows: number,
    R: number,
    out: number,
    tb: number,
    scratch: number,
  ): void;
  matmul_t_add_q8(
    a: number,
    T: number,
    R: number,
    w: number,
    wsb: number,
    rows: number,
    M: number,
    out: number,
    scratch: number,
  ): void;
  ffn_q8: FfnKernel;
  q8_to_f32(base: number, e0: number, n: number, dst: number): void;
  __heap_base: WebAssembly.Global;
}

const PAGE = 65536;
/** WebAssembly's 32-bit address space. */
const MAX_BYTES = 4 * 1024 * 1024 * 1024;
const ALIGN = 64;
/** Tokens per block in the T > 1 matmuls (a row group is read from memory once per block). */
const TOKEN_BLOCK = 32;
/** Neurons per chunk in the T > 1 fused FFN (FFN_CHUNK in kernels/wasm/matmul.c). */
const FFN_CHUNK = 32;
/** Rows per tile of the q8 T > 1 paths (TILE_ROWS in kernels/wasm/matmul_q8.c). */
const Q8_TILE_ROWS = 32;

/** A tensor `[rows, cols]` of f32 at byte offset `ptr` in the backend's memory. */
class WasmTensor implements Tensor {
  freed = false;
  constructor(
    readonly owner: WasmBackend,
    readonly rows: number,
    readonly cols: number,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
}

/** A weight buffer of `length` elements, stored as `dtype`, at byte offset `ptr`. */
class WasmWeights implements WeightBuffer {
  released = false;
  constructor(
    readonly owner: WasmBackend,
    readonly length: number,
    readonly dtype: WeightDType,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
  /** Bytes per element (f32 / f16 storage; q8 is addressed by blocks). */
  get esize(): number {
    return this.dtype === "f16" ? 2 : 4;
  }
}

/** An index list (i32) at byte offset `ptr` (its range is checked by ./arg_checks.ts). */
class WasmIndices implements IndexList {
  released = false;
  readonly length: number;
  constructor(
    readonly owner: WasmBackend,
    readonly host: Int32Array,
    readonly ptr: number,
    readonly bytes: number,
  ) {
    this.length = host.length;
  }
}

/** Where the compiled kernels live (next to their C sources). */
const WASM_URL = new URL("../../kernels/wasm/seap_kernels.wasm", import.meta.url);

let modulePromise: Promise<WebAssembly.Module> | null = null;

/** WASM SIMD implementation of {@link Backend}; create it with {@link WasmBackend.create}. */
export class WasmBackend implements Backend {
  readonly name = "wasm";
  readonly weightDType: WeightDType;

  #mem: WebAssembly.Memory;
  #k: Kernels;
  #top: number;
  /** Free blocks below #top, sorted by address, never adjacent (coalesced on free). */
  #free: { ptr: number; size: number }[] = [];
  /** Most bytes of linear memory this backend may use. */
  #limit: number;
  /** Highest top ever reached: memory above it has never been written (still zero). */
  #highWater = 0;
  #buf: ArrayBufferLike | null = null;
  #f32: Float32Array = new Float32Array(0);
  #i32: Int32Array = new Int32Array(0);
  #scratchPtr = 0;
  #scratchBytes = 0;
  #ropeKey = "";
  #ropePtr = 0;
  #ropeBytes = 0;
  #vecPtr = 0;
  #vecBytes = 0;

  private constructor(
    mem: WebAssembly.Memory,
    k: Kernels,
    weightDType: WeightDType,
    limit: number,
  ) {
    this.#mem = mem;
    this.#limit = limit;
    this.#k = k;
    this.weightDType = weightDType;
    this.#top = Math.ceil((k.__heap_base.value as number) / ALIGN) * ALIGN;
  }

  /**
   * Load and instantiate the kernels; `weightDType` defaults to "f32". `maxBytes` caps the
   * linear memory below WebAssembly's 4 GiB (tests force out-of-memory with it).
   */
  static async create(
    opts: { weightDType?: WeightDType; maxBytes?: number } = {},
  ): Promise<WasmBackend> {
    const dtype = opts.weightDType ?? "f32";
    if (dtype !== "f32" && dtype !== "f16" && dtype !== "q8") {
      throw new Error(`wasm backend: bad weightDType ${dtype}`);
    }
    modulePromise ??= Deno.readFile(WASM_URL).then((b) => WebAssembly.compile(b));
    const module = await modulePromise;
    const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536 });
    const inst = await WebAssembly.instantiate(module, { env: { memory } });
    const limit = Math.min(opts.maxBytes ?? MAX_BYTES, MAX_BYTES);
    return new WasmBackend(memory, inst.exports as unknown as Kernels, dtype, limit);
  }

  /** Bytes of memory the backend currently holds (weights, tensors, pools). */
  get memoryBytes(): number {
    return this.#mem.buffer.byteLength;
  }

  // ---------- memory ----------

  #views(): void {
    const buf = this.#mem.buffer;
    if (this.#buf !== buf) {
      this.#buf = buf;
      this.#f32 = new Float32Array(buf);
      this.#i32 = new Int32Array(buf);
    }
  }
  get #F(): Float32Array {
    this.#views();
    return this.#f32;
  }

  /** The most bytes of linear memory this backend may use (`maxBytes`, at most 4 GiB). */
  get memoryLimitBytes(): number {
    return this.#limit;
  }

  /** Bytes held by live weights, tensors and pools (the heap top less its free blocks). */
  get usedBytes(): number {
    return this.#top - this.freeBytes;
  }

  /** Bytes currently free for reuse below the top of the heap (for tests and metrics). */
  get freeBytes(): number {
    return this.#free.reduce((a, b) => a + b.size, 0);
  }

  /**
   * Allocate `bytes` (64-byte aligned, zero-filled). Free blocks of any size are reused
   * (best fit, the rest split off) and freed neighbours merge, so blocks freed by a failed
   * large request serve smaller ones. Activations (`pow2`) are rounded up to
   * powers of two so that prompts of any length reuse a few block sizes. Throws
   * {@link BackendMemoryError} (and allocates nothing) past the memory limit.
   */
  #alloc(bytes: number, pow2 = false): { ptr: number; size: number } {
    let size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    if (pow2) size = 2 ** Math.ceil(Math.log2(size));
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const b = this.#free[i];
      if (b.size >= size && (best < 0 || b.size < this.#free[best].size)) best = i;
    }
    if (best >= 0) {
      const b = this.#free[best];
      const ptr = b.ptr;
      if (b.size === size) this.#free.splice(best, 1);
      else this.#free[best] = { ptr: b.ptr + size, size: b.size - size };
      new Uint8Array(this.#mem.buffer, ptr, size).fill(0);
      return { ptr, size };
    }
    // No block fits: bump the top (a free block never touches it: #dealloc lowers the top).
    const ptr = this.#top;
    const end = ptr + size;
    if (end > this.#limit) {
      throw new BackendMemoryError(
        `wasm backend: out of memory: ${fmtBytes(size)} more does not fit the ${
          fmtBytes(this.#limit)
        } limit (${fmtBytes(this.#top - this.freeBytes)} in use)`,
      );
    }
    const have = this.#mem.buffer.byteLength;
    if (end > have) {
      // Grow by at least 1/8 of the current size to keep the number of grows small.
      const need = Math.ceil((end - have) / PAGE);
      const room = Math.floor(this.#limit / PAGE) - have / PAGE;
      const pages = Math.min(Math.max(need, Math.ceil(have / 8 / PAGE)), room);
      try {
        this.#mem.grow(Math.max(need, pages));
      } catch (e) {
        throw new BackendMemoryError(
          `wasm backend: out of memory: the host refused to grow memory to ${fmtBytes(end)} (${
            (e as Error).message
          })`,
        );
      }
    }
    // Memory below the high-water mark held blocks since freed off the top: zero it.
    if (this.#highWater > ptr) {
      new Uint8Array(this.#mem.buffer, ptr, Math.min(end, this.#highWater) - ptr).fill(0);
    }
    this.#top = end;
    if (end > this.#highWater) this.#highWater = end;
    return { ptr, size };
  }

  /** Return a block: merged with free neighbours; a block reaching the top lowers the top. */
  #dealloc(ptr: number, size: number): void {
    const f = this.#free;
    let lo = 0, hi = f.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    let block = { ptr, size };
    if (lo < f.length && f[lo].ptr === ptr + size) {
      block.size += f[lo].size;
      f.splice(lo, 1);
    }
    if (lo > 0 && f[lo - 1].ptr + f[lo - 1].size === ptr) {
      block = { ptr: f[lo - 1].ptr, size: f[lo - 1].size + block.size };
      f.splice(lo - 1, 1);
      lo--;
    }
    if (block.ptr + block.size === this.#top) this.#top = block.ptr;
    else f.splice(lo, 0, block);
  }

  /** A reusable scratch block of at least `bytes` (valid until the next op). */
  #scratch(bytes: number): number {
    if (bytes > this.#scratchBytes) {
      if (this.#scratchBytes > 0) this.#dealloc(this.#scratchPtr, this.#scratchBytes);
      const a = this.#alloc(bytes, true);
      this.#scratchPtr = a.ptr;
      this.#scratchBytes = a.size;
    }
    return this.#scratchPtr;
  }

  #t(x: Tensor, what: string): WasmTensor {
    if (!(x instanceof WasmTensor) || x.owner !== this) {
      throw new TypeError(`wasm backend: ${what} is not a tensor of this backend`);
    }
    if (x.freed) throw new Error(`wasm backend: ${what} used after free`);
    return x;
  }

  #w(v: MatView, what: string, needRows: number): WasmWeights {
    const b = v.buf;
    if (!(b instanceof WasmWeights) || b.owner !== this) {
      throw new TypeError(`wasm backend: ${what} is not a weight buffer of this backend`);
    }
    if (b.released) throw new Error(`wasm backend: ${what} used after release`);
    const [op, name] = what.split(" ");
    check.checkView(op, name ?? "view", v, needRows);
    return b;
  }

  #idx(l: IndexList | null, n: number, what: string): number {
    if (l === null) return 0;
    if (!(l instanceof WasmIndices) || l.owner !== this) {
      throw new TypeError(`wasm backend: ${what} is not an index list of this backend`);
    }
    if (l.released) throw new Error(`wasm backend: ${what} used after release`);
    const [op, name] = what.split(" ");
    check.checkIndices(op, name, l, n);
    return l.ptr;
  }

  /** Byte address of element (row 0, col 0) of a view (f32 / f16 storage). */
  #addr(v: MatView): number {
    const b = v.buf as WasmWeights;
    return b.ptr + v.offset * b.esize;
  }

  /**
   * Block address of row 0 of a q8 view and its row stride in blocks; the q8 kernels need the
   * view to start on a block (offset, stride and cols multiples of 32).
   */
  #q8(v: MatView, what: string): { ptr: number; sb: number } {
    const b = v.buf as WasmWeights;
    const [op, name] = what.split(" ");
    const { block0, sb } = check.checkQ8View(op, name, v);
    return { ptr: b.ptr + block0 * Q8_BLOCK_BYTES, sb };
  }

  /**
   * Address of `n` f32 values of row 0 of a vector view, for elementwise kernels: the view itself
   * (f32 / f16, with its f16 flag), or for q8 storage a dequantized copy in a scratch block
   * (valid until the next op).
   */
  #vec(v: MatView, n: number): { ptr: number; f16: number } {
    const b = v.buf as WasmWeights;
    if (b.dtype !== "q8") return { ptr: this.#addr(v), f16: b.dtype === "f16" ? 1 : 0 };
    if (n * 4 > this.#vecBytes) {
      if (this.#vecBytes > 0) this.#dealloc(this.#vecPtr, this.#vecBytes);
      const a = this.#alloc(n * 4, true);
      this.#vecPtr = a.ptr;
      this.#vecBytes = a.size;
    }
    this.#k.q8_to_f32(b.ptr, v.offset, n, this.#vecPtr);
    return { ptr: this.#vecPtr, f16: 0 };
  }

  // ---------- storage ----------

  weights(data: Float32Array, dtype?: WeightDType): WeightBuffer {
    const dt = dtype ?? this.weightDType;
    const bytes = dt === "q8" ? q8Bytes(data.length) : data.length * (dt === "f16" ? 2 : 4);
    const { ptr, size } = this.#alloc(bytes);
    if (dt === "f16") new Float16Array(this.#mem.buffer, ptr, data.length).set(data);
    else if (dt === "q8") quantizeQ8Into(data, new Uint8Array(this.#mem.buffer, ptr, bytes));
    else this.#F.set(data, ptr / 4);
    return new WasmWeights(this, data.length, dt, ptr, size);
  }

  allocWeights(length: number, dtype?: WeightDType): WeightBuffer {
    const dt = dtype ?? this.weightDType;
    const bytes = dt === "q8" ? q8Bytes(length) : length * (dt === "f16" ? 2 : 4);
    const { ptr, size } = this.#alloc(bytes);
    return new WasmWeights(this, length, dt, ptr, size);
  }

  writeWeights(
    buf: WeightBuffer,
    offset: number,
    data: Float32Array,
    rowLen = data.length,
    stride = rowLen,
  ): void {
    if (!(buf instanceof WasmWeights) || buf.owner !== this || buf.released) {
      throw new Error("writeWeights: not a live weight buffer of this backend");
    }
    const rows = rowLen > 0 ? data.length / rowLen : 0;
    if (!(Number.isInteger(rows) && Number.isInteger(stride) && (rows <= 1 || stride >= rowLen))) {
      throw new RangeError(
        `writeWeights: ${data.length} values are not rows of ${rowLen} every ${stride}`,
      );
    }
    const end = offset + (rows > 0 ? (rows - 1) * stride + rowLen : 0);
    if (!(Number.isInteger(offset) && offset >= 0 && end <= buf.length)) {
      throw new RangeError(`writeWeights: values [${offset}, ${end}) outside [0, ${buf.length})`);
    }
    if (buf.dtype === "q8") {
      const whole = (n: number) => n % Q8_BLOCK === 0;
      if (
        !whole(offset) ||
        (rows > 1 ? !whole(stride) || !whole(rowLen) : !whole(rowLen) && end !== buf.length)
      ) {
        throw new RangeError(`writeWeights: q8 piece [${offset}, ${end}) is not block-aligned`);
      }
      const at = buf.ptr + (offset / Q8_BLOCK) * Q8_BLOCK_BYTES;
      const sb = (stride / Q8_BLOCK) * Q8_BLOCK_BYTES;
      const span = rows > 0 ? (rows - 1) * sb + q8Bytes(rowLen) : 0;
      quantizeQ8RowsInto(data, rowLen, new Uint8Array(this.#mem.buffer, at, span), 0, sb);
      return;
    }
    for (let i = 0; i < rows; i++) {
      const row = rows === 1 ? data : data.subarray(i * rowLen, (i + 1) * rowLen);
      const o = offset + i * stride;
      if (buf.dtype === "f16") new Float16Array(this.#mem.buffer, buf.ptr + o * 2, rowLen).set(row);
      else this.#F.set(row, buf.ptr / 4 + o);
    }
  }

  indices(idx: Int32Array): IndexList {
    const { ptr, size } = this.#alloc(idx.length * 4);
    this.#views();
    this.#i32.set(idx, ptr / 4);
    return new WasmIndices(this, idx.slice(), ptr, size);
  }

  tensor(rows: number, cols: number): Tensor {
    check.checkTensorShape(rows, cols);
    const { ptr, size } = this.#alloc(rows * cols * 4, true);
    return new WasmTensor(this, rows, cols, ptr, size);
  }

  write(x: Tensor, data: Float32Array): void {
    const t = this.#t(x, "write target");
    check.checkWrite(t, data);
    this.#F.set(data, t.ptr / 4);
  }

  read(x: Tensor): Promise<Float32Array> {
    const t = this.#t(x, "read source");
    const p = t.ptr / 4;
    return Promise.resolve(this.#F.slice(p, p + t.rows * t.cols));
  }

  free(x: Tensor): void {
    const t = this.#t(x, "freed tensor");
    t.freed = true;
    this.#dealloc(t.ptr, t.bytes);
  }

  release(b: WeightBuffer | IndexList): void {
    if ((b instanceof WasmWeights || b instanceof WasmIndices) && b.owner === this) {
      if (b.released) return;
      b.released = true;
      this.#dealloc(b.ptr, b.bytes);
    }
  }

  // ---------- ops ----------

  embed(table: MatView, ids: Int32Array, out: Tensor): void {
    const o = this.#t(out, "embed out");
    check.checkEmbed(table, ids, out);
    const w = this.#w(table, "embed table", 0);
    const T = ids.length;
    if (w.dtype === "q8") {
      for (let i = 0; i < T; i++) {
        const e0 = table.offset + ids[i] * table.stride;
        this.#k.q8_to_f32(w.ptr, e0, table.cols, o.ptr + i * table.cols * 4);
      }
      return;
    }
    const p = this.#scratch(T * 4);
    this.#views();
    this.#i32.set(ids, p / 4);
    this.#k.embed(
      this.#addr(table),
      table.stride,
      w.dtype === "f16" ? 1 : 0,
      p,
      T,
      table.cols,
      o.ptr,
    );
  }

  rmsNorm(x: Tensor, weight: MatView, eps: number, out: Tensor): void {
    const a = this.#t(x, "rmsNorm x");
    const o = this.#t(out, "rmsNorm out");
    check.checkRmsNorm(a, weight, o);
    this.#w(weight, "rmsNorm weight", 1);
    const c = weight.cols;
    const groups = a.rows * (a.cols / c);
    const wv = this.#vec(weight, c);
    this.#k.rmsnorm(a.ptr, groups, c, wv.ptr, wv.f16, eps, o.ptr);
  }

  matmul(x: Tensor, w: MatView, rows: IndexList | null, bias: MatView | null, out: Tensor): void {
    const a = this.#t(x, "matmul x");
    const o = this.#t(out, "matmul out");
    check.checkMatmul(a, w, rows, bias, o);
    const wb = this.#w(w, "matmul w", 0);
    const N = w.rows, K = w.cols;
    const R = rows ? rows.length : N;
    const rp = this.#idx(rows, N, "matmul rows");
    const T = a.rows;
    if (wb.dtype === "q8") {
      const q = this.#q8(w, "matmul w");
      // The quantized x: T * K/32 scales (f32) + T * K int16.
      const s = this.#scratch(T * (K / Q8_BLOCK) * 4 + T * K * 2);
      this.#k.matmul_q8(a.ptr, T, K, q.ptr, q.sb, rp, R, o.ptr, TOKEN_BLOCK, s);
    } else if (wb.dtype === "f16") {
      const s = this.#scratch(4 * K * 4);
      this.#k.matmul_f16(a.ptr, T, K, this.#addr(w), w.stride, rp, R, o.ptr, TOKEN_BLOCK, s);
    } else {
      this.#k.matmul_f32(a.ptr, T, K, this.#addr(w), w.stride, rp, R, o.ptr, TOKEN_BLOCK);
    }
    if (bias) {
      this.#w(bias, "matmul bias", 1);
      const bv = this.#vec(bias, N);
      this.#k.add_bias_gather(o.ptr, T, R, rp, bv.ptr, bv.f16);
    }
  }

  matmulTAdd(a: Tensor, w: MatView, rows: IndexList | null, out: Tensor): void {
    const at = this.#t(a, "matmulTAdd a");
    const o = this.#t(out, "matmulTAdd out");
    check.checkMatmulTAdd(at, w, rows, o);
    const wb = this.#w(w, "matmulTAdd w", 0);
    const N = w.rows, M = w.cols;
    const R = rows ? rows.length : N;
    const rp = this.#idx(rows, N, "matmulTAdd rows");
    const T = at.rows;
    if (wb.dtype === "q8") {
      const q = this.#q8(w, "matmulTAdd w");
      const s = this.#scratch(Q8_TILE_ROWS * M * 4);
      this.#k.matmul_t_add_q8(at.ptr, T, R, q.ptr, q.sb, rp, M, o.ptr, s);
    } else if (wb.dtype === "f16") {
      const s = this.#scratch(4 * M * 4);
      this.#k.matmul_t_add_f16(at.ptr, T, R, this.#addr(w), w.stride, rp, M, o.ptr, TOKEN_BLOCK, s);
    } else {
      this.#k.matmul_t_add_f32(at.ptr, T, R, this.#addr(w), w.stride, rp, M, o.ptr, TOKEN_BLOCK);
    }
  }

  siluMul(gate: Tensor, up: Tensor, out: Tensor): void {
    const g = this.#t(gate, "siluMul gate"), u = this.#t(up, "siluMul up");
    const o = this.#t(out, "siluMul out");
    check.checkSiluMul(g, u, o);
    const n = g.rows * g.cols;
    this.#k.silu_mul(g.ptr, u.ptr, n, o.ptr);
  }

  rope(x: Tensor, headDim: number, pos0: number, invFreq: MatView): void {
    const a = this.#t(x, "rope x");
    check.checkRope(a, headDim, pos0, invFreq);
    const fb = this.#w(invFreq, "rope invFreq", 1);
    const h2 = headDim / 2;
    const T = a.rows;
    // cos/sin table [T, d] (d/2 cosines then d/2 sines), built in float64 on the host and
    // cached: q and k of every layer of one step share it.
    const key = `${fb.ptr}:${invFreq.offset}:${headDim}:${pos0}:${T}`;
    if (key !== this.#ropeKey) {
      const bytes = T * headDim * 4;
      if (bytes > this.#ropeBytes) {
        if (this.#ropeBytes > 0) this.#dealloc(this.#ropePtr, this.#ropeBytes);
        const al = this.#alloc(bytes, true);
        this.#ropePtr = al.ptr;
        this.#ropeBytes = al.size;
      }
      const f = this.hostView(invFreq, h2);
      const base = this.#ropePtr / 4;
      fillRopeTable(this.#F.subarray(base, base + T * headDim), f, pos0, T, "halves");
      this.#ropeKey = key;
    }
    this.#k.rope(a.ptr, T, a.cols / headDim, headDim, this.#ropePtr);
  }

  addRow(x: Tensor, bias: MatView): void {
    const a = this.#t(x, "addRow x");
    check.checkAddRow(a, bias);
    this.#w(bias, "addRow bias", 1);
    const bv = this.#vec(bias, a.cols);
    this.#k.add_row(a.ptr, a.rows, a.cols, bv.ptr, bv.f16);
  }

  add(x: Tensor, y: Tensor): void {
    const a = this.#t(x, "add x"), b = this.#t(y, "add y");
    check.checkAdd(a, b);
    this.#k.add(a.ptr, b.ptr, a.rows * a.cols);
  }

  kvWrite(cache: Tensor, kv: Tensor, heads: IndexList, maxT: number, pos0: number): void {
    const c = this.#t(cache, "kvWrite cache"), s = this.#t(kv, "kvWrite kv");
    check.checkKvWrite(c, s, heads, maxT, pos0);
    const d = c.cols;
    this.#idx(heads, c.rows / maxT, "kvWrite heads");
    const H = heads.length, T = s.rows;
    const F = this.#F;
    const hs = heads.host;
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < H; j++) {
        const src = s.ptr / 4 + (t * H + j) * d;
        const dst = c.ptr / 4 + (hs[j] * maxT + pos0 + t) * d;
        F.copyWithin(dst, src, src + d);
      }
    }
  }

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
    const qt = this.#t(q, "attention q"), o = this.#t(out, "attention out");
    const kc = this.#t(kCache, "attention kCache"), vc = this.#t(vCache, "attention vCache");
    check.checkAttention(qt, kc, vc, kvOf, maxT, pos0, o);
    const d = kc.cols, S = kvOf.length, T = qt.rows;
    const kp = this.#idx(kvOf, kc.rows / maxT, "attention kvOf");
    const s = this.#scratch(maxT * 4); // one row of scores
    this.#k.attention(qt.ptr, T, S, d, kc.ptr, vc.ptr, kp, maxT, pos0, scale, o.ptr, s);
  }

  copyRows(src: Tensor, srcRow: number, count: number, dst: Tensor, dstRow: number): void {
    const a = this.#t(src, "copyRows src"), b = this.#t(dst, "copyRows dst");
    check.checkCopyRows(a, srcRow, count, b, dstRow);
    const c = a.cols;
    const s0 = a.ptr / 4 + srcRow * c;
    this.#F.copyWithin(b.ptr / 4 + dstRow * c, s0, s0 + count * c);
  }

  ffn(
    x: Tensor,
    gate: MatView,
    up: MatView,
    downT: MatView,
    rows: IndexList | null,
    out: Tensor,
    act: Tensor | null = null,
  ): void {
    const xt = this.#t(x, "ffn x"), o = this.#t(out, "ffn out");
    const at = act ? this.#t(act, "ffn act") : null;
    check.checkFfn(xt, gate, up, downT, rows, o, at);
    const gb = this.#w(gate, "ffn gate", 0);
    this.#w(up, "ffn up", 0);
    this.#w(downT, "ffn downT", 0);
    const N = gate.rows, K = gate.cols, M = downT.cols;
    const R = rows ? rows.length : N;
    const rp = this.#idx(rows, N, "ffn rows");
    const T = xt.rows;
    if (gb.dtype === "q8") {
      const g = this.#q8(gate, "ffn gate"), u = this.#q8(up, "ffn up");
      const d = this.#q8(downT, "ffn downT");
      // Quantized x (T * K/32 scales + T * K int16), then for T > 1 the gate/up tile values
      // [2, T, tile] and one tile of dequantized down rows [tile, M].
      let bytes = T * (K / Q8_BLOCK) * 4 + T * K * 2;
      bytes += (T > 1 ? 2 * T * Q8_TILE_ROWS + Q8_TILE_ROWS * M : M) * 4;
      const sp = this.#scratch(bytes);
      this.#k.ffn_q8(
        xt.ptr,
        T,
        K,
        g.ptr,
        g.sb,
        u.ptr,
        u.sb,
        d.ptr,
        d.sb,
        M,
        rp,
        R,
        o.ptr,
        at ? at.ptr : 0,
        TOKEN_BLOCK,
        sp,
      );
      return;
    }
    const args = [
      xt.ptr,
      T,
      K,
      this.#addr(gate),
      gate.stride,
      this.#addr(up),
      up.stride,
      this.#addr(downT),
      downT.stride,
      M,
      rp,
      R,
      o.ptr,
      at ? at.ptr : 0,
      TOKEN_BLOCK,
    ] as const;
    // Scratch: G and U [tb, FFN_CHUNK] (T > 1), plus a converted chunk of rows for f16.
    let floats = T > 1 ? 2 * TOKEN_BLOCK * FFN_CHUNK : 0;
    if (gb.dtype === "f16") floats += T > 1 ? FFN_CHUNK * (2 * K + M) : K + M;
    const sp = floats > 0 ? this.#scratch(floats * 4) : 0;
    if (gb.dtype === "f16") this.#k.ffn_f16(...args, sp);
    else this.#k.ffn_f32(...args, sp);
  }

  /** Host copy (f32) of the first `n` values of row 0 of a view (any storage dtype). */
  hostView(v: MatView, n: number): Float32Array {
    const b = this.#w(v, "hostView", 1);
    if (b.dtype === "q8") {
      const p = this.#vec(v, n).ptr / 4;
      return this.#F.slice(p, p + n);
    }
    if (b.dtype === "f16") {
      return Float32Array.from(new Float16Array(this.#mem.buffer, this.#addr(v), n));
    }
    const p = this.#addr(v) / 4;
    return this.#F.slice(p, p + n);
  }
}

function fmtBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}
