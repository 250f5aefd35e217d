/** Skill: the sentiment (positive / negative) of a short templated review. */

import type { Rng } from "./rng.ts";
import { exactMatch, type Task } from "./task.ts";

const SUBJECTS = [
  "the food",
  "the service",
  "the room",
  "the movie",
  "the staff",
  "the music",
  "the price",
  "the book",
  "the hotel",
  "the coffee",
  "the game",
  "the show",
];
const POSITIVE = [
  "wonderful",
  "great",
  "excellent",
  "lovely",
  "amazing",
  "fantastic",
  "delightful",
  "superb",
  "pleasant",
  "brilliant",
];
const NEGATIVE = [
  "terrible",
  "awful",
  "horrible",
  "dreadful",
  "boring",
  "disappointing",
  "poor",
  "bad",
  "annoying",
  "miserable",
];
const POS_CLOSERS = ["I loved it.", "I would come back.", "Highly recommended.", "Five stars."];
const NEG_CLOSERS = ["I hated it.", "Never again.", "Not recommended.", "One star."];

function review(rng: Rng, positive: boolean): string {
  const adj = positive ? POSITIVE : NEGATIVE;
  const [s1, s2] = rng.shuffle(SUBJECTS);
  let text = `${s1} was ${rng.pick(adj)}`;
  if (rng.next() < 0.6) text += ` and ${s2} was ${rng.pick(adj)}`;
  text = text[0].toUpperCase() + text.slice(1) + ".";
  if (rng.next() < 0.4) text += " " + rng.pick(positive ? POS_CLOSERS : NEG_CLOSERS);
  return text;
}

/** Classify a templated review as positive or negative. */
export const reviewSentiment: Task = {
  name: "sentiment",
  description: "say whether a short review is positive or negative",
  phrasings: [
    "Is this review positive or negative? {r}",
    "Review: {r} Sentiment?",
    "Classify the sentiment of this review as positive or negative: {r}",
    "What is the sentiment of this review? {r}",
    "Positive or negative? {r}",
    "Here is a review: {r} Is it positive or negative?",
    "Decide if the review is positive or negative: {r}",
    "Does this review sound positive or negative? {r}",
    "{r} Is that review positive or negative?",
    "Read this review and say if it is positive or negative: {r}",
    "Someone wrote: {r} Positive or negative?",
    "{r} What is the sentiment?",
    "Tell me the sentiment, positive or negative: {r}",
    "Sentiment of this review? {r}",
    "Label this review positive or negative: {r}",
    "{r} Positive or negative?",
    "Was this review positive or negative? {r}",
    "Review text: {r} Label it positive or negative.",
    "Could you tell if this review is positive or negative? {r}",
    "Judge the sentiment: {r}",
    "{r} Sentiment of that review?",
    "Customer review: {r} Positive or negative?",
    "Is the following review positive or negative? {r}",
    "I need the sentiment of this review: {r}",
    "Classify this review: {r}",
  ],
  heldOut: [5, 7],
  sample(rng) {
    const positive = rng.next() < 0.5;
    const answer = positive ? "positive" : "negative";
    return { fields: { r: review(rng, positive) }, answer, choices: ["positive", "negative"] };
  },
  check: exactMatch,
};
