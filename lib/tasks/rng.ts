/**
 * Seeded randomness and content hashing for the task suite. Everything the suite
 * generates is a pure function of a seed, so `deno task data` is deterministic.
 */

import { rng } from "../util/seeded_rng.ts";

/** A small, fast, seeded pseudo-random generator (mulberry32). */
export class Rng {
  #next: () => number;

  /** Start a stream from a 32-bit seed. */
  constructor(seed: number) {
    this.#next = rng(seed);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** FNV-1a 32-bit hash of a string's UTF-16 code units with a final mix; stable everywhere. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32): FNV-1a's low bits are a plain parity of the input
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Derive a sub-seed from a seed and a label, so each task gets its own stream. */
export function subSeed(seed: number, label: string): number {
  return hash32(`${seed}:${label}`);
}
