/**
 * The WebGPU kernel table: for each WGSL op (kernels/wgsl/<file>.wgsl) its bindings, the
 * override constants it declares, its uniform fields by name and type, and module constants
 * shared with the host code. The uniform fields are defined only here: the WGSL `struct U`
 * and its binding are generated from the table and replace the kernel's `//!include uniforms`
 * line, and {@link packUniforms} writes the same fields, by name, at the offsets the struct
 * gives them. Constants (`consts`) are likewise emitted as WGSL `const`s, so a value such as
 * TT (tokens per workgroup) is written once and read by both sides.
 */

import { expandIncludes, loadWgslIncludes } from "./wgsl_include.ts";

/** Binding kinds: u = uniform (dynamic offset), s = read-write storage, r = read-only storage. */
export type BindKind = "u" | "s" | "r";

/** Pipeline-overridable constants: packed-f16 weight / bias / up, aligned vec4 path, rope table. */
export interface Flags {
  W_F16?: boolean;
  B_F16?: boolean;
  U_F16?: boolean;
  VEC?: boolean;
  TABLE?: boolean;
  /** matmul_rows / ffn_gate_up: lanes per output row. */
  LANES?: number;
}

/** One uniform field: WGSL name, scalar type and an optional comment for the struct. */
export interface UniformField {
  readonly name: string;
  readonly type: "u32" | "f32";
  readonly doc?: string;
}

/** What the host must know about one kernel file. */
export interface KernelSpec {
  /** File under kernels/wgsl/ without extension. */
  readonly file: string;
  /** Binding 0 is the uniform struct; the rest are the storage buffers in order. */
  readonly bindings: readonly BindKind[];
  /** Override constants the shader declares. */
  readonly overrides: readonly (keyof Flags)[];
  /** Fields of `struct U`, in struct order (padding is added after them). */
  readonly uniforms: readonly UniformField[];
  /** Module-scope u32 constants emitted into the shader and used by the host. */
  readonly consts?: Readonly<Record<string, number>>;
}

const u = (name: string, doc?: string): UniformField => ({ name, type: "u32", doc });
const f = (name: string, doc?: string): UniformField => ({ name, type: "f32", doc });

/** Tokens per workgroup of the tiled matmul kernels. */
const TT = 4;

