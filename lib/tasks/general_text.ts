/**
 * General text: simple natural sentences from templates, for the generic mask, perplexity
 * and to keep the model a language model. Rows are plain text, not chat turns.
 */

import type { Rng } from "./rng.ts";

const NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jack"];
const ANIMALS = ["cat", "dog", "bird", "horse", "rabbit", "fox", "cow", "duck", "goat", "mouse"];
const PLACES = ["the park", "the garden", "the market", "the river", "the school", "the town"];
const ADJ = ["small", "big", "old", "young", "happy", "quiet", "brown", "white", "busy", "tired"];
const VERBS = ["walked to", "ran to", "looked at", "went to", "smiled at", "waited near"];
const OBJECTS = ["a book", "an apple", "a letter", "some bread", "a red ball", "a cup of tea"];
const TIMES = ["In the morning", "After lunch", "On Sunday", "Later that day", "At night"];
const WEATHER = ["sunny", "cold", "warm", "rainy", "windy", "cloudy"];

function sentence(rng: Rng): string {
  const n = rng.pick(NAMES);
  switch (rng.int(0, 5)) {
    case 0:
      return `The ${rng.pick(ADJ)} ${rng.pick(ANIMALS)} ${rng.pick(VERBS)} ${rng.pick(PLACES)}.`;
    case 1:
      return `${n} ${rng.pick(VERBS)} ${rng.pick(PLACES)} with a ${rng.pick(ANIMALS)}.`;
    case 2:
      return `${rng.pick(TIMES)}, ${n} found ${rng.pick(OBJECTS)} in ${rng.pick(PLACES)}.`;
    case 3:
      return `It was ${rng.pick(WEATHER)}, so ${n} stayed at home and read ${rng.pick(OBJECTS)}.`;
    case 4:
      return `${n} gave ${rng.pick(OBJECTS)} to ${rng.pick(NAMES)}, who was very ${rng.pick(ADJ)}.`;
    default:
      return `A ${rng.pick(ANIMALS)} is ${rng.pick(ADJ)}, but a ${rng.pick(ANIMALS)} is ${
        rng.pick(ADJ)
      }.`;
  }
}

/** A short paragraph of 2 to 4 template sentences. */
export function generalParagraph(rng: Rng): string {
  const n = rng.int(2, 4);
  return Array.from({ length: n }, () => sentence(rng)).join(" ");
}
