/**
 * Reading and writing the safetensors container format: an 8-byte little-endian header length,
 * a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {...}}`, then raw
 * little-endian tensor bytes. Malformed or truncated input gets a {@link SafetensorsError}
 * naming what is wrong, never a crash deep inside.
 */

/** Element types understood by the engine. */
export type SafeDType = "F32" | "F16" | "BF16" | "I32" | "I64" | "U8" | "I8" | "U16" | "F64";

const DTYPE_BYTES: Record<SafeDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U16: 2,
  U8: 1,
  I8: 1,
};

/** One tensor as stored: its dtype, shape and raw bytes (a view into the file). */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  bytes: Uint8Array;
}

/** A parsed file. */
export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Error for a malformed safetensors file. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

const MAX_HEADER = 100 * 1024 * 1024;

/** Where one tensor's bytes sit in a file (absolute byte offsets). */
export interface TensorLocation {
  dtype: SafeDType;
  shape: number[];
  /** First byte in the file. */
  start: number;
  /** One past the last byte. */
  end: number;
}

/** Size in bytes of the header section (8 + JSON) given the file's first 8 bytes. */
export function headerSize(first8: Uint8Array, fileSize: number, what: string): number {
  if (first8.length < 8 || fileSize < 8) {
    throw new SafetensorsError(`${what}: truncated (${fileSize} bytes, no header length)`);
  }
  const headerLen = Number(
    new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true),
  );
  if (headerLen > MAX_HEADER || 8 + headerLen > fileSize) {
    throw new SafetensorsError(
      `${what}: header length ${headerLen} exceeds the file size ${fileSize} (truncated or not safetensors)`,
    );
  }
  return 8 + headerLen;
}

/**
 * Parse only the header of a safetensors file: `head` holds at least its first
 * {@link headerSize} bytes, `fileSize` is the whole file's size. Checks every entry against
 * the file size, so a truncated file is refused before any tensor is read.
 */
export function parseSafetensorsHeader(
  head: Uint8Array,
  fileSize: number,
  what = "safetensors file",
): { tensors: Map<string, TensorLocation>; metadata: Record<string, string> } {
  const dataStart = headerSize(head, fileSize, what);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(
      head.subarray(8, dataStart),
    ));
  } catch (e) {
    throw new SafetensorsError(`${what}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SafetensorsError(`${what}: header is not a JSON object`);
  }
  const dataLen = fileSize - dataStart;
  const tensors = new Map<string, TensorLocation>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== "object" || t === null) {
      throw new SafetensorsError(`${what}: entry "${name}" is not an object`);
    }
    const dtype = t.dtype as SafeDType;
    if (!(dtype in DTYPE_BYTES)) {
      throw new SafetensorsError(`${what}: tensor "${name}" has unsupported dtype ${t.dtype}`);
    }
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${what}: tensor "${name}" has a bad shape`);
    }
    const off = t.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || !Number.isInteger(off[0]) ||
      !Number.isInteger(off[1]) || off[0] < 0 || off[1] < off[0]
    ) {
      throw new SafetensorsError(`${what}: tensor "${name}" has bad data_offsets`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) {
      throw new SafetensorsError(
        `${what}: tensor "${name}" ends at byte ${end} but the data section has ${dataLen} bytes (truncated file)`,
      );
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (count * DTYPE_BYTES[dtype] !== end - begin) {
      throw new SafetensorsError(
        `${what}: tensor "${name}" shape [${shape}] ${dtype} needs ${
          count * DTYPE_BYTES[dtype]
        } bytes, data_offsets give ${end - begin}`,
      );
    }
    tensors.set(name, {
      dtype,
      shape: shape as number[],
      start: dataStart + begin,
      end: dataStart + end,
    });
  }
  return { tensors, metadata };
}

/** Parse a safetensors file held in memory. `what` names the file in error messages. */
export function parseSafetensors(bytes: Uint8Array, what = "safetensors file"): SafetensorsFile {
  const { tensors: locs, metadata } = parseSafetensorsHeader(bytes, bytes.length, what);
  const tensors = new Map<string, SafeTensor>();
  for (const [name, l] of locs) {
    tensors.set(name, { dtype: l.dtype, shape: l.shape, bytes: bytes.subarray(l.start, l.end) });
  }
  return { tensors, metadata };
}

