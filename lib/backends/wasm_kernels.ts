/**
 * The WASM backend's kernel table: the exports of kernels/wasm/*.c as the backend calls them
 * (pointers are byte offsets into the linear memory), the block sizes the host shares with the C
 * code, and the compiled module of each build (wasm32 or wasm64, one-thread or shared-memory;
 * which build serves a memory limit: lib/backends/wasm_memory.ts).
 */

import { type AddressBits, KERNEL_MT_URLS, KERNEL_URLS } from "./wasm_memory.ts";

/** Tokens per block in the T > 1 matmuls (a row group is read from memory once per block). */
export const TOKEN_BLOCK = 32;
/** Neurons per chunk in the T > 1 fused FFN (FFN_CHUNK in kernels/wasm/matmul.c). */
export const FFN_CHUNK = 32;
/** Rows per tile of the q8 T > 1 paths (TILE_ROWS in kernels/wasm/matmul_q8.c). */
export const Q8_TILE_ROWS = 32;

/** The fused SwiGLU FFN export; `ffn_f32` and `ffn_f16` differ only in the weights' type. */
export type FfnKernel = (
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

/**
 * The C kernels' exports (pointers are byte offsets into the memory, passed as numbers: the
 * wasm64 module's i64 parameters are converted by lib/backends/wasm_memory.ts).
 */
export interface Kernels {
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
  /** Where the allocator starts (the module's `__heap_base`). */
  heapBase: number;
}

/** The compiled kernel modules (and their bytes, for the i64 signatures), per build. */
const modules = new Map<string, Promise<{ module: WebAssembly.Module; bytes: Uint8Array }>>();

/**
 * The compiled kernels for an address width, linked for a private (`shared` false) or shared
 * memory, with the module's bytes (read once per build, then cached for every backend).
 */
export function kernelModule(
  bits: AddressBits,
  shared = false,
): Promise<{ module: WebAssembly.Module; bytes: Uint8Array }> {
  const key = `${bits}${shared ? "-threads" : ""}`;
  let m = modules.get(key);
  if (!m) {
    m = Deno.readFile((shared ? KERNEL_MT_URLS : KERNEL_URLS)[bits]).then(async (bytes) => ({
      module: await WebAssembly.compile(bytes),
      bytes,
    }));
    modules.set(key, m);
  }
  return m;
}
