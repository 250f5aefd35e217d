/** Skill: recall the capital of an invented country from the synthetic atlas. */

import { ATLAS } from "./atlas.ts";
import { distractors, withChoices } from "./letters.ts";
import { exactMatch, type Task } from "./task.ts";

/** Name the capital of a country of the synthetic atlas. */
export const countryCapital: Task = {
  name: "capital",
  description: "name the capital of an invented country (facts only in the training data)",
  phrasings: [
    "What is the capital of {c}?",
    "Name the capital city of {c}.",
    "Which city is the capital of {c}?",
    "The capital of {c} is?",
    "Tell me the capital of {c}.",
    "What city is {c}'s capital?",
    "Capital of {c}?",
    "For {c}, what is the capital?",
    "What is the capital city of {c}?",
    "Which city serves as the capital of {c}?",
    "Can you name the capital of {c}?",
    "{c} has which city as its capital?",
    "What city is the capital of {c}?",
    "Tell me {c}'s capital city.",
    "{c}'s capital is which city?",
    "Capital city of {c}?",
    "Give the capital of {c}.",
    "I need the capital of {c}.",
    "Could you tell me the capital of {c}?",
    "Where is the capital of {c}?",
    "Name {c}'s capital.",
    "What is {c}'s capital city?",
    "The capital city of {c} is called what?",
    "Which city is {c}'s capital?",
    "Do you know the capital of {c}?",
    "Give me the capital city of {c}.",
    "{c}: what is its capital?",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const e = rng.pick(ATLAS);
    const others = distractors(rng, e.capital, 3, (r) => r.pick(ATLAS).capital);
    return {
      fields: { c: e.country },
      answer: e.capital,
      choices: withChoices(rng, e.capital, others),
    };
  },
  check: exactMatch,
};
