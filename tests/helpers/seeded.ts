/** Seeded randomness shared by the tests: a PRNG and random kept-index subsets. */

import { rng } from "../../lib/util/seeded_rng.ts";
export { rng };
/** `keep` distinct indices of [0, n), sorted ascending (a mask's kept rows). */
export function subset(n: number, keep: number, r: () => number): Int32Array {
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return Int32Array.from(all.slice(0, keep).sort((a, b) => a - b));
}

/** `n` seeded values uniform in [-scale, scale). */
export function uniform(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** `n` seeded bell-shaped values (a sum of three uniforms, centred) times `scale`. */
export function bell(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() + r() + r() - 1.5) * scale;
  return a;
}
