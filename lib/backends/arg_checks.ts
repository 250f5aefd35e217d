/**
 * Argument checks shared by every backend: shapes, view bounds, index ranges and storage
 * dtypes of each {@link Backend} op, stated once so that every backend rejects the same bad
 * arguments with the same message (tests/backend_conformance_test.ts checks that). Each op of a
 * backend calls its check first, before any work is recorded or done; what stays in a backend
 * is what only it knows (a handle belongs to it and is still alive, its own size limits).
 *
 * Messages start with the op's name, then the shapes involved: `matmul: x [2, 8], w [5, 7], ...`.
 * Shape mismatches and out-of-range indices throw RangeError; mixed storage dtypes TypeError.
 */

import type { IndexList, MatView, Tensor, WeightDType } from "./backend.ts";
import { Q8_BLOCK } from "../formats/q8.ts";

/** Smallest and largest index of a list, computed once per list (the host copy is fixed). */
const ranges = new WeakMap<IndexList, { min: number; max: number; ints: boolean }>();

function rangeOf(l: IndexList): { min: number; max: number; ints: boolean } {
  let r = ranges.get(l);
  if (!r) {
    let min = Infinity, max = -Infinity, ints = true;
    for (const v of l.host) {
      if (v < min) min = v;
      if (v > max) max = v;
      if (!Number.isInteger(v)) ints = false;
    }
    r = { min, max, ints };
    ranges.set(l, r);
  }
  return r;
}

const shape = (t: Tensor) => `[${t.rows}, ${t.cols}]`;
const viewText = (v: MatView) => `(offset ${v.offset}, stride ${v.stride}, [${v.rows}, ${v.cols}])`;
const isCount = (n: number) => Number.isInteger(n) && n >= 0;

/**
 * True when every index of `l` lies in `[0, n)` (what {@link checkIndices} checks, without
 * building its message: a backend's per-call handle check asks this first).
 */
export function indicesFit(l: IndexList, n: number): boolean {
  if (l.length === 0) return true;
  const r = rangeOf(l);
  return r.ints && r.min >= 0 && r.max < n;
}

/**
 * Every index of `l` lies in `[0, n)`.
 * @throws RangeError naming the first index outside, its position and `what`.
 */
export function checkIndices(op: string, what: string, l: IndexList, n: number): void {
  if (indicesFit(l, n)) return;
  const i = l.host.findIndex((v) => !(v >= 0 && v < n));
  throw new RangeError(`${op}: ${what} index ${l.host[i]} at ${i} outside [0, ${n})`);
}

/**
 * True when a view lies inside its buffer with at least `minRows` rows (what
 * {@link checkView} checks, without building its message).
 */
export function viewFits(v: MatView, minRows = 0): boolean {
  const ok = isCount(v.offset) && isCount(v.rows) && isCount(v.cols) && v.rows >= minRows &&
    (v.rows <= 1 || (Number.isInteger(v.stride) && v.stride >= v.cols));
  return ok && !(v.rows > 0 && v.offset + (v.rows - 1) * v.stride + v.cols > v.buf.length);
}

/**
 * A view lies inside its buffer: non-negative whole offset and shape, at least `minRows`
 * rows, rows that do not overlap (`stride >= cols` when there are several), and its last
 * element within `buf.length`.
 */
export function checkView(op: string, what: string, v: MatView, minRows = 0): void {
  if (!viewFits(v, minRows)) {
    throw new RangeError(
      `${op}: ${what} view ${viewText(v)} does not fit a buffer of ${v.buf.length}` +
        (minRows > 0 ? ` with at least ${minRows} row` : ""),
    );
  }
}

/**
 * True when a q8 view starts on a block and its rows are whole blocks (what
 * {@link checkQ8View} checks, without building its message).
 */
export function q8ViewFits(v: MatView): boolean {
  const stride = v.rows > 1 ? v.stride : v.cols;
  return v.offset % Q8_BLOCK === 0 && stride % Q8_BLOCK === 0 && v.cols % Q8_BLOCK === 0;
}

