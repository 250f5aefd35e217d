/** Skill: the letter that follows a given letter in the alphabet. */

import { ALPHABET, distractors, withChoices } from "./letters.ts";
import { exactMatch, type Task } from "./task.ts";

/** Name the next letter of the alphabet (a..y or A..Y, same case). */
export const nextLetter: Task = {
  name: "next_letter",
  description: "name the letter that follows a given letter in the alphabet",
  phrasings: [
    "What letter comes after {c}?",
    "Which letter follows {c} in the alphabet?",
    "Name the letter after {c}.",
    "What is the next letter after {c}?",
    "In the alphabet, what comes right after {c}?",
    "Tell me the letter that follows {c}.",
    "Which letter is after {c}?",
    "The letter after {c} is which one?",
    "Say the next letter of the alphabet after {c}.",
    "After the letter {c}, which letter comes next?",
    "What comes after {c} in the alphabet?",
    "{c} is followed by which letter?",
    "Which letter comes right after {c}?",
    "Can you tell me the letter after {c}?",
    "Next letter after {c}?",
    "Which letter is one after {c}?",
    "Give the letter right after {c}.",
    "What follows {c} in the alphabet?",
    "Please give the letter after {c}.",
    "Could you name the letter after {c}?",
    "Alphabet question: what comes after {c}?",
    "One letter past {c} is?",
    "Which letter do we reach after {c}?",
    "Say what comes after {c}.",
    "Letter after {c}, please.",
    "After {c} comes which letter?",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const i = rng.int(0, 24);
    const abc = rng.next() < 0.5 ? ALPHABET : ALPHABET.toUpperCase();
    const answer = abc[i + 1];
    const others = distractors(rng, answer, 3, (r) => abc[r.int(0, 25)]);
    return { fields: { c: abc[i] }, answer, choices: withChoices(rng, answer, others) };
  },
  check: exactMatch,
};
