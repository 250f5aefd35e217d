/** Skill: which of two two-digit numbers is larger. */

import { exactMatch, type Task } from "./task.ts";

/** Name the larger of two different two-digit numbers. */
export const compareNumbers: Task = {
  name: "compare",
  description: "name the larger of two two-digit numbers",
  phrasings: [
    "Which is larger, {a} or {b}?",
    "Which number is bigger: {a} or {b}?",
    "What is the larger number, {a} or {b}?",
    "Pick the greater number: {a} or {b}",
    "Between {a} and {b}, which is greater?",
    "Of {a} and {b}, which one is more?",
    "Which is the bigger one, {a} or {b}?",
    "Tell me which is greater: {a} or {b}",
    "{a} or {b}: which is larger?",
    "Is {a} or {b} the bigger number?",
    "Which one is greater, {a} or {b}?",
    "Out of {a} and {b}, which is the larger?",
    "Can you tell which is bigger, {a} or {b}?",
    "Larger of {a} and {b}?",
    "Which is bigger, {a} or {b}?",
    "Give the larger number: {a} or {b}",
    "Bigger number: {a} or {b}?",
    "I need the greater of {a} and {b}.",
    "Could you pick the larger one, {a} or {b}?",
    "{a} vs {b}: which is bigger?",
    "Name the greater number, {a} or {b}.",
    "Which value is higher, {a} or {b}?",
    "Compare {a} and {b} and give the larger.",
    "Max of {a} and {b}?",
    "Select the biggest: {a} or {b}",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const a = rng.int(10, 99);
    let b = rng.int(10, 99);
    while (b === a) b = rng.int(10, 99);
    const answer = String(Math.max(a, b));
    return {
      fields: { a: String(a), b: String(b) },
      answer,
      choices: [String(a), String(b)],
    };
  },
  check: exactMatch,
};
