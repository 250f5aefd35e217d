/**
 * The conformance suite's comparison: |got - want| <= atol + rtol * max(|want|, rms(want)),
 * failing with the worst error, its index and both values.
 */

import assert from "node:assert/strict";

/** Default relative tolerance of the backend tests (f32 arithmetic). */
export const RTOL = 1e-5;
/** Default absolute tolerance of the backend tests. */
export const ATOL = 1e-5;

/** Check got against want; on failure report the worst error, its index and both values. */
export function assertClose(
  what: string,
  got: Float32Array,
  want: ArrayLike<number>,
  rtol = RTOL,
  atol = ATOL,
): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  let ss = 0;
  for (let i = 0; i < want.length; i++) ss += want[i] * want[i];
  const rms = Math.sqrt(ss / Math.max(1, want.length));
  let worst = -1, worstRatio = 0, worstErr = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const tol = atol + rtol * Math.max(Math.abs(want[i]), rms);
    const ratio = err === 0 ? 0 : err / tol;
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worst = i;
      worstErr = err;
    }
  }
  assert.ok(
    worstRatio <= 1,
    `${what}: worst |err| ${worstErr.toExponential(3)} at index ${worst} ` +
      `(got ${got[worst]}, want ${want[worst]}, rms ${rms.toExponential(3)}, ` +
      `${worstRatio.toFixed(1)}x tolerance)`,
  );
}
