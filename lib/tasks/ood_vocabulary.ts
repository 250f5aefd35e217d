/** Word lists the out-of-distribution prompt templates draw from (lib/tasks/ood_templates.ts). */

/** Word list for the templates: names. */
export const NAMES = [
  "Maya",
  "Tom",
  "Lena",
  "Omar",
  "Sofia",
  "Ravi",
  "Nina",
  "Carlos",
  "Yuki",
  "Paul",
];
/** Word list for the templates: topics. */
export const TOPICS = [
  "the sea",
  "autumn leaves",
  "a lost dog",
  "friendship",
  "the moon",
  "city lights",
  "an old train station",
  "winter mornings",
  "a small bakery",
  "the first day of school",
  "mountains",
  "a rainy afternoon",
];
/** Word list for the templates: concepts. */
export const CONCEPTS = [
  "quantum computing",
  "photosynthesis",
  "inflation",
  "machine learning",
  "black holes",
  "the stock market",
  "climate change",
  "vaccines",
  "blockchain",
  "gravity",
  "democracy",
  "the immune system",
];
/** Word list for the templates: things. */
export const THINGS = [
  "a refrigerator",
  "the internet",
  "a microwave oven",
  "a bicycle gear",
  "an airplane wing",
  "a solar panel",
  "GPS",
  "a credit card",
  "a vaccine",
  "a search engine",
];
/** Word list for the templates: langs. */
export const LANGS = ["Python", "JavaScript", "Rust", "Go", "Java", "TypeScript", "C++", "SQL"];
/** Word list for the templates: code jobs. */
export const CODE_JOBS = [
  "reads a CSV file",
  "checks whether a string is a palindrome",
  "merges two sorted lists",
  "computes the factorial of n",
  "sends an HTTP request",
  "removes duplicates from an array",
  "parses a date",
  "finds the longest word in a sentence",
  "connects to a database",
  "counts the words in a file",
];
/** Word list for the templates: goals. */
export const GOALS = [
  "sleep better",
  "learn to cook",
  "save more money",
  "get better at public speaking",
  "stay focused while studying",
  "make new friends in a new city",
  "start running",
  "prepare for a job interview",
  "keep my plants alive",
  "stop procrastinating",
];
/** Word list for the templates: feelings. */
export const FEELINGS = ["nervous", "stressed", "excited", "unsure", "worried", "overwhelmed"];
/** Word list for the templates: situations. */
export const SITUATIONS = [
  "my new job",
  "moving abroad",
  "an exam next week",
  "a difficult conversation with my boss",
  "my wedding speech",
  "buying my first car",
];
/** Word list for the templates: books. */
export const BOOKS = [
  "Pride and Prejudice",
  "War and Peace",
  "The Old Man and the Sea",
  "Don Quixote",
  "Hamlet",
  "Moby Dick",
  "The Little Prince",
  "One Hundred Years of Solitude",
];
/** Word list for the templates: events. */
export const EVENTS = [
  "the French Revolution",
  "the first moon landing",
  "the fall of the Berlin Wall",
  "the invention of the printing press",
  "the Industrial Revolution",
  "the first Olympic Games",
];
/** Word list for the templates: inventions. */
export const INVENTIONS = [
  "the telephone",
  "the light bulb",
  "the airplane",
  "penicillin",
  "the radio",
];
/** Word list for the templates: landmarks. */
export const LANDMARKS = ["the Eiffel Tower", "Mount Everest", "the Statue of Liberty", "Big Ben"];
/** Word list for the templates: dishes. */
export const DISHES = [
  "pancakes",
  "a tomato soup",
  "fried rice",
  "banana bread",
  "a vegetable curry",
];
/** Word list for the templates: foods. */
export const FOODS = [
  "eggs",
  "rice",
  "spinach",
  "chicken",
  "potatoes",
  "cheese",
  "beans",
  "onions",
];
/** Word list for the templates: orgs. */
export const ORGS = ["The city library", "A local hospital", "The school board", "A tech company"];
/** Word list for the templates: cities. */
export const CITIES = ["Lisbon", "Toronto", "Nairobi", "Osaka", "Melbourne", "Denver", "Krakow"];
/** Word list for the templates: relations. */
export const RELATIONS = ["sister", "landlord", "manager", "teacher", "neighbour", "grandmother"];
/** Word list for the templates: occasions. */
export const OCCASIONS = [
  "a birthday party",
  "a team meeting",
  "a rainy weekend",
  "a school fundraiser",
  "a family dinner",
];
/** Word list for the templates: plurals. */
export const PLURALS = ["cats", "birds", "people", "leaves", "stars", "bees"];
/** Word list for the templates: verbs. */
export const VERBS = ["purr", "migrate", "yawn", "change colour", "twinkle", "dance"];
/** Word list for the templates: list things. */
export const LIST_THINGS = [
  "fruits that are high in vitamin C",
  "famous painters",
  "board games for families",
  "programming languages",
  "things to pack for a beach trip",
  "healthy breakfast ideas",
  "classic movies",
];
