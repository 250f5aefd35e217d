/** Skill: evaluate a tiny boolean expression ("true and not false" -> "true"). */

import type { Rng } from "./rng.ts";
import { exactMatch, type Task } from "./task.ts";

function operand(rng: Rng): { text: string; value: boolean } {
  const v = rng.next() < 0.5;
  if (rng.next() < 0.35) return { text: `not ${v}`, value: !v };
  return { text: String(v), value: v };
}

/** Evaluate two or three operands joined by one operator, with optional `not`s. */
export const booleanExpression: Task = {
  name: "boolean",
  description: "evaluate a short boolean expression of true, false, and, or, not",
  phrasings: [
    "Evaluate: {e}",
    "What is the value of {e}?",
    "Is this true or false: {e}",
    "Compute the boolean expression: {e}",
    "Evaluate the logic: {e}",
    "What does {e} evaluate to?",
    "Work out: {e}",
    "True or false? {e}",
    "What is {e}?",
    "Can you evaluate {e}?",
    "Tell me the value of {e}.",
    "Give the truth value of {e}.",
    "Evaluate {e} please.",
    "Solve: {e}",
    "Evaluate this: {e}",
    "Value of {e}?",
    "Could you evaluate {e}?",
    "Find the value of {e}.",
    "I need the value of {e}.",
    "Boolean value of {e}?",
    "Resolve the logic: {e}",
    "Work out {e}.",
    "Compute {e}",
    "Decide the value of {e}.",
    "Result of {e}?",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const op = rng.next() < 0.5 ? "and" : "or";
    const ops = Array.from({ length: rng.int(2, 3) }, () => operand(rng));
    const value = op === "and" ? ops.every((o) => o.value) : ops.some((o) => o.value);
    const answer = String(value);
    return {
      fields: { e: ops.map((o) => o.text).join(` ${op} `) },
      answer,
      choices: ["true", "false"],
    };
  },
  check: exactMatch,
};