/** Every kernel of the backend. */
export const KERNELS = {
  matmul_rows: {
    file: "matmul_rows",
    bindings: ["u", "r", "s", "r", "r", "s"],
    overrides: ["W_F16", "B_F16", "VEC", "LANES"],
    uniforms: [
      u("T"),
      u("K"),
      u("R", "out columns (row stride of out)"),
      u("p_base"),
      u("p_count"),
      u("w_base"),
      u("w_stride"),
      u("row0"),
      u("has_rows"),
      u("has_bias"),
      u("b_base", "bias element of row0, binding-relative"),
    ],
    consts: { TT },
  },
  matmul_t_add: {
    file: "matmul_t_add",
    bindings: ["u", "r", "s", "r", "s", "s"],
    overrides: ["W_F16", "VEC"],
    uniforms: [
      u("T"),
      u("M"),
      u("R", "a columns (row stride of a)"),
      u("p_base"),
      u("p_count"),
      u("w_base"),
      u("w_stride"),
      u("row0"),
      u("has_rows"),
      u("split", "positions per slice"),
      u("n_split"),
    ],
    consts: { TT },
  },
  ffn_gate_up: {
    file: "ffn_gate_up",
    bindings: ["u", "r", "s", "r", "r", "s"],
    overrides: ["W_F16", "U_F16", "VEC", "LANES"],
    uniforms: [
      u("T"),
      u("K"),
      u("R", "act columns (row stride of act)"),
      u("p_base"),
      u("p_count"),
      u("w_base", "gate"),
      u("w_stride"),
      u("row0"),
      u("has_rows"),
      u("u_base", "up"),
      u("u_stride"),
    ],
    consts: { TT },
  },
  attention: {
    file: "attention",
    bindings: ["u", "s", "s", "s", "r", "s", "s"],
    overrides: [],
    uniforms: [
      u("T"),
      u("S"),
      u("d"),
      u("max_t"),
      u("pos0"),
      f("scale"),
      u("chunk", "positions per chunk (multiple of 64)"),
      u("n_chunk"),
    ],
  },
  rms_norm: {
    file: "rms_norm",
    bindings: ["u", "s", "r", "s"],
    overrides: ["W_F16"],
    uniforms: [u("n_groups", "T * G"), u("gs"), u("w_base"), f("eps")],
  },
  rope: {
    file: "rope",
    bindings: ["u", "s", "r", "r"],
    overrides: ["W_F16", "TABLE"],
    uniforms: [u("T"), u("nh"), u("d"), u("pos0"), u("f_base")],
  },
  silu_mul: { file: "silu_mul", bindings: ["u", "s", "s", "s"], overrides: [], uniforms: [u("n")] },
  add: { file: "add", bindings: ["u", "s", "s"], overrides: [], uniforms: [u("n")] },
  add_row: {
    file: "add_row",
    bindings: ["u", "s", "r"],
    overrides: ["W_F16"],
    uniforms: [u("n", "T * cols"), u("cols"), u("b_base")],
  },
  embed: {
    file: "embed",
    bindings: ["u", "r", "r", "s"],
    overrides: ["W_F16"],
    uniforms: [u("t_base"), u("t_count"), u("cols"), u("w_base"), u("w_stride"), u("row0")],
  },
  kv_write: {
    file: "kv_write",
    bindings: ["u", "s", "s", "r"],
    overrides: [],
    uniforms: [u("T"), u("nh"), u("d"), u("max_t"), u("pos0")],
  },
  copy_rows: {
    file: "copy_rows",
    bindings: ["u", "s", "s"],
    overrides: [],
    uniforms: [u("n"), u("src_off"), u("dst_off")],
  },
  zero: { file: "zero", bindings: ["u", "s"], overrides: [], uniforms: [u("n")] },
  write_halves: {
    file: "write_halves",
    bindings: ["u", "r", "s"],
    overrides: [],
    uniforms: [
      u("rows"),
      u("len", "halves per row"),
      u("src_base", "first half of row 0 in src"),
      u("dst_base", "first half of row 0 in dst, binding-relative"),
      u("dst_stride", "halves between rows in dst"),
      u("wpr", "threads per row"),
    ],
  },
  quantize_q8: {
    file: "quantize_q8",
    bindings: ["u", "s", "s"],
    overrides: [],
    uniforms: [u("T"), u("K"), u("q_base", "first word of the packed values (= T * K / 32)")],
  },
  matmul_rows_q8: {
    file: "matmul_rows_q8",
    bindings: ["u", "r", "s", "r", "r", "s"],
    overrides: ["B_F16"],
    uniforms: [
      u("T"),
      u("K"),
      u("R"),
      u("w_block0"),
      u("w_sb", "row stride in blocks"),
      u("has_rows"),
      u("has_bias"),
      u("b_base", "bias element of row 0"),
      u("q_base", "first word of the packed activations in xq"),
    ],
  },
  matmul_t_add_q8: {
    file: "matmul_t_add_q8",
    bindings: ["u", "r", "s", "r", "s"],
    overrides: [],
    uniforms: [u("T"), u("M"), u("R"), u("w_block0"), u("w_sb"), u("has_rows")],
  },
  ffn_gate_up_q8: {
    file: "ffn_gate_up_q8",
    bindings: ["u", "r", "r", "s", "r", "s"],
    overrides: [],
    uniforms: [
      u("T"),
      u("K"),
      u("R"),
      u("g_block0"),
      u("g_sb"),
      u("u_block0"),
      u("u_sb"),
      u("has_rows"),
      u("q_base"),
    ],
  },
  embed_q8: {
    file: "embed_q8",
    bindings: ["u", "r", "r", "s"],
    overrides: [],
    uniforms: [u("T"), u("cols"), u("w_base"), u("w_stride")],
  },
} as const satisfies Record<string, KernelSpec>;

