/**
 * The WASM backend's kernel table: the exports of kernels/wasm/*.c as the backend calls them
 * (pointers are byte offsets into the linear memory), the block sizes the host shares with the C
 * code, and the compiled module of each build (wasm32 or wasm64, one-thread or shared-memory;
 * which build serves a memory limit: lib/backends/wasm_memory.ts).
 */

import { parseSwitch } from "../util/parse_switch.ts";
import type { WeightDType } from "./backend.ts";
import { Q8_BLOCK } from "../formats/q8.ts";
import { type AddressBits, kernelUrl } from "./wasm_memory.ts";

/** Tokens per block in the T > 1 matmuls (a row group is read from memory once per block). */
export const TOKEN_BLOCK = 32;
/** Neurons per chunk in the T > 1 fused FFN (FFN_CHUNK in kernels/wasm/matmul.c). */
export const FFN_CHUNK = 32;
/** Rows per tile of the q8 T > 1 paths (TILE_ROWS in kernels/wasm/matmul_q8.c). */
export const Q8_TILE_ROWS = 32;
/** Tokens per group of the token-transposed x of the f32/f16 T > 1 products (XT_G, gemm.h). */
export const XT_GROUP = 8;

/**
 * Floats of the token-transposed copy of x that the f32/f16 kernels build in their scratch for
 * T > 1 (XT_FLOATS in kernels/wasm/gemm.h): T rounded up to a group, times K; 0 for T == 1.
 */
export function xtFloats(T: number, K: number): number {
  return T > 1 ? Math.ceil(T / XT_GROUP) * XT_GROUP * K : 0;
}

/**
 * Scratch bytes the matmul kernels need for `T` tokens of width `K`: q8 quantizes x (T * K/32
 * f32 scales + T * K int16); f16 converts four rows (4 * K floats); f32 and f16 with T > 1 add
 * the token-transposed x. Shared by the one-thread call and the thread tasks.
 */
export function matmulScratchBytes(dt: WeightDType, T: number, K: number): number {
  if (dt === "q8") return T * (K / Q8_BLOCK) * 4 + T * K * 2;
  return ((dt === "f16" ? 4 * K : 0) + xtFloats(T, K)) * 4;
}

/**
 * Scratch bytes the fused FFN kernels need for `T` tokens, width `K` and down width `M` (the
 * thread tasks pass M = 0: their down products run separately). q8: the quantized x, then for
 * T > 1 the gate/up tile values `[2, T, tile]` and one tile of dequantized down rows
 * `[tile, M]` (T == 1: an M-float accumulator); f32/f16 with T > 1: G and U `[tb, FFN_CHUNK]`
 * and the token-transposed x; f16 also a converted chunk of rows (T == 1: x pre-scaled and the
 * even/odd down accumulator, K + M floats).
 */
export function ffnScratchBytes(dt: WeightDType, T: number, K: number, M: number): number {
  if (dt === "q8") {
    return T * (K / Q8_BLOCK) * 4 + T * K * 2 +
      (T > 1 ? 2 * T * Q8_TILE_ROWS + Q8_TILE_ROWS * M : M) * 4;
  }
  let floats = T > 1 ? 2 * TOKEN_BLOCK * FFN_CHUNK + xtFloats(T, K) : 0;
  if (dt === "f16") floats += T > 1 ? FFN_CHUNK * (2 * K + M) : K + M;
  return floats * 4;
}

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
    scratch: number,
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

/**
 * The smallest module that uses half-precision SIMD: `(func (param v128) (result v128)
 * local.get 0 f32x4.promote_low_f16x8)`, the one instruction the fp16 kernels add (opcode 0xFD
 * then LEB128 0x14B).
 */
// deno-fmt-ignore
const FP16_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7b, 0x01, 0x7b, // type section: (v128) -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0xfd, 0xcb, 0x02, 0x0b, // code: local.get 0, promote
]);

let fp16Probe: boolean | undefined;

/**
 * Whether this runtime runs WebAssembly's half-precision SIMD (the fp16 proposal): Deno 2.9's V8
 * does only with `--v8-flags=--experimental-wasm-fp16`. Checked once with `WebAssembly.validate`.
 */
export function fp16SimdSupported(): boolean {
  fp16Probe ??= WebAssembly.validate(FP16_PROBE);
  return fp16Probe;
}

/**
 * `SEAP_FP16_SIMD`: 0 (false, no) turns the half-precision SIMD kernels off; 1 or unset leaves
 * them on where the runtime has them (unreadable without --allow-env: on).
 */
export function fp16SimdFromEnv(): boolean {
  let v: string | undefined;
  try {
    v = Deno.env.get("SEAP_FP16_SIMD");
  } catch {
    return true;
  }
  if (v === undefined || v === "") return true;
  const b = parseSwitch(v);
  if (b === undefined) {
    throw new Error(`SEAP_FP16_SIMD: expected 1/0, true/false or yes/no, got "${v}"`);
  }
  return b;
}

/** How a kernel module converts f16 weights to f32 (see docs/design.md, Backends and kernels). */
export type F16Path = "fp16-simd" | "bit-trick";

/** The compiled kernel modules (and their bytes, for the i64 signatures), per build. */
const modules = new Map<string, Promise<{ module: WebAssembly.Module; bytes: Uint8Array }>>();

/**
 * The compiled kernels for an address width, linked for a private (`shared` false) or shared
 * memory, with the module's bytes (read once per build, then cached for every backend).
 * `f16Path` "fp16-simd": the half-precision SIMD build of that width and memory (every one of the
 * four has one: lib/backends/wasm_memory.ts `kernelUrl`).
 */
export function kernelModule(
  bits: AddressBits,
  shared = false,
  f16Path: F16Path = "bit-trick",
): Promise<{ module: WebAssembly.Module; bytes: Uint8Array }> {
  const fp16 = f16Path === "fp16-simd";
  const key = `${bits}${shared ? "-threads" : ""}${fp16 ? "-fp16" : ""}`;
  let m = modules.get(key);
  if (!m) {
    const url = kernelUrl(bits, shared, fp16);
    m = Deno.readFile(url).then(async (bytes) => ({
      module: await WebAssembly.compile(bytes),
      bytes,
    }));
    modules.set(key, m);
  }
  return m;
}