/** IEEE half (bits) to float. */
export function f16ToF32(h: number): number {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const F16_TABLE = /* @__PURE__ */ (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i);
  return t;
})();

/** Copy of a tensor's bytes aligned to `bytesPer` (views into a file may be unaligned). */
function aligned(bytes: Uint8Array, bytesPer: number): ArrayBuffer {
  // A freshly read tensor owns its whole buffer: use it without another copy.
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
    return bytes.buffer as ArrayBuffer;
  }
  if (bytes.byteOffset % bytesPer === 0) {
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
  return bytes.slice().buffer as ArrayBuffer;
}

/**
 * Convert a float tensor (F32/F16/BF16/F64) into `out` (at least as long as the tensor), with
 * no allocation besides an aligned copy of unaligned input: for converting piece by piece into
 * reused buffers.
 */
export function toFloat32Into(t: SafeTensor, out: Float32Array): void {
  const bpe = t.dtype === "F64" ? 8 : t.dtype === "F32" ? 4 : 2;
  const n = t.bytes.byteLength / bpe;
  if (out.length < n) {
    throw new SafetensorsError(`toFloat32Into: ${n} values, room for ${out.length}`);
  }
  const al = t.bytes.byteOffset % bpe === 0;
  const buf = al ? t.bytes.buffer : t.bytes.slice().buffer;
  const off = al ? t.bytes.byteOffset : 0;
  switch (t.dtype) {
    case "F32":
      out.set(new Float32Array(buf, off, n));
      return;
    case "F64":
      out.set(new Float64Array(buf, off, n));
      return;
    case "F16": {
      const h = new Uint16Array(buf, off, n);
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[h[i]];
      return;
    }
    case "BF16": {
      const h = new Uint16Array(buf, off, n);
      const u = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = h[i] << 16;
      return;
    }
    default:
      throw new SafetensorsError(`expected a float tensor, got ${t.dtype}`);
  }
}

/** Convert any float tensor (F32/F16/BF16/F64) to a new Float32Array. */
export function toFloat32(t: SafeTensor): Float32Array {
  switch (t.dtype) {
    case "F32":
      return new Float32Array(aligned(t.bytes, 4));
    case "F64":
      return Float32Array.from(new Float64Array(aligned(t.bytes, 8)));
    case "F16": {
      const h = new Uint16Array(aligned(t.bytes, 2));
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = F16_TABLE[h[i]];
      return out;
    }
    case "BF16": {
      const h = new Uint16Array(aligned(t.bytes, 2));
      const u = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) u[i] = h[i] << 16;
      return new Float32Array(u.buffer);
    }
    default:
      throw new SafetensorsError(`expected a float tensor, got ${t.dtype}`);
  }
}

/** Convert an integer tensor (I32/I64/U8/I8/U16) to a new Int32Array. */
export function toInt32(t: SafeTensor): Int32Array {
  switch (t.dtype) {
    case "I32":
      return new Int32Array(aligned(t.bytes, 4));
    case "I64": {
      const b = new BigInt64Array(aligned(t.bytes, 8));
      return Int32Array.from(b, (x) => Number(x));
    }
    case "U8":
      return Int32Array.from(t.bytes);
    case "I8":
      return Int32Array.from(new Int8Array(aligned(t.bytes, 1)));
    case "U16":
      return Int32Array.from(new Uint16Array(aligned(t.bytes, 2)));
    default:
      throw new SafetensorsError(`expected an integer tensor, got ${t.dtype}`);
  }
}

/** A tensor to write. */
export interface TensorToWrite {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array | Int8Array;
}

/** Serialize tensors (in key order) and string metadata into safetensors bytes. */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    const n = count * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== n) {
      throw new SafetensorsError(
        `tensor "${name}": ${t.data.byteLength} bytes of data for shape [${t.shape}] ${t.dtype} (${n})`,
      );
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data section starts 8-byte aligned.
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += " ";
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let pos = 8 + hb.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}