/** Name of a kernel in {@link KERNELS}. */
export type KernelName = keyof typeof KERNELS;

/** The uniform values of one kernel's dispatch, every field by name. */
export type UniformsOf<K extends KernelName> = {
  [F in (typeof KERNELS)[K]["uniforms"][number]["name"]]: number;
};

/** Fields per 16-byte row of a uniform struct: structs are padded to whole rows. */
const ROW_FIELDS = 4;

/**
 * The WGSL text that stands for a kernel's `//!include uniforms` line: its constants, `struct
 * U` with every field of the table (then padding to a multiple of 16 bytes) and the uniform
 * binding `u` at group 0, binding 0.
 */
export function uniformsWgsl(spec: KernelSpec): string {
  const lines = [`// Generated from KERNELS.${spec.file} in lib/backends/webgpu_kernels.ts.`];
  for (const [name, value] of Object.entries(spec.consts ?? {})) {
    lines.push(`const ${name}: u32 = ${value}u;`);
  }
  lines.push("struct U {");
  for (const fd of spec.uniforms) {
    lines.push(`  ${fd.name}: ${fd.type},${fd.doc ? ` // ${fd.doc}` : ""}`);
  }
  const n = spec.uniforms.length;
  const padded = Math.max(ROW_FIELDS, Math.ceil(n / ROW_FIELDS) * ROW_FIELDS);
  for (let i = n; i < padded; i++) lines.push(`  _p${i - n}: u32,`);
  lines.push("}", "", "@group(0) @binding(0) var<uniform> u: U;");
  return lines.join("\n") + "\n";
}

/** Bytes of a kernel's uniform struct (what {@link packUniforms} writes). */
export function uniformBytes(spec: KernelSpec): number {
  return Math.max(ROW_FIELDS, Math.ceil(spec.uniforms.length / ROW_FIELDS) * ROW_FIELDS) * 4;
}

/**
 * Write one dispatch's uniforms at byte `base` of `view`, each field at its struct offset
 * (4 bytes a field, in table order) as u32 or f32, then zeros for the padding.
 * @throws RangeError when a field is missing, or a u32 field is not a whole number in range.
 */
export function packUniforms(
  view: DataView,
  base: number,
  spec: KernelSpec,
  values: Readonly<Record<string, number>>,
): void {
  spec.uniforms.forEach((fd, i) => {
    const v = values[fd.name];
    if (fd.type === "f32") {
      view.setFloat32(base + 4 * i, v, true);
      return;
    }
    if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new RangeError(`webgpu: uniform ${spec.file}.${fd.name} = ${v} is not a u32`);
    }
    view.setUint32(base + 4 * i, v, true);
  });
  for (let at = 4 * spec.uniforms.length; at < uniformBytes(spec); at += 4) {
    view.setUint32(base + at, 0, true);
  }
}

/**
 * The full WGSL source of one kernel: its `//!include` lines replaced by the shared helpers of
 * kernels/wgsl/include/ and by its generated uniforms ({@link uniformsWgsl}).
 */
export function kernelSource(
  spec: KernelSpec,
  source: string,
  includes: ReadonlyMap<string, string>,
): string {
  const all = new Map(includes);
  all.set("uniforms", uniformsWgsl(spec));
  return expandIncludes(source, spec.file, all);
}

/** Read and expand every kernel (kernels/wgsl/<file>.wgsl): file name -> WGSL source. */
export async function loadKernelSources(): Promise<Map<string, string>> {
  const includes = await loadWgslIncludes();
  const out = new Map<string, string>();
  for (const spec of Object.values(KERNELS) as KernelSpec[]) {
    const url = new URL(`../../kernels/wgsl/${spec.file}.wgsl`, import.meta.url);
    out.set(spec.file, kernelSource(spec, await Deno.readTextFile(url), includes));
  }
  return out;
}