/**
 * A q8 view starts on a block and its rows are whole blocks (offset, row stride and cols are
 * multiples of 32), as the q8 kernels need. Returns its first block and row stride in blocks.
 */
export function checkQ8View(op: string, what: string, v: MatView): { block0: number; sb: number } {
  const stride = v.rows > 1 ? v.stride : v.cols;
  if (!q8ViewFits(v)) {
    throw new RangeError(
      `${op}: q8 ${what} needs offset, stride and cols that are multiples of ${Q8_BLOCK} ` +
        viewText(v),
    );
  }
  return { block0: v.offset / Q8_BLOCK, sb: stride / Q8_BLOCK };
}

/** A tensor shape `[rows, cols]` of whole non-negative numbers. */
export function checkTensorShape(rows: number, cols: number): void {
  if (!isCount(rows) || !isCount(cols)) {
    throw new RangeError(`tensor: bad shape [${rows}, ${cols}]`);
  }
}

/** `data` fills tensor `t` exactly. */
export function checkWrite(t: Tensor, data: Float32Array): void {
  if (data.length !== t.rows * t.cols) {
    throw new RangeError(`write: ${data.length} values for a ${shape(t)} tensor`);
  }
}

/** {@link Backend.embed}: out `[ids.length, table.cols]`, every id a row of the table. */
export function checkEmbed(table: MatView, ids: Int32Array, out: Tensor): void {
  checkView("embed", "table", table);
  if (out.rows !== ids.length || out.cols !== table.cols) {
    throw new RangeError(
      `embed: out ${shape(out)} for ${ids.length} ids of width ${table.cols}`,
    );
  }
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < table.rows)) {
      throw new RangeError(`embed: token id ${ids[i]} at ${i} outside [0, ${table.rows})`);
    }
  }
}

/** {@link Backend.rmsNorm}: x and out `[T, G * weight.cols]`, weight one row. */
export function checkRmsNorm(x: Tensor, weight: MatView, out: Tensor): void {
  checkView("rmsNorm", "weight", weight, 1);
  const c = weight.cols;
  if (c === 0 || x.cols % c !== 0 || out.rows !== x.rows || out.cols !== x.cols) {
    throw new RangeError(`rmsNorm: x ${shape(x)}, out ${shape(out)}, weight ${c}`);
  }
}

/** {@link Backend.matmul}: x `[T, K]`, w `[N, K]`, out `[T, R]`, bias one row of N. */
export function checkMatmul(
  x: Tensor,
  w: MatView,
  rows: IndexList | null,
  bias: MatView | null,
  out: Tensor,
): void {
  checkView("matmul", "w", w);
  const R = rows ? rows.length : w.rows;
  if (x.cols !== w.cols || out.rows !== x.rows || out.cols !== R) {
    throw new RangeError(
      `matmul: x ${shape(x)}, w [${w.rows}, ${w.cols}], ${R} rows, out ${shape(out)}`,
    );
  }
  if (rows) checkIndices("matmul", "rows", rows, w.rows);
  if (bias) {
    checkView("matmul", "bias", bias, 1);
    if (bias.cols !== w.rows) {
      throw new RangeError(`matmul: bias of ${bias.cols} values for ${w.rows} rows`);
    }
  }
}

/** {@link Backend.matmulTAdd}: a `[T, R]`, w `[N, M]`, out `[T, M]`. */
export function checkMatmulTAdd(a: Tensor, w: MatView, rows: IndexList | null, out: Tensor): void {
  checkView("matmulTAdd", "w", w);
  const R = rows ? rows.length : w.rows;
  if (a.cols !== R || out.rows !== a.rows || out.cols !== w.cols) {
    throw new RangeError(
      `matmulTAdd: a ${shape(a)}, w [${w.rows}, ${w.cols}], ${R} rows, out ${shape(out)}`,
    );
  }
  if (rows) checkIndices("matmulTAdd", "rows", rows, w.rows);
}

