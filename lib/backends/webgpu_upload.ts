/**
 * Lean weight upload for the WebGPU backend ({@link Backend.allocWeights} /
 * {@link Backend.writeWeights}): a weight buffer is created once at its final size and filled
 * piece by piece, each piece converted on the host (f16 packed two per u32, q8 quantized into
 * lib/formats/q8.ts blocks, the layout the *_q8.wgsl kernels read) and handed to the queue, so
 * loading never holds a whole tensor on the host (docs/design.md, Weight layout).
 *
 * - A piece that is one contiguous, 4-byte-aligned run of bytes (rows of whole matrix rows,
 *   q8 blocks, f16 runs of even offset and length) goes straight into the buffer with
 *   `queue.writeBuffer`.
 * - Anything else (a panel of a transposed tensor: short rows at a stride; an f16 run that
 *   starts or ends inside a u32) is packed into the upload arena and placed by
 *   write_halves.wgsl, which moves 16-bit units and keeps the untouched half of a shared word.
 *
 * The queue stages every writeBuffer in host memory until the next submission, so direct writes
 * are followed by an (empty) submission every {@link SUBMIT_EVERY} bytes: staging stays a few
 * MiB instead of growing to a second copy of the weights.
 */

import type { WeightBuffer, WeightDType } from "./backend.ts";
import { checkWriteWeights } from "./arg_checks.ts";
import { Q8_BLOCK, Q8_BLOCK_BYTES, q8Bytes, quantizeQ8RowsInto } from "../formats/q8.ts";
import { type GpuMemory, GpuWeights, HOST_COPY_MAX } from "./webgpu_buffers.ts";
import { newBufferId, roundUp } from "./webgpu_recorder.ts";
import { WebGpuError } from "./webgpu_device.ts";

/** Bytes of direct writes after which the queue is submitted (its staging released). */
export const SUBMIT_EVERY = 4 << 20;

/** Bytes a buffer of `length` values occupies stored as `dt`. */
export function storedBytes(length: number, dt: WeightDType): number {
  return dt === "q8" ? q8Bytes(length) : length * (dt === "f16" ? 2 : 4);
}

/** Host scratch and the count of direct-write bytes not yet submitted, per {@link GpuMemory}. */
const state = new WeakMap<GpuMemory, { scratch: ArrayBuffer; unsubmitted: number }>();

function stateOf(mem: GpuMemory): { scratch: ArrayBuffer; unsubmitted: number } {
  let s = state.get(mem);
  if (!s) state.set(mem, s = { scratch: new ArrayBuffer(0), unsubmitted: 0 });
  return s;
}

/**
 * A zero-filled weight buffer of `length` values stored as `dtype` (f16 falls back to f32
 * where packed f16 does not compile), to be filled with {@link writeWeights}. Buffers up to
 * {@link HOST_COPY_MAX} values keep a host copy, as uploaded ones do (rope tables and the f32
 * twins of q8 vectors are computed from it); larger ones keep nothing on the host.
 */
