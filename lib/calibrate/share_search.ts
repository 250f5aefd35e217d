/**
 * Finding a method's nominal knob (the schedule's target, the uniform ratio, AL-AM's cost
 * share) whose selection removes a requested share of decoder parameters (docs/design.md,
 * Masks): masks are named and requested by that share, so every comparison is at equal cost.
 */

/** Tolerance on the achieved share of decoder parameters removed (absolute, ±1 point). */
export const SHARE_TOLERANCE = 0.01;

/** Error for a share a method cannot reach within {@link SHARE_TOLERANCE}. */
export class ShareError extends Error {
  override name = "ShareError";
}

/** Result of {@link searchShare}. */
export interface ShareSearch<T> {
  /** The knob value chosen. */
  knob: number;
  /** The share of decoder parameters its selection removes. */
  achieved: number;
  /** What `evaluate` returned for it (e.g. the selection). */
  value: T;
}

/**
 * Bisection over a knob in [0, hi] for a selection whose share removed (`evaluate(knob).share`)
 * grows with the knob in steps: finds the smallest knob whose share reaches `share`, then
 * keeps it or the step below, whichever is closer. Throws {@link ShareError} when the closest
 * share misses by more than `tolerance` (e.g. `share` beyond what the knob can reach below
 * `hi`), naming `what` and the highest share reachable.
 */
export function searchShare<T>(
  what: string,
  share: number,
  hi: number,
  evaluate: (knob: number) => { share: number; value: T },
  tolerance = SHARE_TOLERANCE,
): ShareSearch<T> {
  if (!(share >= 0 && share < 1)) {
    throw new ShareError(`${what}: share ${share} is not in [0, 1)`);
  }
  let lo = { knob: 0, ...evaluate(0) };
  let top = { knob: hi, ...evaluate(hi) };
  if (top.share < share - tolerance) {
    throw new ShareError(
      `${what}: cannot remove ${pct(share)} of decoder parameters; the most it reaches is ` +
        `${pct(top.share)}`,
    );
  }
  if (lo.share >= share) top = lo;
  else {
    for (let it = 0; it < 60 && top.knob - lo.knob > 1e-12; it++) {
      const knob = (lo.knob + top.knob) / 2;
      const r = { knob, ...evaluate(knob) };
      if (r.share >= share) top = r;
      else lo = r;
    }
  }
  const best = Math.abs(top.share - share) <= Math.abs(lo.share - share) ? top : lo;
  if (Math.abs(best.share - share) > tolerance + 1e-12) {
    throw new ShareError(
      `${what}: the closest selection removes ${pct(best.share)} of decoder parameters, ` +
        `not ${pct(share)} ± ${pct(tolerance)}`,
    );
  }
  return { knob: best.knob, achieved: best.share, value: best.value };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}
