/**
 * A GGUF (version 3) file writer: typed metadata key/values, tensor infos, then tensor data,
 * each aligned to `general.alignment` (32 bytes). Layout as in ggml's docs/gguf.md: little
 * endian, strings as u64 length + UTF-8 bytes, tensor dims innermost first.
 */

/** GGUF metadata value types (gguf_type). */
export const GGUF_UINT8 = 0;
/** int32 value. */
export const GGUF_INT32 = 5;
/** uint32 value. */
export const GGUF_UINT32 = 4;
/** float32 value. */
export const GGUF_FLOAT32 = 6;
/** bool value (one byte). */
export const GGUF_BOOL = 7;
/** string value. */
export const GGUF_STRING = 8;
/** array value. */
export const GGUF_ARRAY = 9;

/** ggml tensor types written here. */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;
/** A ggml tensor type name. */
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** One metadata value with its GGUF type. */
export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "u32[]" | "i32[]" | "f32[]"; value: ArrayLike<number> }
  | { type: "string[]"; value: string[] };

/** A tensor ready to write: its name, ggml dims (innermost first) and encoded bytes. */
export interface GgufTensor {
  name: string;
  /** ggml `ne`: dims innermost first, e.g. a row-major [rows, cols] matrix is [cols, rows]. */
  dims: number[];
  type: GgmlTypeName;
  data: Uint8Array;
}

const ALIGN = 32;
const enc = new TextEncoder();

/** Growable little-endian byte sink. */
class Sink {
  #buf = new Uint8Array(1 << 16);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.#room(1);
    this.#view.setUint8(this.length++, v);
  }
  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.#room(4);
    this.#view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.#room(4);
    this.#view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.#room(8);
    this.#view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  str(s: string): void {
    const b = enc.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(): void {
    while (this.length % ALIGN !== 0) this.u8(0);
  }
  result(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

const SCALAR: Record<string, [number, (s: Sink, v: number) => void]> = {
  u32: [GGUF_UINT32, (s, v) => s.u32(v)],
  i32: [GGUF_INT32, (s, v) => s.i32(v)],
  f32: [GGUF_FLOAT32, (s, v) => s.f32(v)],
};

function writeValue(s: Sink, key: string, v: GgufValue): void {
  s.str(key);
  switch (v.type) {
    case "bool":
      s.u32(GGUF_BOOL);
      s.u8(v.value ? 1 : 0);
      return;
    case "string":
      s.u32(GGUF_STRING);
      s.str(v.value);
      return;
    case "string[]":
      s.u32(GGUF_ARRAY);
      s.u32(GGUF_STRING);
      s.u64(v.value.length);
      for (const x of v.value) s.str(x);
      return;
    case "u32[]":
    case "i32[]":
    case "f32[]": {
      const [t, put] = SCALAR[v.type.slice(0, 3)];
      s.u32(GGUF_ARRAY);
      s.u32(t);
      s.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) put(s, v.value[i]);
      return;
    }
    default: {
      const [t, put] = SCALAR[v.type];
      if (!Number.isFinite(v.value)) throw new Error(`GGUF: metadata ${key} is not finite`);
      s.u32(t);
      put(s, v.value);
    }
  }
}

/**
 * Serialise metadata and tensors as one GGUF v3 file, returned as consecutive chunks (header,
 * then each tensor's bytes and padding) so a large model is never copied into one buffer.
 */
export function serializeGguf(
  metadata: Map<string, GgufValue>,
  tensors: GgufTensor[],
): Uint8Array[] {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: duplicate tensor name ${t.name}`);
    names.add(t.name);
  }
  const s = new Sink();
  s.bytes(enc.encode("GGUF"));
  s.u32(3);
  s.u64(tensors.length);
  const kv = new Map(metadata);
  kv.set("general.alignment", { type: "u32", value: ALIGN });
  s.u64(kv.size);
  for (const [k, v] of kv) writeValue(s, k, v);
  let offset = 0;
  for (const t of tensors) {
    s.str(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(GGML_TYPE[t.type]);
    s.u64(offset);
    offset += Math.ceil(t.data.length / ALIGN) * ALIGN;
  }
  s.pad();
  const parts = [s.result()];
  for (const t of tensors) {
    parts.push(t.data);
    const pad = (ALIGN - t.data.length % ALIGN) % ALIGN;
    if (pad) parts.push(new Uint8Array(pad));
  }
  return parts;
}

/** Write the chunks of {@link serializeGguf} to `path`; returns the file size in bytes. */
export async function writeGgufFile(path: string, parts: Uint8Array[]): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  let n = 0;
  try {
    for (const p of parts) {
      let o = 0;
      while (o < p.length) o += await file.write(p.subarray(o));
      n += p.length;
    }
  } finally {
    file.close();
  }
  return n;
}