/**
 * {@link Backend.ffn}: x `[T, K]`, gate and up `[N, K]`, downT `[N, M]`, out `[T, M]`, act
 * `[T, R]`; the three matrices share one storage dtype.
 */
export function checkFfn(
  x: Tensor,
  gate: MatView,
  up: MatView,
  downT: MatView,
  rows: IndexList | null,
  out: Tensor,
  act: Tensor | null,
): void {
  checkView("ffn", "gate", gate);
  checkView("ffn", "up", up);
  checkView("ffn", "downT", downT);
  const N = gate.rows, K = gate.cols;
  const R = rows ? rows.length : N;
  if (
    x.cols !== K || up.rows !== N || up.cols !== K || downT.rows !== N || out.rows !== x.rows ||
    out.cols !== downT.cols || (act !== null && (act.rows !== x.rows || act.cols !== R))
  ) {
    throw new RangeError(
      `ffn: x ${shape(x)}, gate [${N}, ${K}], up [${up.rows}, ${up.cols}], downT ` +
        `[${downT.rows}, ${downT.cols}], ${R} rows, out ${shape(out)}` +
        (act ? `, act ${shape(act)}` : ""),
    );
  }
  if (rows) checkIndices("ffn", "rows", rows, N);
  const dt = (v: MatView) => (v.buf as { dtype?: WeightDType }).dtype;
  if (dt(gate) !== dt(up) || dt(gate) !== dt(downT)) {
    throw new TypeError(
      `ffn: gate, up and downT must share a storage dtype (${dt(gate)}, ${dt(up)}, ` +
        `${dt(downT)})`,
    );
  }
}

/** {@link Backend.siluMul}: gate, up and out of one shape. */
export function checkSiluMul(gate: Tensor, up: Tensor, out: Tensor): void {
  if (
    up.rows !== gate.rows || up.cols !== gate.cols || out.rows !== gate.rows ||
    out.cols !== gate.cols
  ) {
    throw new RangeError(`siluMul: gate ${shape(gate)}, up ${shape(up)}, out ${shape(out)}`);
  }
}

/** {@link Backend.rope}: x `[T, nh * headDim]`, even headDim, invFreq one row of >= d/2. */
export function checkRope(x: Tensor, headDim: number, pos0: number, invFreq: MatView): void {
  checkView("rope", "invFreq", invFreq, 1);
  if (
    !(Number.isInteger(headDim) && headDim > 0 && headDim % 2 === 0) || x.cols % headDim !== 0 ||
    invFreq.cols < headDim / 2 || !isCount(pos0)
  ) {
    throw new RangeError(
      `rope: x ${shape(x)}, headDim ${headDim}, invFreq ${invFreq.cols}, pos0 ${pos0}`,
    );
  }
}

/** {@link Backend.addRow}: bias one row as wide as x. */
export function checkAddRow(x: Tensor, bias: MatView): void {
  checkView("addRow", "bias", bias, 1);
  if (bias.cols !== x.cols) throw new RangeError(`addRow: bias ${bias.cols} for x ${shape(x)}`);
}

/** {@link Backend.add}: x and y of one shape. */
export function checkAdd(x: Tensor, y: Tensor): void {
  if (x.rows !== y.rows || x.cols !== y.cols) {
    throw new RangeError(`add: x ${shape(x)}, y ${shape(y)}`);
  }
}

/**
 * The kv cache layout shared by kvWrite and attention: cache `[nKv * maxT, d]`, `T` new
 * positions from `pos0` inside `[0, maxT)`. Returns nKv.
 */
function cacheHeads(op: string, cache: Tensor, T: number, maxT: number, pos0: number): number {
  if (!(Number.isInteger(maxT) && maxT > 0) || cache.rows % maxT !== 0) {
    throw new RangeError(`${op}: cache ${shape(cache)} is not a whole number of maxT ${maxT}`);
  }
  if (!isCount(pos0) || pos0 + T > maxT) {
    throw new RangeError(`${op}: positions ${pos0}..${pos0 + T} outside maxT ${maxT}`);
  }
  return cache.rows / maxT;
}

