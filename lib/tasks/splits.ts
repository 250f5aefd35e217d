/**
 * Disjoint train / calibration / eval splits by construction: the split of an instance is a
 * function of its content hash (and of whether its phrasing is held out of training).
 */

import { hash32 } from "./rng.ts";
import type { Instance } from "./task.ts";

/** The three splits of the suite. */
export type Split = "train" | "calibration" | "eval";

/** Stable content id of an instance. */
export function instanceId(inst: Instance): string {
  return `${inst.task}-${
    hash32(`${inst.task}\u0000${inst.prompt}\u0000${inst.answer}`).toString(16)
  }`;
}

/**
 * Which split an instance belongs to. Held-out phrasings never reach train; the others
 * go 10% to eval, 10% to calibration, 80% to train.
 */
export function splitOf(inst: Instance): Split {
  const h = hash32(`${inst.task}\u0000${inst.prompt}\u0000${inst.answer}`) % 20;
  if (inst.heldOutPhrasing) return h % 2 === 0 ? "eval" : "calibration";
  if (h < 2) return "eval";
  if (h < 4) return "calibration";
  return "train";
}

/** Split of a general-text paragraph. */
export function splitOfText(text: string): Split {
  const h = hash32(`general\u0000${text}`) % 20;
  if (h < 2) return "eval";
  if (h < 4) return "calibration";
  return "train";
}
