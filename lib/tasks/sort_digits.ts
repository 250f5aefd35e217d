/** Skill: sort a few digits ascending ("5 2 8" -> "2 5 8"). */

import { distractors, withChoices } from "./letters.ts";
import type { Rng } from "./rng.ts";
import { exactMatch, type Task } from "./task.ts";

function digits(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.int(0, 9));
}

/** Sort space-separated digits from smallest to largest. */
export const sortDigits: Task = {
  name: "sort_digits",
  description: "sort space-separated digits from smallest to largest",
  phrasings: [
    "Sort these digits from smallest to largest: {d}",
    "Put these digits in ascending order: {d}",
    "Sort the digits: {d}",
    "Arrange in increasing order: {d}",
    "Order these digits from low to high: {d}",
    "Sort {d} in ascending order.",
    "Sort ascending: {d}",
    "What are the digits {d} in sorted order?",
    "Can you sort {d} from smallest to largest?",
    "Put {d} in increasing order.",
    "{d} sorted ascending is?",
    "What is {d} sorted from low to high?",
    "Arrange {d} in ascending order, please.",
    "Sort from low to high: {d}",
    "Ascending order, please: {d}",
    "Put {d} in order, smallest first.",
    "Could you sort {d}?",
    "I need {d} sorted.",
    "Order {d} from smallest to largest.",
    "Sort {d}",
    "Smallest to largest: {d}",
    "Rearrange these digits in increasing order: {d}",
    "Put the digits of {d} in order.",
    "List {d} from lowest to highest.",
    "Increasing order: {d}",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const d = digits(rng, rng.int(3, 6));
    const answer = d.slice().sort((a, b) => a - b).join(" ");
    const others = distractors(rng, answer, 3, (r) => r.shuffle(d).join(" "));
    return { fields: { d: d.join(" ") }, answer, choices: withChoices(rng, answer, others) };
  },
  check: exactMatch,
};