export function allocWeights(mem: GpuMemory, length: number, dtype: WeightDType): GpuWeights {
  mem.rec.alive();
  if (!(Number.isInteger(length) && length >= 0)) {
    throw new RangeError(`allocWeights: length ${length} is not a count of values`);
  }
  const dt = mem.storedDType(dtype);
  const size = Math.max(16, roundUp(storedBytes(length, dt), 16));
  mem.checkWeightSize(size);
  const buf = mem.rec.device.createBuffer({
    size,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
  const host = length <= HOST_COPY_MAX ? new Float32Array(length) : null;
  return mem.track(new GpuWeights(length, dt, host, buf, newBufferId(), mem));
}

/**
 * Convert and store `data` as values `[offset, ...)` of a buffer from {@link allocWeights}:
 * rows of `rowLen` values, row i at `offset + i * stride` (see Backend.writeWeights). In
 * stream order with the ops recorded before it.
 */
export function writeWeights(
  mem: GpuMemory,
  buf: WeightBuffer,
  offset: number,
  data: Float32Array,
  rowLen = data.length,
  stride = rowLen,
): void {
  if (!(buf instanceof GpuWeights) || buf.owner !== mem || buf.released) {
    throw new Error("writeWeights: not a live weight buffer of this backend");
  }
  mem.rec.alive();
  const rows = checkWriteWeights(buf.length, buf.dtype, offset, data, rowLen, stride);
  if (rows === 0 || rowLen === 0) return;
  if (buf.host) {
    for (let i = 0; i < rows; i++) {
      buf.host.set(data.subarray(i * rowLen, (i + 1) * rowLen), offset + i * stride);
    }
  }
  // Everything in 16-bit units ("halves"): a row's length, its first half and the stride.
  const dt = buf.dtype;
  const [rowH, dstH, strideH] = dt === "q8"
    ? [q8Bytes(rowLen) / 2, (offset / Q8_BLOCK) * Q8_BLOCK_BYTES / 2, stride / Q8_BLOCK * 18]
    : dt === "f16"
    ? [rowLen, offset, stride]
    : [2 * rowLen, 2 * offset, 2 * stride];
  const halves = rows * rowH; // packed source size
  const contiguous = rows === 1 || strideH === rowH;
  if (contiguous && dstH % 2 === 0 && halves % 2 === 0) {
    const st = stateOf(mem);
    const bytes = halves * 2;
    if (st.scratch.byteLength < bytes) st.scratch = new ArrayBuffer(roundUp(bytes, 1 << 16));
    pack(data, rowLen, dt, new Uint8Array(st.scratch, 0, bytes));
    // Work recorded before this write must run first (stream order).
    if (mem.rec.pending) mem.rec.flush();
    mem.rec.device.queue.writeBuffer(buf.buf, dstH * 2, st.scratch, 0, bytes);
    st.unsubmitted += bytes;
    if (st.unsubmitted >= SUBMIT_EVERY) {
      mem.rec.device.queue.submit([]);
      st.unsubmitted = 0;
    }
    return;
  }
  const up = mem.rec.arenaAlloc(roundUp(halves * 2, 4));
  pack(data, rowLen, dt, new Uint8Array(mem.rec.arenaHost, up.offset, halves * 2));
  placeRows(mem, buf, up, rows, rowH, 0, dstH, strideH);
}

/** Convert rows of `rowLen` values to their stored bytes, packed one row after another. */
function pack(data: Float32Array, rowLen: number, dt: WeightDType, out: Uint8Array): void {
  if (dt === "q8") quantizeQ8RowsInto(data, rowLen, out, 0, q8Bytes(rowLen));
  else if (dt === "f16") new Float16Array(out.buffer, out.byteOffset, data.length).set(data);
  else new Float32Array(out.buffer, out.byteOffset, data.length).set(data);
}

/**
 * Record write_halves.wgsl for rows [0, rows) of the packed source `src` (row r at half
 * `srcH + r * rowH`) into `buf` at halves `dstH + r * strideH`, splitting the rows where their
 * destination span exceeds one storage binding.
 */
function placeRows(
  mem: GpuMemory,
  buf: GpuWeights,
  src: { buf: GPUBuffer; id: number; offset: number; size: number },
  rows: number,
  rowH: number,
  srcH: number,
  dstH: number,
  strideH: number,
): void {
  const w0 = Math.floor(dstH / 2); // first destination word
  const w1 = Math.floor((dstH + (rows - 1) * strideH + rowH - 1) / 2); // last one
  const b0 = Math.floor((w0 * 4) / mem.rec.align) * mem.rec.align;
  const size = (w1 + 1) * 4 - b0;
  if (size > mem.maxWBind && rows > 1) {
    const half = rows >> 1;
    placeRows(mem, buf, src, half, rowH, srcH, dstH, strideH);
    placeRows(mem, buf, src, rows - half, rowH, srcH + half * rowH, dstH + half * strideH, strideH);
    return;
  }
  if (size > mem.maxWBind) {
    throw new RangeError(
      `writeWeights: a row of ${rowH * 2} bytes exceeds the binding limit ${mem.maxWBind}`,
    );
  }
  const wpr = Math.floor(rowH / 2) + 2; // >= words one row touches, at any start
  mem.rec.dispatch(
    "write_halves",
    "main",
    {},
    { rows, len: rowH, src_base: srcH, dst_base: dstH - b0 / 2, dst_stride: strideH, wpr },
    [src, { buf: buf.buf, id: buf.id, offset: b0, size }],
    Math.ceil((rows * wpr) / 256),
  );
}

/**
 * The bytes a weight buffer stores (f32, packed f16 or q8 blocks, without the padding to 16),
 * read back after everything recorded so far: for tests that compare two uploads bit for bit.
 */
export async function readWeights(mem: GpuMemory, buf: WeightBuffer): Promise<Uint8Array> {
  const w = mem.view({ buf, offset: 0, stride: 0, rows: 0, cols: 0 });
  const bytes = storedBytes(w.length, w.dtype);
  const size = w.buf.size;
  const device = mem.rec.device;
  const staging = device.createBuffer({
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  mem.rec.endPass();
  mem.rec.encoder().copyBufferToBuffer(w.buf, 0, staging, 0, size);
  device.pushErrorScope("validation");
  mem.rec.flush(true);
  const err = await device.popErrorScope();
  if (err) throw new WebGpuError(`webgpu: ${err.message}`);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(bytes);
  out.set(new Uint8Array(staging.getMappedRange(0, size), 0, bytes));
  staging.unmap();
  staging.destroy();
  mem.rec.checkErrors();
  return out;
}
