/**
 * The "q8" weight format: GGUF's Q8_0 idea (blocks of 32 int8 values with one scale) with the
 * scale kept in f32 instead of f16, so no kernel converts it and the WGSL side reads it as one
 * aligned word.
 *
 * A buffer of n values is ceil(n / 32) blocks of {@link Q8_BLOCK_BYTES} = 36 bytes: a
 * little-endian f32 scale d, then 32 int8 q (the last block zero-padded); value k of block b is
 * `d * q[k]`. Quantization (of weights at upload, and of activations inside q8 matmuls, as
 * llama.cpp quantizes activations for Q8_0 dot products), every step in f32:
 *
 *   d = max|v| / 127,   id = d == 0 ? 0 : 1 / d,   q = roundHalfEven(v * id)   (|q| <= 127)
 *
 * Relative to f16 this is 1.125 bytes per weight instead of 2 (3.6x fewer than f32), with a
 * worst-case per-weight error of d / 2 = max|v| / 254 inside a block.
 */

/** Values per block. */
export const Q8_BLOCK = 32;
/** Bytes per block: f32 scale + 32 int8. */
export const Q8_BLOCK_BYTES = 36;

/** Round to the nearest integer, ties to even (WASM `f32x4.nearest`, WGSL `round`). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Quantize `n` values of `src` from `off` (n <= 32) as one block: returns the scale and writes
 * q into `q[qOff ..]`. The arithmetic is f32, as in the kernels.
 */
export function quantizeBlock(
  src: ArrayLike<number>,
  off: number,
  n: number,
  q: Int8Array | Int16Array,
  qOff: number,
): number {
  let amax = 0;
  for (let k = 0; k < n; k++) amax = Math.max(amax, Math.abs(src[off + k]));
  const d = Math.fround(amax / 127);
  const id = d === 0 ? 0 : Math.fround(1 / d);
  for (let k = 0; k < n; k++) q[qOff + k] = roundHalfEven(Math.fround(src[off + k] * id));
  return d;
}

/** Bytes of a q8 buffer holding `n` values. */
export function q8Bytes(n: number): number {
  return Math.ceil(n / Q8_BLOCK) * Q8_BLOCK_BYTES;
}

/** Quantize `data` into q8 blocks (see the module comment). */
export function quantizeQ8(data: Float32Array): Uint8Array {
  const out = new Uint8Array(q8Bytes(data.length));
  quantizeQ8Into(data, out);
  return out;
}

/**
 * Quantize `data` into the first {@link q8Bytes}(data.length) bytes of `out` (e.g. a view of
 * backend memory), with no allocation; a partial last block's padding is zeroed.
 */
export function quantizeQ8Into(data: Float32Array, out: Uint8Array): void {
  if (out.length < q8Bytes(data.length)) {
    throw new RangeError(
      `quantizeQ8Into: ${q8Bytes(data.length) / Q8_BLOCK_BYTES} blocks need ${
        q8Bytes(data.length)
      } bytes`,
    );
  }
  quantizeQ8RowsInto(data, data.length, out, 0, 0);
}

/** 1.5 * 2^52: adding and subtracting it rounds a double of magnitude < 2^51 half to even. */
const ROUND_MAGIC = 6755399441055744;

/**
 * Quantize `data`, rows of `rowLen` values ([data.length / rowLen, rowLen] row-major), into q8
 * blocks of `out` with row i's blocks starting at byte `at + i * strideBytes`: a piece of a
 * larger q8 matrix written in place, e.g. a panel of a transposed tensor in backend memory.
 * Each row is quantized as {@link quantizeQ8Into} quantizes it alone (a partial last block is
 * zero-padded), so a matrix whose rows are multiples of 32 gets the same bytes however it is
 * cut into pieces. Nothing is allocated but two views of `out`.
 *
 * Same arithmetic as {@link quantizeBlock}; rounding is done by the FPU (adding and
 * subtracting 1.5 * 2^52 in double rounds half to even, as {@link roundHalfEven} does, for
 * the |v * id| <= 127 that occur), about 3x faster than {@link roundHalfEven}.
 */
export function quantizeQ8RowsInto(
  data: Float32Array,
  rowLen: number,
  out: Uint8Array,
  at: number,
  strideBytes: number,
): void {
  const rows = rowLen === 0 ? 0 : data.length / rowLen;
  if (!Number.isInteger(rows)) {
    throw new RangeError(`quantizeQ8RowsInto: ${data.length} values are not rows of ${rowLen}`);
  }
  const rowBytes = q8Bytes(rowLen);
  if (rows > 1 && strideBytes < rowBytes) {
    throw new RangeError(`quantizeQ8RowsInto: stride ${strideBytes} B < a row's ${rowBytes} B`);
  }
  if (rows > 0 && (at < 0 || at + (rows - 1) * strideBytes + rowBytes > out.length)) {
    throw new RangeError(`quantizeQ8RowsInto: rows end past the ${out.length} B given`);
  }
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const q = new Int8Array(out.buffer, out.byteOffset, out.byteLength);
  for (let r = 0; r < rows; r++) {
    let o = at + r * strideBytes;
    for (
      let off = r * rowLen, end = off + rowLen;
      off < end;
      off += Q8_BLOCK, o += Q8_BLOCK_BYTES
    ) {
      const n = Math.min(Q8_BLOCK, end - off);
      let amax = 0;
      for (let k = 0; k < n; k++) amax = Math.max(amax, Math.abs(data[off + k])); // NaN stays
      const d = Math.fround(amax / 127);
      const id = d === 0 ? 0 : Math.fround(1 / d);
      for (let k = 0; k < n; k++) {
        q[o + 4 + k] = (Math.fround(data[off + k] * id) + ROUND_MAGIC) - ROUND_MAGIC;
      }
      for (let k = n; k < Q8_BLOCK; k++) q[o + 4 + k] = 0;
      dv.setFloat32(o, d, true);
    }
  }
}

/** The `n` values a q8 buffer holds (d * q per element). */
export function dequantizeQ8(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let e = 0; e < n; e++) {
    const b = Math.floor(e / Q8_BLOCK);
    out[e] = Math.fround(
      dv.getFloat32(b * Q8_BLOCK_BYTES, true) * q[b * Q8_BLOCK_BYTES + 4 + e % 32],
    );
  }
  return out;
}