/** {@link Backend.kvWrite}: kv `[T, heads.length * d]`, heads among the cache's kv heads. */
export function checkKvWrite(
  cache: Tensor,
  kv: Tensor,
  heads: IndexList,
  maxT: number,
  pos0: number,
): void {
  const nKv = cacheHeads("kvWrite", cache, kv.rows, maxT, pos0);
  if (kv.cols !== heads.length * cache.cols) {
    throw new RangeError(
      `kvWrite: kv ${shape(kv)} for ${heads.length} heads of ${cache.cols}`,
    );
  }
  checkIndices("kvWrite", "heads", heads, nKv);
}

/** {@link Backend.attention}: q and out `[T, S * d]`, caches `[nKv * maxT, d]`. */
export function checkAttention(
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  kvOf: IndexList,
  maxT: number,
  pos0: number,
  out: Tensor,
): void {
  const nKv = cacheHeads("attention", kCache, q.rows, maxT, pos0);
  const S = kvOf.length, d = kCache.cols;
  if (
    vCache.rows !== kCache.rows || vCache.cols !== d || q.cols !== S * d ||
    out.rows !== q.rows || out.cols !== S * d
  ) {
    throw new RangeError(
      `attention: q ${shape(q)}, caches ${shape(kCache)} / ${shape(vCache)}, ${S} slots, ` +
        `out ${shape(out)}`,
    );
  }
  checkIndices("attention", "kvOf", kvOf, nKv);
}

/** {@link Backend.copyRows}: both ranges inside their tensors, no overlap within one tensor. */
export function checkCopyRows(
  src: Tensor,
  srcRow: number,
  count: number,
  dst: Tensor,
  dstRow: number,
): void {
  if (
    src.cols !== dst.cols || !isCount(srcRow) || !isCount(dstRow) || !isCount(count) ||
    srcRow + count > src.rows || dstRow + count > dst.rows
  ) {
    throw new RangeError(
      `copyRows: ${count} rows from ${srcRow} of ${shape(src)} to ${dstRow} of ${shape(dst)}`,
    );
  }
  if (src === dst && srcRow !== dstRow && Math.abs(srcRow - dstRow) < count) {
    throw new RangeError("copyRows: overlapping copy within one tensor");
  }
}

/**
 * Checks a {@link Backend.writeWeights} piece against a buffer of `length` values stored as
 * `dtype`: `data` is whole rows of `rowLen` values every `stride`, inside the buffer, and for
 * q8 block-aligned (see {@link Backend.writeWeights}). Returns the number of rows.
 */
export function checkWriteWeights(
  length: number,
  dtype: WeightDType | undefined,
  offset: number,
  data: Float32Array,
  rowLen: number,
  stride: number,
): number {
  const rows = rowLen > 0 ? data.length / rowLen : 0;
  if (!(Number.isInteger(rows) && Number.isInteger(stride) && (rows <= 1 || stride >= rowLen))) {
    throw new RangeError(
      `writeWeights: ${data.length} values are not rows of ${rowLen} every ${stride}`,
    );
  }
  const end = offset + (rows > 0 ? (rows - 1) * stride + rowLen : 0);
  if (!(Number.isInteger(offset) && offset >= 0 && end <= length)) {
    throw new RangeError(`writeWeights: values [${offset}, ${end}) outside [0, ${length})`);
  }
  if (dtype === "q8") {
    const whole = (n: number) => n % Q8_BLOCK === 0;
    if (
      !whole(offset) ||
      (rows > 1 ? !whole(stride) || !whole(rowLen) : !whole(rowLen) && end !== length)
    ) {
      throw new RangeError(`writeWeights: q8 piece [${offset}, ${end}) is not block-aligned`);
    }
  }
  return rows;
}
