/**
 * Weight upload for the WASM backend: whole buffers stored as f32, f16 or q8 (lib/formats/q8.ts
 * blocks, quantized on the way in), and empty buffers filled piece by piece with
 * {@link writeWeights} (rows at a stride; q8 pieces are quantized in place, block-aligned), so a
 * loader never holds a whole quantized matrix on the host.
 */

import type { WeightBuffer, WeightDType } from "./backend.ts";
import {
  Q8_BLOCK,
  Q8_BLOCK_BYTES,
  q8Bytes,
  quantizeQ8Into,
  quantizeQ8RowsInto,
} from "../formats/q8.ts";
import { checkWriteWeights } from "./arg_checks.ts";
import type { WasmHeap } from "./wasm_heap.ts";
import { WasmWeights } from "./wasm_handles.ts";

/** Bytes of `length` weights stored as `dtype`. */
function storageBytes(length: number, dtype: WeightDType): number {
  return dtype === "q8" ? q8Bytes(length) : length * (dtype === "f16" ? 2 : 4);
}

/** Upload `data` (flat, row-major) into a new buffer of `heap` stored as `dtype`. */
export function uploadWeights(heap: WasmHeap, data: Float32Array, dtype: WeightDType): WasmWeights {
  const bytes = storageBytes(data.length, dtype);
  const { ptr, size } = heap.alloc(bytes);
  if (dtype === "f16") new Float16Array(heap.memory.buffer, ptr, data.length).set(data);
  else if (dtype === "q8") quantizeQ8Into(data, new Uint8Array(heap.memory.buffer, ptr, bytes));
  else heap.f32.set(data, ptr / 4);
  return new WasmWeights(heap, data.length, dtype, ptr, size);
}

/** A zero-filled buffer of `heap` for `length` weights stored as `dtype` (fill it with writeWeights). */
export function allocWeights(heap: WasmHeap, length: number, dtype: WeightDType): WasmWeights {
  const { ptr, size } = heap.alloc(storageBytes(length, dtype));
  return new WasmWeights(heap, length, dtype, ptr, size);
}

/**
 * Write `data` (rows of `rowLen` values) into a live buffer of `heap` from element `offset`,
 * rows `stride` elements apart, converting to the buffer's dtype. The piece is checked by
 * `checkWriteWeights` (./arg_checks.ts, shared with the WebGPU upload): whole rows inside the
 * buffer, and for q8 block-aligned (offset, stride and row length multiples of 32; a single row
 * may end at the buffer's end); RangeError otherwise.
 */
export function writeWeights(
  heap: WasmHeap,
  buf: WeightBuffer,
  offset: number,
  data: Float32Array,
  rowLen: number,
  stride: number,
): void {
  if (!(buf instanceof WasmWeights) || buf.owner !== heap || buf.released) {
    throw new Error("writeWeights: not a live weight buffer of this backend");
  }
  const rows = checkWriteWeights(buf.length, buf.dtype, offset, data, rowLen, stride);
  if (buf.dtype === "q8") {
    const at = buf.ptr + (offset / Q8_BLOCK) * Q8_BLOCK_BYTES;
    const sb = (stride / Q8_BLOCK) * Q8_BLOCK_BYTES;
    const span = rows > 0 ? (rows - 1) * sb + q8Bytes(rowLen) : 0;
    quantizeQ8RowsInto(data, rowLen, new Uint8Array(heap.memory.buffer, at, span), 0, sb);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const row = rows === 1 ? data : data.subarray(i * rowLen, (i + 1) * rowLen);
    const o = offset + i * stride;
    if (buf.dtype === "f16") new Float16Array(heap.memory.buffer, buf.ptr + o * 2, rowLen).set(row);
    else heap.f32.set(row, buf.ptr / 4 + o);
  }
}
