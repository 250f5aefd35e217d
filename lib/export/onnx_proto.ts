/**
 * A small ONNX graph builder and protobuf encoder (ModelProto, GraphProto, NodeProto,
 * TensorProto, ValueInfoProto, AttributeProto; field numbers from onnx.proto3). Enough to
 * export a decoder-only transformer with standard opset-17 operators.
 */

const enc = new TextEncoder();

/** ONNX TensorProto.DataType values used here. */
export const ONNX_FLOAT = 1;
/** int64 element type. */
export const ONNX_INT64 = 7;

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Varint field (wire type 0). */
function vf(num: number, v: number | bigint): Uint8Array {
  return Uint8Array.from([...varint(num << 3), ...varint(v)]);
}

/** Length-delimited field (wire type 2). */
function bf(num: number, body: Uint8Array | string | Uint8Array[]): Uint8Array {
  const b = typeof body === "string" ? enc.encode(body) : Array.isArray(body) ? concat(body) : body;
  return concat([Uint8Array.from([...varint((num << 3) | 2), ...varint(b.length)]), b]);
}

/** 32-bit float field (wire type 5). */
function ff(num: number, v: number): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = (num << 3) | 5;
  new DataView(b.buffer).setFloat32(1, v, true);
  return b;
}

/** A dimension: a fixed size or a symbolic name. */
export type Dim = number | string;

/** A node attribute value. */
export type AttrValue = number | number[] | { float: number };

function attribute(name: string, v: AttrValue): Uint8Array {
  // AttributeProto: name=1, f=2, i=3, ints=8, type=20 (FLOAT=1, INT=2, INTS=7)
  if (Array.isArray(v)) return bf(5, [bf(1, name), ...v.map((x) => vf(8, x)), vf(20, 7)]);
  if (typeof v === "object") return bf(5, [bf(1, name), ff(2, v.float), vf(20, 1)]);
  return bf(5, [bf(1, name), vf(3, v), vf(20, 2)]);
}

function valueInfo(name: string, elemType: number, dims: Dim[]): Uint8Array[] {
  const shape = dims.map((d) => bf(1, typeof d === "number" ? [vf(1, d)] : [bf(2, d)]));
  return [bf(1, name), bf(2, [bf(1, [vf(1, elemType), bf(2, shape)])])];
}

/** Builds one ONNX graph; node outputs get unique generated names. */
export class OnnxGraph {
  #nodes: Uint8Array[] = [];
  #inits: Uint8Array[] = [];
  #inputs: Uint8Array[] = [];
  #outputs: Uint8Array[] = [];
  #n = 0;
  /** Total initializer bytes. */
  initializerBytes = 0;

  /** Declare a graph input. */
  input(name: string, elemType: number, dims: Dim[]): string {
    this.#inputs.push(bf(11, valueInfo(name, elemType, dims)));
    return name;
  }

  /** Declare a graph output (an existing value, renamed through Identity). */
  output(value: string, name: string, elemType: number, dims: Dim[]): void {
    this.#nodes.push(bf(1, [bf(1, value), bf(2, name), bf(4, "Identity")]));
    this.#outputs.push(bf(12, valueInfo(name, elemType, dims)));
  }

  /** A float32 constant tensor (initializer). */
  float(data: Float32Array, dims: number[], hint = "w"): string {
    const name = `${hint}_${this.#n++}`;
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#inits.push(
      bf(5, [...dims.map((d) => vf(1, d)), vf(2, ONNX_FLOAT), bf(8, name), bf(9, raw)]),
    );
    this.initializerBytes += raw.length;
    return name;
  }

  /** An int64 constant tensor (initializer). */
  int64(values: number[], dims: number[] = [values.length], hint = "i"): string {
    const name = `${hint}_${this.#n++}`;
    const raw = new Uint8Array(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
    this.#inits.push(
      bf(5, [...dims.map((d) => vf(1, d)), vf(2, ONNX_INT64), bf(8, name), bf(9, raw)]),
    );
    return name;
  }

  /** Add a node; returns its output names (`outputs` of them). */
  nodeN(
    op: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs = 1,
  ): string[] {
    const outs = Array.from({ length: outputs }, () => `${op.toLowerCase()}_${this.#n++}`);
    this.#nodes.push(bf(1, [
      ...inputs.map((i) => bf(1, i)),
      ...outs.map((o) => bf(2, o)),
      bf(3, outs[0] + "_node"),
      bf(4, op),
      ...Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    ]));
    return outs;
  }

  /** Add a single-output node; returns its output name. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.nodeN(op, inputs, attrs, 1)[0];
  }

  /** Serialize as a ModelProto (IR 8, opset 17). */
  serialize(graphName: string, producer = "seap-edge"): Uint8Array {
    const graph = [
      ...this.#nodes,
      bf(2, graphName),
      ...this.#inits,
      ...this.#inputs,
      ...this.#outputs,
    ];
    return concat([
      vf(1, 8),
      bf(2, producer),
      bf(7, graph),
      bf(8, [bf(1, ""), vf(2, 17)]),
    ]);
  }
}
