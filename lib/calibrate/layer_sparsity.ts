/**
 * Per-layer sparsity schedules (DESIGN §4.3): UL-UM (uniform) and SEAP's logistic UL-LD.
 * AL-AM is a global selection, see `select_mask.ts`.
 */

/** Parameters of the logistic UL-LD schedule. */
export interface LogisticParams {
  /** Leading layers kept dense (ratio 0). Paper default 2. */
  m: number;
  /** Trailing layers kept dense. Paper default 2. */
  n: number;
  /** Steepness. Paper default 1.2. */
  k: number;
  /** Midpoint in [0, 1]. Paper default 0.3. */
  x0: number;
}

/** The paper code's defaults. */
export const DEFAULT_LOGISTIC: LogisticParams = { m: 2, n: 2, k: 1.2, x0: 0.3 };

/** UL-UM: the same ratio in every one of `numLayers` layers. */
export function uniformSchedule(numLayers: number, ratio: number): number[] {
  checkRatio(ratio);
  return Array.from({ length: numLayers }, () => ratio);
}

/**
 * UL-LD: layers [0, m) and the last n layers get 0; prunable layer l (i = l - m, P of them)
 * gets rho_l = Lambda / (1 + exp(-k (x_l - x0))) with x_l = i / (P - 1) (0 when P = 1), and
 * Lambda found by bisection so the mean of rho over the prunable layers equals `target`.
 * Ratios are clipped to [0, 1]; returns the schedule and Lambda.
 */
export function logisticSchedule(
  numLayers: number,
  target: number,
  p: LogisticParams = DEFAULT_LOGISTIC,
): { rho: number[]; lambda: number } {
  checkRatio(target);
  const P = numLayers - p.m - p.n;
  if (P <= 0) {
    throw new Error(
      `logistic schedule: m=${p.m} + n=${p.n} protected layers leave none of ${numLayers} to prune`,
    );
  }
  const shape = Array.from({ length: P }, (_, i) => {
    const x = P > 1 ? i / (P - 1) : 0;
    return 1 / (1 + Math.exp(-p.k * (x - p.x0)));
  });
  const build = (lambda: number) => {
    const rho = new Array<number>(numLayers).fill(0);
    for (let i = 0; i < P; i++) rho[p.m + i] = Math.min(1, Math.max(0, lambda * shape[i]));
    return rho;
  };
  const meanOf = (rho: number[]) => rho.reduce((a, b) => a + b, 0) / P;
  if (target === 0) return { rho: build(0), lambda: 0 };
  let lo = 0;
  let hi = 1;
  while (meanOf(build(hi)) < target) {
    hi *= 2;
    if (hi > 1e6) throw new Error(`logistic schedule: target ${target} unreachable`);
  }
  for (let it = 0; it < 200 && hi - lo > 1e-15 * hi; it++) {
    const mid = (lo + hi) / 2;
    if (meanOf(build(mid)) < target) lo = mid;
    else hi = mid;
  }
  const lambda = (lo + hi) / 2;
  return { rho: build(lambda), lambda };
}

function checkRatio(r: number): void {
  if (!(r >= 0 && r < 1)) throw new Error(`sparsity ratio must be in [0, 1), got ${r}`);
}
