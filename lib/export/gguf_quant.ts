/**
 * Encoding f32 weights as ggml tensor data: F32, F16 (round to nearest even) and Q8_0 (blocks
 * of 32 values: one f16 scale d = max|x| / 127, then 32 int8 q = round(x / d); x ≈ d * q), as
 * ggml's quantize_row_q8_0_ref does.
 */

import type { GgmlTypeName } from "./gguf_writer.ts";

/** Values per Q8_0 block. */
export const Q8_0_BLOCK = 32;
/** Bytes per Q8_0 block: f16 scale + 32 int8. */
export const Q8_0_BYTES = 34;

/** f32 values as little-endian F32 bytes. */
export function encodeF32(x: Float32Array): Uint8Array {
  return new Uint8Array(Float32Array.from(x).buffer);
}

/** f32 values as IEEE half bytes (round to nearest even, as ggml's f32→f16). */
export function encodeF16(x: Float32Array): Uint8Array {
  return new Uint8Array(Float16Array.from(x).buffer);
}

/**
 * f32 values (length a multiple of 32, rows laid end to end) as Q8_0 blocks. Rounds half away
 * from zero like C's roundf.
 */
export function encodeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) {
    throw new Error(`Q8_0: ${x.length} values is not a multiple of ${Q8_0_BLOCK}`);
  }
  const nb = x.length / Q8_0_BLOCK;
  const out = new Uint8Array(nb * Q8_0_BYTES);
  const view = new DataView(out.buffer);
  const half = new Float16Array(1);
  for (let b = 0; b < nb; b++) {
    const o = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(x[o + j]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    half[0] = d;
    const base = b * Q8_0_BYTES;
    view.setUint16(base, new Uint16Array(half.buffer)[0], true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const v = Math.fround(x[o + j] * id);
      view.setInt8(base + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}

/** Decode Q8_0 blocks back to f32 (d * q), for tests and the engine-side reference. */
export function decodeQ8_0(bytes: Uint8Array): Float32Array {
  const nb = bytes.length / Q8_0_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = new Float16Array(1);
  const hbits = new Uint16Array(half.buffer);
  const out = new Float32Array(nb * Q8_0_BLOCK);
  for (let b = 0; b < nb; b++) {
    hbits[0] = view.getUint16(b * Q8_0_BYTES, true);
    const d = half[0];
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      out[b * Q8_0_BLOCK + j] = d * view.getInt8(b * Q8_0_BYTES + 2 + j);
    }
  }
  return out;
}

/** Encode `x` (a [rows, cols] matrix when 2-D) as `type`'s bytes. */
export function encodeTensor(x: Float32Array, type: GgmlTypeName): Uint8Array {
  switch (type) {
    case "F32":
      return encodeF32(x);
    case "F16":
      return encodeF16(x);
    case "Q8_0":
      return encodeQ8_0(x);
  }
}
