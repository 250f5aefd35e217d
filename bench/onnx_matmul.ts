/**
 * A tiny hand-written ONNX protobuf encoder, just enough for a one-node model
 * `y[1, N] = MatMul(x[1, K], W[K, N])` with W as a float32 initializer (raw_data).
 * Field numbers follow onnx/onnx.proto3 (ModelProto, GraphProto, NodeProto, TensorProto,
 * ValueInfoProto, TypeProto, TensorShapeProto).
 */

const enc = new TextEncoder();

/** One protobuf field, already encoded. */
type Field = Uint8Array;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Varint field (wire type 0). */
function vfield(num: number, v: number): Field {
  return Uint8Array.from([...varint(num << 3), ...varint(v)]);
}

/** Length-delimited field (wire type 2): bytes, string or sub-message. */
function bfield(num: number, body: Uint8Array | string | Field[]): Field {
  const b = typeof body === "string" ? enc.encode(body) : Array.isArray(body) ? concat(body) : body;
  return concat([Uint8Array.from([...varint((num << 3) | 2), ...varint(b.length)]), b]);
}

const FLOAT = 1;

function valueInfo(name: string, dims: number[]): Field[] {
  const shape = dims.map((d) => bfield(1, [vfield(1, d)])); // Dimension.dim_value
  const tensorType = [vfield(1, FLOAT), bfield(2, shape)]; // elem_type, shape
  return [bfield(1, name), bfield(2, [bfield(1, tensorType)])]; // name, type.tensor_type
}

/**
 * Serialized ONNX model computing `y = x @ W`; `w` is W [K, N] row-major.
 * Inputs: "x" [1, K]; output: "y" [1, N]. IR version 8, opset 17.
 */
export function matmulModel(K: number, N: number, w: Float32Array): Uint8Array {
  if (w.length !== K * N) throw new Error(`matmulModel: ${w.length} weights for [${K}, ${N}]`);
  const raw = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  const init = [vfield(1, K), vfield(1, N), vfield(2, FLOAT), bfield(8, "W"), bfield(9, raw)];
  const node = [
    bfield(1, "x"),
    bfield(1, "W"),
    bfield(2, "y"),
    bfield(3, "mm"),
    bfield(4, "MatMul"),
  ];
  const graph = [
    bfield(1, node),
    bfield(2, "gemv"),
    bfield(5, init),
    bfield(11, valueInfo("x", [1, K])),
    bfield(12, valueInfo("y", [1, N])),
  ];
  return concat([
    vfield(1, 8), // ir_version
    bfield(2, "seap-bench"), // producer_name
    bfield(7, graph),
    bfield(8, [bfield(1, ""), vfield(2, 17)]), // opset_import
  ]);
}
