/**
 * Typed-array view of the engine's safetensors codec (`lib/formats/safetensors.ts`) for the
 * calibration outputs: masks and router (I32 / F32) and float64 statistics (F64).
 * An adapter owned by the calibration code; the engine's reader parses every file it writes.
 */

import { parseSafetensors, serializeSafetensors, toInt32 } from "../formats/safetensors.ts";

/** Data types the calibration files use. */
export type TensorDType = "F64" | "F32" | "I32";

/** One tensor: its dtype, shape and typed data (row-major). */
export interface TensorEntry {
  dtype: TensorDType;
  shape: number[];
  data: Float64Array | Float32Array | Int32Array;
}

/** Error for a tensor missing from a file or of the wrong type. */
export class TensorFileError extends Error {
  override name = "TensorFileError";
}

/** Serialise tensors (written in name order) with string metadata. */
export function encodeTensors(
  tensors: Record<string, TensorEntry>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const sorted: Record<string, TensorEntry> = {};
  for (const n of Object.keys(tensors).sort()) sorted[n] = tensors[n];
  return serializeSafetensors(sorted, metadata);
}

/**
 * Parse safetensors bytes into typed arrays (copies). Truncated or malformed input throws the
 * engine's `SafetensorsError`, whose message names the file (`what`) and the problem.
 */
export function decodeTensors(
  bytes: Uint8Array,
  what = "tensor file",
): { tensors: Map<string, TensorEntry>; metadata: Record<string, string> } {
  const f = parseSafetensors(bytes, what);
  const tensors = new Map<string, TensorEntry>();
  for (const [name, t] of f.tensors) {
    const copy = t.bytes.slice().buffer; // aligned, owned
    let data: TensorEntry["data"];
    if (t.dtype === "F64") data = new Float64Array(copy);
    else if (t.dtype === "F32") data = new Float32Array(copy);
    else if (t.dtype === "I32") data = toInt32(t);
    else throw new TensorFileError(`${what}: tensor "${name}" has dtype ${t.dtype}`);
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata: f.metadata };
}

/** Get a tensor by name or throw a {@link TensorFileError} naming it. */
export function need(
  tensors: Map<string, TensorEntry>,
  name: string,
  what = "tensor file",
): TensorEntry {
  const t = tensors.get(name);
  if (!t) throw new TensorFileError(`${what}: missing tensor "${name}"`);
  return t;
}
