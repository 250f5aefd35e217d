/** Helpers shared by the letter-level skills: random letter strings, spelled out with spaces. */

import type { Rng } from "./rng.ts";

/** The 26 lowercase ASCII letters. */
export const ALPHABET = "abcdefghijklmnopqrstuvwxyz";

/** A random lowercase string of length in [minLen, maxLen]. */
export function randomLetters(rng: Rng, minLen: number, maxLen: number): string {
  const n = rng.int(minLen, maxLen);
  let s = "";
  for (let i = 0; i < n; i++) s += rng.pick(ALPHABET.split(""));
  return s;
}

/** "cat" -> "c a t": one token-level unit per letter for a BPE tokenizer. */
export function spell(word: string): string {
  return word.split("").join(" ");
}

/** Up to `n` distinct distractors produced by `make`, none equal to `answer`. */
export function distractors(
  rng: Rng,
  answer: string,
  n: number,
  make: (rng: Rng) => string,
): string[] {
  const out = new Set<string>();
  for (let tries = 0; out.size < n && tries < 100; tries++) {
    const d = make(rng);
    if (d !== answer) out.add(d);
  }
  return [...out];
}

/** Answer plus distractors in a seeded random order. */
export function withChoices(rng: Rng, answer: string, others: string[]): string[] {
  return rng.shuffle([answer, ...others]);
}
