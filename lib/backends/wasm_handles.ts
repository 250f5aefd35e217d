/**
 * The WASM backend's handles (tensors, weight buffers, index lists: byte offsets into the
 * backend's linear memory, owned by its {@link WasmHeap}) and the checks that turn a handle of
 * the `Backend` interface back into one of them: owner, liveness, then the argument checks
 * of ./arg_checks.ts.
 */

import type { IndexList, MatView, Tensor, WeightBuffer, WeightDType } from "./backend.ts";
import { Q8_BLOCK, Q8_BLOCK_BYTES } from "../formats/q8.ts";
import * as check from "./arg_checks.ts";
import type { WasmHeap } from "./wasm_heap.ts";

/** A tensor `[rows, cols]` of f32 at byte offset `ptr` in the owner's memory. */
export class WasmTensor implements Tensor {
  /** Set by `free`: any later use throws. */
  freed = false;
  /** A tensor of `owner` in the block `[ptr, ptr + bytes)`. */
  constructor(
    readonly owner: WasmHeap,
    readonly rows: number,
    readonly cols: number,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
}

/** A weight buffer of `length` elements, stored as `dtype`, at byte offset `ptr`. */
export class WasmWeights implements WeightBuffer {
  /** Set by `release`: any later use throws. */
  released = false;
  /** `length` weights of `owner` in the block `[ptr, ptr + bytes)`. */
  constructor(
    readonly owner: WasmHeap,
    readonly length: number,
    readonly dtype: WeightDType,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
  /** Bytes per element (f32 / f16 storage; q8 is addressed by blocks). */
  get esize(): number {
    return this.dtype === "f16" ? 2 : 4;
  }
}

/** An index list (i32) at byte offset `ptr` (its range is checked by ./arg_checks.ts). */
export class WasmIndices implements IndexList {
  /** Set by `release`: any later use throws. */
  released = false;
  /** Entries in the list. */
  readonly length: number;
  /** The list `host` (a copy kept on the host), stored in `[ptr, ptr + bytes)` of `owner`. */
  constructor(
    readonly owner: WasmHeap,
    readonly host: Int32Array,
    readonly ptr: number,
    readonly bytes: number,
  ) {
    this.length = host.length;
  }
}

/**
 * `what` ("op name") as [op, name] for an error message: the handle checks test first and split
 * only when a check fails, so a call that passes builds nothing.
 */
function opAndName(what: string): readonly [string, string] {
  const [op, name] = what.split(" ");
  return [op, name];
}

/** `x` as a live tensor of `owner`; `what` ("op name") names it in the error. */
export function tensorOf(owner: WasmHeap, x: Tensor, what: string): WasmTensor {
  if (!(x instanceof WasmTensor) || x.owner !== owner) {
    throw new TypeError(`wasm backend: ${what} is not a tensor of this backend`);
  }
  if (x.freed) throw new Error(`wasm backend: ${what} used after free`);
  return x;
}

/**
 * The live weight buffer of `owner` under view `v`. The view's bounds are not checked here: every
 * op checks them in its shared check first (./arg_checks.ts), so the handle check does not repeat
 * them; {@link weightsOf} checks both.
 */
export function ownWeights(owner: WasmHeap, v: MatView, what: string): WasmWeights {
  const b = v.buf;
  if (!(b instanceof WasmWeights) || b.owner !== owner) {
    throw new TypeError(`wasm backend: ${what} is not a weight buffer of this backend`);
  }
  if (b.released) throw new Error(`wasm backend: ${what} used after release`);
  return b;
}

/**
 * The live weight buffer of `owner` under view `v`, after checking the view lies inside it with
 * at least `needRows` rows (0: any): for a caller without a shared check of the view.
 */
export function weightsOf(
  owner: WasmHeap,
  v: MatView,
  what: string,
  needRows: number,
): WasmWeights {
  const b = ownWeights(owner, v, what);
  if (!check.viewFits(v, needRows)) {
    const [op, name] = opAndName(what);
    check.checkView(op, name ?? "view", v, needRows);
  }
  return b;
}

/**
 * Byte offset of a live index list of `owner`; 0 for `null` (all rows, as the kernels read a
 * null pointer). Its range is not checked here: every op that takes one checks it against the
 * op's row count in its shared check first (./arg_checks.ts, `checkIndices`).
 */
export function ownIndices(owner: WasmHeap, l: IndexList | null, what: string): number {
  if (l === null) return 0;
  if (!(l instanceof WasmIndices) || l.owner !== owner) {
    throw new TypeError(`wasm backend: ${what} is not an index list of this backend`);
  }
  if (l.released) throw new Error(`wasm backend: ${what} used after release`);
  return l.ptr;
}

/** Byte address of element (row 0, col 0) of a view (f32 / f16 storage; checked by the caller). */
export function viewAddr(v: MatView): number {
  const b = v.buf as WasmWeights;
  return b.ptr + v.offset * b.esize;
}

/**
 * Block address of row 0 of a q8 view; the q8 kernels need the view to start on a block
 * (offset, stride and cols multiples of 32), checked here (`what` names the view in the error).
 * Its row stride in blocks is {@link q8RowBlocks}.
 */
export function q8Addr(v: MatView, what: string): number {
  if (!check.q8ViewFits(v)) {
    const [op, name] = opAndName(what);
    check.checkQ8View(op, name, v);
  }
  return (v.buf as WasmWeights).ptr + (v.offset / Q8_BLOCK) * Q8_BLOCK_BYTES;
}

/** Row stride in q8 blocks of a view {@link q8Addr} accepted. */
export function q8RowBlocks(v: MatView): number {
  return (v.rows > 1 ? v.stride : v.cols) / Q8_BLOCK;
}
