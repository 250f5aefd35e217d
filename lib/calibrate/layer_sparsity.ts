/**
 * Per-layer sparsity schedules (docs/design.md, Layer sparsity): UL-UM (uniform) and SEAP's
 * logistic UL-LD with the paper's whole-model target. AL-AM is a global selection, see
 * `select_mask.ts`.
 */

/** Parameters of the logistic UL-LD schedule. */
export interface LogisticParams {
  /** Leading layers kept dense (ratio 0); also the layer the router's feature is read after. */
  m: number;
  /** Trailing layers kept dense. */
  n: number;
  /** Steepness. Paper default 1.2. */
  k: number;
  /** Midpoint in [0, 1]. Paper default 0.3. */
  x0: number;
}

/** Logistic parameters as requested: m and n left out are derived from the depth. */
export type LogisticOptions = Partial<LogisticParams>;

/** The paper code's k and x0 (m and n depend on the depth, {@link defaultProtectedLayers}). */
export const DEFAULT_LOGISTIC: LogisticOptions = { k: 1.2, x0: 0.3 };

/**
 * Protected layers on each side for a model of `numLayers` layers: the paper's 2 from 32
 * layers on; on shallower models 1/16 of the layers (rounded), at least 1 (8 layers -> 1,
 * 24 layers -> 2).
 */
export function defaultProtectedLayers(numLayers: number): number {
  return numLayers >= 32 ? 2 : Math.max(1, Math.round(numLayers / 16));
}

/** Fill in m and n (from the depth) and k, x0 (the paper's) where `o` leaves them out. */
export function resolveLogistic(numLayers: number, o: LogisticOptions = {}): LogisticParams {
  const p = defaultProtectedLayers(numLayers);
  const r = { m: o.m ?? p, n: o.n ?? p, k: o.k ?? 1.2, x0: o.x0 ?? 0.3 };
  for (const [name, v] of [["m", r.m], ["n", r.n]] as const) {
    if (!(Number.isInteger(v) && v >= 0)) {
      throw new Error(`logistic schedule: ${name} must be a whole number >= 0, got ${v}`);
    }
  }
  if (!Number.isFinite(r.k) || !Number.isFinite(r.x0)) {
    throw new Error(`logistic schedule: k and x0 must be finite numbers`);
  }
  if (numLayers - r.m - r.n <= 0) {
    throw new Error(
      `logistic schedule: m=${r.m} + n=${r.n} protected layers leave none of ${numLayers} to prune`,
    );
  }
  return r;
}

/** Error for a whole-model target the schedule can reach only by emptying a layer. */
export class ScheduleError extends Error {
  override name = "ScheduleError";
}

/** UL-UM: the same ratio in every one of `numLayers` layers. */
export function uniformSchedule(numLayers: number, ratio: number): number[] {
  checkRatio(ratio);
  return Array.from({ length: numLayers }, () => ratio);
}

/** Logistic shape of the prunable layers: sigmoid(k (x_i - x0)), x_i = i / (P - 1). */
function logisticShape(P: number, p: LogisticParams): number[] {
  return Array.from({ length: P }, (_, i) => {
    const x = P > 1 ? i / (P - 1) : 0;
    return 1 / (1 + Math.exp(-p.k * (x - p.x0)));
  });
}

/**
 * The highest whole-model target the logistic schedule reaches with every layer keeping
 * something: the G at which the largest rho_l reaches 1, i.e. (P / L) * mean(shape) /
 * max(shape) with P = L - m - n prunable layers.
 */
export function maxLogisticTarget(numLayers: number, p: LogisticParams): number {
  const P = numLayers - p.m - p.n;
  const s = logisticShape(P, p);
  return (P / numLayers) * (s.reduce((a, b) => a + b, 0) / P) / Math.max(...s);
}

/** Result of {@link logisticSchedule}. */
export interface LogisticSchedule {
  /** [L] per-layer ratio; 0 on the protected layers. */
  rho: number[];
  /** Lambda found by bisection. */
  lambda: number;
  /** G' = min(1, G L / (L - m - n)): the mean ratio over the prunable layers. */
  prunableTarget: number;
}

/**
 * UL-LD with the paper's whole-model target G: layers [0, m) and the last n layers get 0;
 * prunable layer l (i = l - m, P of them) gets rho_l = min(1, Lambda / (1 + exp(-k (x_l -
 * x0)))) with x_l = i / (P - 1) (0 when P = 1), Lambda found by bisection so the mean of rho
 * over the prunable layers is G' = min(1, G L / (L - m - n)); the mean over all L layers is
 * then G. A target at which some rho_l would reach 1 (an emptied layer) throws
 * {@link ScheduleError} naming the highest reachable target, unless `allowEmptyLayers`.
 */
export function logisticSchedule(
  numLayers: number,
  target: number,
  p: LogisticParams,
  opts: { allowEmptyLayers?: boolean } = {},
): LogisticSchedule {
  checkRatio(target);
  const P = numLayers - p.m - p.n;
  if (P <= 0) {
    throw new Error(
      `logistic schedule: m=${p.m} + n=${p.n} protected layers leave none of ${numLayers} to prune`,
    );
  }
  const gMax = maxLogisticTarget(numLayers, p);
  if (target >= gMax && !opts.allowEmptyLayers) {
    throw new ScheduleError(
      `logistic schedule: a whole-model target of ${target} empties a layer (rho = 1) with ` +
        `L=${numLayers}, m=${p.m}, n=${p.n}, k=${p.k}, x0=${p.x0}; the highest target that ` +
        `keeps every layer is just below ${gMax.toFixed(4)} (allow emptied layers explicitly, ` +
        `or protect fewer layers)`,
    );
  }
  const prunableTarget = Math.min(1, target * numLayers / P);
  const shape = logisticShape(P, p);
  const build = (lambda: number) => {
    const rho = new Array<number>(numLayers).fill(0);
    for (let i = 0; i < P; i++) rho[p.m + i] = Math.min(1, Math.max(0, lambda * shape[i]));
    return rho;
  };
  const meanOf = (rho: number[]) => rho.reduce((a, b) => a + b, 0) / P;
  if (target === 0) return { rho: build(0), lambda: 0, prunableTarget };
  if (prunableTarget >= 1) return { rho: build(Infinity), lambda: Infinity, prunableTarget };
  let lo = 0;
  let hi = 1;
  while (meanOf(build(hi)) < prunableTarget) hi *= 2;
  for (let it = 0; it < 200 && hi - lo > 1e-15 * hi; it++) {
    const mid = (lo + hi) / 2;
    if (meanOf(build(mid)) < prunableTarget) lo = mid;
    else hi = mid;
  }
  const lambda = (lo + hi) / 2;
  return { rho: build(lambda), lambda, prunableTarget };
}

function checkRatio(r: number): void {
  if (!(r >= 0 && r < 1)) throw new Error(`sparsity ratio must be in [0, 1), got ${r}`);
}
