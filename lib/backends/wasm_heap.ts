/**
 * The WASM backend's heap: a first-party allocator over the one linear memory (made and grown by
 * lib/backends/wasm_memory.ts) that holds every weight, tensor, index list and scratch block, and
 * the typed-array views of that memory (rebuilt when a grow detaches the old buffer).
 */

import { BackendMemoryError } from "./backend.ts";
import { type LinearMemory, WASM_PAGE } from "./wasm_memory.ts";

/** Alignment (bytes) of every block. */
const ALIGN = 64;

/**
 * Best-fit allocator with coalescing over `[heapBase, limit)` of a linear memory; blocks come back
 * zero-filled. Byte offsets are plain numbers (exact below 2^53, whatever the address width).
 */
export class WasmHeap {
  /** The memory the blocks live in. */
  readonly memory: WebAssembly.Memory;
  /** Most bytes of linear memory this heap may use. */
  readonly limit: number;
  #lm: LinearMemory;
  #top: number;
  /** Free blocks below #top, sorted by address, never adjacent (coalesced on free). */
  #free: { ptr: number; size: number }[] = [];
  /** Highest top ever reached: memory above it has never been written (still zero). */
  #highWater = 0;
  #buf: ArrayBufferLike | null = null;
  #f32: Float32Array = new Float32Array(0);
  #i32: Int32Array = new Int32Array(0);
  #u8: Uint8Array = new Uint8Array(0);

  /** A heap over `lm` from `heapBase` (the module's `__heap_base`) up to `limit` bytes. */
  constructor(lm: LinearMemory, heapBase: number, limit: number) {
    this.#lm = lm;
    this.memory = lm.memory;
    this.limit = limit;
    this.#top = Math.ceil(heapBase / ALIGN) * ALIGN;
  }

  #views(): void {
    const buf = this.memory.buffer;
    if (this.#buf !== buf) {
      this.#buf = buf;
      this.#f32 = new Float32Array(buf);
      this.#i32 = new Int32Array(buf);
      this.#u8 = new Uint8Array(buf);
    }
  }

  /** The whole memory as f32 (index = byte offset / 4); valid until the next allocation. */
  get f32(): Float32Array {
    this.#views();
    return this.#f32;
  }

  /** The whole memory as i32 (index = byte offset / 4); valid until the next allocation. */
  get i32(): Int32Array {
    this.#views();
    return this.#i32;
  }

  /** Bytes held by live blocks (the heap top less its free blocks). */
  get usedBytes(): number {
    return this.#top - this.freeBytes;
  }

  /** Bytes currently free for reuse below the top of the heap. */
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
  alloc(bytes: number, pow2 = false): { ptr: number; size: number } {
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
      this.#zero(ptr, ptr + size);
      return { ptr, size };
    }
    // No block fits: bump the top (a free block never touches it: dealloc lowers the top).
    const ptr = this.#top;
    const end = ptr + size;
    if (end > this.limit) {
      throw new BackendMemoryError(
        `wasm backend: out of memory: ${fmtBytes(size)} more does not fit the ${
          fmtBytes(this.limit)
        } limit (${fmtBytes(this.#top - this.freeBytes)} in use)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow by at least 1/8 of the current size to keep the number of grows small.
      const need = Math.ceil((end - have) / WASM_PAGE);
      const room = Math.ceil(this.limit / WASM_PAGE) - have / WASM_PAGE;
      const pages = Math.min(Math.max(need, Math.ceil(have / 8 / WASM_PAGE)), room);
      try {
        this.#lm.grow(Math.max(need, pages));
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
      this.#zero(ptr, Math.min(end, this.#highWater));
    }
    this.#top = end;
    if (end > this.#highWater) this.#highWater = end;
    return { ptr, size };
  }

  /** Zero bytes `[from, to)` through the cached whole-memory view (no view made per call). */
  #zero(from: number, to: number): void {
    this.#views();
    this.#u8.fill(0, from, to);
  }

  /** Return a block: merged with free neighbours; a block reaching the top lowers the top. */
  dealloc(ptr: number, size: number): void {
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
}

/**
 * A block reused across ops (scratch space, a cached table): grown, never shrunk, by giving the
 * old block back and taking a larger one. Its contents are valid until it is next grown.
 */
export class ReusableBlock {
  /** Byte offset of the block (0 before the first {@link ReusableBlock.at}). */
  ptr = 0;
  /** Bytes the block holds (0 before the first {@link ReusableBlock.at}). */
  bytes = 0;
  /** A block of `heap`. */
  constructor(readonly heap: WasmHeap) {}

  /** The block's offset, grown first (a power-of-two size) if it holds fewer than `bytes`. */
  at(bytes: number): number {
    if (bytes > this.bytes) {
      if (this.bytes > 0) this.heap.dealloc(this.ptr, this.bytes);
      const a = this.heap.alloc(bytes, true);
      this.ptr = a.ptr;
      this.bytes = a.size;
    }
    return this.ptr;
  }
}

function fmtBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}
