/**
 * The out-of-distribution prompt templates (docs/design.md, Router): each belongs to exactly one
 * split, "train" or "held-out", fixed by its id, so a held-out prompt is never a paraphrase of a
 * training one. Sampling lives in lib/tasks/ood_prompts.ts.
 */

import type { Rng } from "./rng.ts";
import {
  BOOKS,
  CITIES,
  CODE_JOBS,
  CONCEPTS,
  DISHES,
  EVENTS,
  FEELINGS,
  FOODS,
  GOALS,
  INVENTIONS,
  LANDMARKS,
  LANGS,
  LIST_THINGS,
  NAMES,
  OCCASIONS,
  ORGS,
  PLURALS,
  RELATIONS,
  SITUATIONS,
  THINGS,
  TOPICS,
  VERBS,
} from "./ood_vocabulary.ts";

/** The two template splits. */
export type OodSplit = "train" | "held-out";

/** One prompt template. */
export interface OodTemplate {
  /** Stable id, e.g. "writing.poem". */
  id: string;
  /** Category, the part of the id before the dot. */
  category: string;
  split: OodSplit;
  /** Draw one prompt. */
  make(rng: Rng): string;
}

/** Two random elements, distinct. */
function two<T>(rng: Rng, items: readonly T[]): [T, T] {
  const [a, b] = rng.shuffle(items);
  return [a, b];
}

function tpl(id: string, split: OodSplit, make: (rng: Rng) => string): OodTemplate {
  return { id, category: id.split(".")[0], split, make };
}

/** Every template, in a fixed order. */
export const OOD_TEMPLATES: readonly OodTemplate[] = [
  // greetings and small talk
  tpl(
    "greeting.hello",
    "train",
    (r) =>
      `${r.pick(["Hello", "Hi", "Hey", "Good morning", "Good evening"])}, ${
        r.pick(["how are you?", "how is it going?", "what's up?", "how was your day?"])
      }`,
  ),
  tpl(
    "greeting.intro",
    "train",
    (r) =>
      `Hi there! My name is ${r.pick(NAMES)} and I am new here. ${
        r.pick(["Can you help me?", "What can you do?", "Nice to meet you."])
      }`,
  ),
  tpl(
    "greeting.thanks",
    "held-out",
    (r) =>
      `${r.pick(["Thanks a lot", "Thank you so much", "Many thanks"])} for ${
        r.pick(["your help", "the quick answer", "explaining that"])
      }${r.pick(["!", ".", ", you are great!"])}`,
  ),
  tpl(
    "greeting.bye",
    "held-out",
    (r) =>
      `${r.pick(["Good night", "Bye for now", "See you later", "Talk to you soon"])}, ${
        r.pick(["and have a nice day!", "my friend.", "take care."])
      }`,
  ),
  // writing requests
  tpl("writing.poem", "train", (r) => `Write a poem about ${r.pick(TOPICS)}.`),
  tpl(
    "writing.story",
    "train",
    (r) => `Write a short story about ${r.pick(NAMES)}, who finds ${r.pick(TOPICS)} unexpectedly.`,
  ),
  tpl(
    "writing.email",
    "train",
    (r) => `Compose an email to my ${r.pick(RELATIONS)} about ${r.pick(SITUATIONS)}.`,
  ),
  tpl("writing.song", "held-out", (r) => `Can you write a song about ${r.pick(TOPICS)}?`),
  tpl("writing.speech", "held-out", (r) => `Draft a short, warm speech for ${r.pick(OCCASIONS)}.`),
  // explanations
  tpl("explain.simple", "train", (r) => `Explain ${r.pick(CONCEPTS)} in simple terms.`),
  tpl("explain.how", "train", (r) => `How does ${r.pick(THINGS)} work?`),
  tpl("explain.why", "held-out", (r) => `Why do ${r.pick(PLURALS)} ${r.pick(VERBS)}?`),
  tpl("explain.difference", "held-out", (r) => {
    const [a, b] = two(r, CONCEPTS);
    return `What is the difference between ${a} and ${b}?`;
  }),
  // code
  tpl(
    "code.function",
    "train",
    (r) => `Write a ${r.pick(LANGS)} function that ${r.pick(CODE_JOBS)}.`,
  ),
  tpl(
    "code.howto",
    "train",
    (r) => `How do I write code that ${r.pick(CODE_JOBS)} in ${r.pick(LANGS)}?`,
  ),
  tpl(
    "code.debug",
    "held-out",
    (r) =>
      `My ${r.pick(LANGS)} program crashes with "${
        r.pick(["index out of range", "null pointer", "undefined is not a function", "timeout"])
      }". What could be wrong?`,
  ),
  tpl("code.snippet", "held-out", (r) =>
    `What does this code do? ${
      r.pick([
        "for i in range(10): print(i * i)",
        "const xs = items.filter((x) => x.done);",
        "SELECT name FROM users WHERE age > 30;",
        "let total = prices.reduce((a, b) => a + b, 0);",
      ])
    }`),
  // advice
  tpl("advice.howcan", "train", (r) => `How can I ${r.pick(GOALS)}?`),
  tpl(
    "advice.feeling",
    "train",
    (r) => `I feel ${r.pick(FEELINGS)} about ${r.pick(SITUATIONS)}. What should I do?`,
  ),
  tpl(
    "advice.tips",
    "held-out",
    (r) => `Give me some tips to ${r.pick(GOALS)}, I have tried before and failed.`,
  ),
  // trivia (no capitals: that is a skill of the suite)
  tpl("trivia.author", "train", (r) => `Who wrote ${r.pick(BOOKS)}?`),
  tpl("trivia.when", "train", (r) => `When did ${r.pick(EVENTS)} happen?`),
  tpl("trivia.inventor", "held-out", (r) => `Who invented ${r.pick(INVENTIONS)}?`),
  tpl("trivia.tall", "held-out", (r) => `How tall is ${r.pick(LANDMARKS)}?`),
  // plain story sentences, no request at all
  tpl(
    "story.scene",
    "train",
    (r) => `${r.pick(NAMES)} opened the door and saw ${r.pick(TOPICS)} for the first time.`,
  ),
  tpl(
    "story.walk",
    "train",
    (r) =>
      `${r.pick(NAMES)} walked along the road while the sun went down behind ${
        r.pick(["the hills", "the houses", "the trees"])
      }.`,
  ),
  tpl(
    "story.once",
    "held-out",
    (r) =>
      `Once upon a time there was a ${
        r.pick(["girl", "fisherman", "king", "robot", "baker"])
      } who lived near ${r.pick(TOPICS)}.`,
  ),
  // news sentences
  tpl(
    "news.announce",
    "train",
    (r) =>
      `${r.pick(ORGS)} announced on ${r.pick(["Monday", "Tuesday", "Friday"])} that it will ${
        r.pick(["open a new branch", "cut its budget", "hire fifty people", "close for repairs"])
      } next year.`,
  ),
  tpl(
    "news.council",
    "held-out",
    (r) =>
      `The council of ${r.pick(CITIES)} voted to ${
        r.pick(["build a new bridge", "ban cars downtown", "plant a thousand trees"])
      } after months of debate.`,
  ),
  // multi-sentence messages
  tpl(
    "message.moved",
    "train",
    (r) =>
      `I just moved to ${r.pick(CITIES)}. I don't know anyone yet and the weather is ${
        r.pick(["strange", "lovely", "cold"])
      }. Any recommendations for ${r.pick(["restaurants", "weekend trips", "meeting people"])}?`,
  ),
  tpl(
    "message.visit",
    "held-out",
    (r) =>
      `My ${r.pick(RELATIONS)} is visiting next week. She likes ${
        r.pick(["museums", "long walks", "good food"])
      } but gets tired easily. What should we do together?`,
  ),
  // other languages
  tpl("language.romance", "train", (r) =>
    r.pick([
      "Bonjour, comment ça va ?",
      "¿Dónde está la biblioteca?",
      "Je voudrais un café, s'il vous plaît.",
      "¿Qué hora es?",
      "Merci beaucoup pour votre aide.",
      "Hola, ¿cómo estás?",
    ])),
  tpl("language.other", "held-out", (r) =>
    r.pick([
      "Wie spät ist es?",
      "Ich habe heute keine Zeit.",
      "Come stai oggi?",
      "Obrigado pela ajuda!",
      "Dank je wel voor alles.",
      "Guten Morgen, wie geht's?",
    ])),
  // lists
  tpl(
    "list.name",
    "train",
    (r) => `List ${r.pick(["three", "five", "ten"])} ${r.pick(LIST_THINGS)}.`,
  ),
  tpl(
    "list.ideas",
    "held-out",
    (r) => `Give me a few ideas for ${r.pick(OCCASIONS)}, in a bulleted list.`,
  ),
  // cooking
  tpl("cooking.recipe", "train", (r) => `How do I make ${r.pick(DISHES)}?`),
  tpl("cooking.fridge", "held-out", (r) => {
    const [a, b] = two(r, FOODS);
    return `What can I cook with ${a} and ${b}?`;
  }),
  // arithmetic and word problems (not the suite's compare / sort skills)
  tpl(
    "math.word",
    "train",
    (r) =>
      `If a train travels ${r.int(40, 120)} km in ${r.int(1, 4)} hours, what is its average speed?`,
  ),
  tpl(
    "math.equation",
    "held-out",
    (r) => `Solve for x: ${r.int(2, 9)}x + ${r.int(1, 20)} = ${r.int(21, 80)}`,
  ),
  // translation and summarising
  tpl(
    "transform.translate",
    "train",
    (r) =>
      `Translate "${
        r.pick(["good morning", "where is the station", "I love this song", "see you tomorrow"])
      }" into ${r.pick(["French", "Spanish", "German", "Japanese"])}.`,
  ),
  tpl(
    "transform.summary",
    "held-out",
    (r) =>
      `Summarize this in one sentence: ${r.pick(NAMES)} spent the summer ${
        r.pick(["working at a farm", "travelling by train", "learning to paint"])
      }, met many people and came home with a new plan for the future.`,
  ),
  // opinions and role play
  tpl(
    "opinion.favourite",
    "train",
    (r) => `What is your favourite ${r.pick(["book", "season", "movie", "food", "city"])} and why?`,
  ),
  tpl(
    "opinion.roleplay",
    "held-out",
    (r) =>
      `Pretend you are a ${
        r.pick(["pirate", "tour guide", "detective", "chef"])
      } and describe your day.`,
  ),
  // more requests, to widen what the router sees as "not a skill"
  tpl("math.times", "train", (r) => `What is ${r.int(11, 99)} times ${r.int(3, 19)}?`),
  tpl(
    "math.percent",
    "train",
    (r) => `Calculate ${r.pick(["10", "15", "20", "25"])}% of ${r.int(40, 900)}.`,
  ),
  tpl(
    "math.fraction",
    "held-out",
    (r) => `How much is ${r.int(1, 5)}/${r.int(6, 9)} plus ${r.int(1, 5)}/${r.int(6, 9)}?`,
  ),
  tpl(
    "trivia.planet",
    "train",
    (r) => `How far is ${r.pick(["Mars", "the Sun", "Jupiter", "the Moon"])} from the Earth?`,
  ),
  tpl(
    "trivia.animal",
    "train",
    (r) => `How long do ${r.pick(["elephants", "parrots", "turtles", "horses", "whales"])} live?`,
  ),
  tpl(
    "trivia.science",
    "held-out",
    (r) =>
      `What is the boiling point of ${
        r.pick(["water", "milk", "olive oil", "alcohol"])
      } at sea level?`,
  ),
  tpl(
    "explain.meaning",
    "train",
    (r) =>
      `What does the word "${
        r.pick(["serendipity", "ephemeral", "ubiquitous", "nostalgia", "resilience"])
      }" mean?`,
  ),
  tpl("explain.history", "train", (r) => `Tell me about the history of ${r.pick(THINGS)}.`),
  tpl(
    "writing.rewrite",
    "train",
    (r) =>
      `Rewrite this sentence to sound more ${r.pick(["formal", "friendly", "polite"])}: ${
        r.pick(["send me the report now", "your idea is bad", "we can't come tomorrow"])
      }`,
  ),
  tpl(
    "writing.slogan",
    "held-out",
    (r) => `Come up with a catchy slogan for ${r.pick(["a coffee shop", "a gym", "a bookstore"])}.`,
  ),
  tpl(
    "advice.choose",
    "train",
    (r) =>
      `Should I ${r.pick(["learn guitar", "take the bus", "buy a laptop"])} or ${
        r.pick(["learn piano", "ride my bike", "buy a tablet"])
      }? Help me decide.`,
  ),
  tpl(
    "advice.health",
    "held-out",
    (r) =>
      `I have had a ${r.pick(["headache", "sore throat", "back pain"])} for ${
        r.pick(["two days", "a week", "since Monday"])
      }. Is that something to worry about?`,
  ),
  tpl(
    "chat.joke",
    "train",
    (r) => `Tell me a ${r.pick(["funny", "short", "silly"])} joke about ${r.pick(PLURALS)}.`,
  ),
  tpl(
    "chat.feeling",
    "train",
    (r) => `I am so ${r.pick(FEELINGS)} today${r.pick(["!", ".", "..."])}`,
  ),
  tpl(
    "chat.question",
    "held-out",
    (r) => `Do you ${r.pick(["like music", "ever get tired", "have a name", "dream at night"])}?`,
  ),
  tpl(
    "story.diary",
    "train",
    (r) =>
      `Dear diary, today ${r.pick(NAMES)} and I ${
        r.pick(["went fishing", "baked a cake", "missed the bus", "painted the fence"])
      } and it was ${r.pick(["wonderful", "a disaster", "funny"])}.`,
  ),
  tpl(
    "news.weather",
    "train",
    (r) =>
      `Heavy ${r.pick(["rain", "snow", "winds"])} are expected in ${
        r.pick(CITIES)
      } this weekend, forecasters said.`,
  ),
  tpl(
    "news.sport",
    "held-out",
    (r) =>
      `The home team won ${r.int(1, 5)} to ${r.int(0, 1)} in front of ${r.int(5, 60)},000 fans.`,
  ),
  tpl(
    "code.regex",
    "train",
    (r) =>
      `Write a regular expression that matches ${
        r.pick(["email addresses", "phone numbers", "dates like 2024-01-31", "hex colours"])
      }.`,
  ),
  tpl(
    "code.concept",
    "train",
    (r) =>
      `What is ${
        r.pick(["recursion", "a hash map", "an API", "garbage collection", "a closure"])
      } in programming?`,
  ),
  tpl(
    "list.steps",
    "train",
    (r) =>
      `What are the steps to ${
        r.pick(["change a tyre", "plant a tree", "open a bank account", "set up a tent"])
      }?`,
  ),
  tpl(
    "language.asian",
    "held-out",
    (r) =>
      r.pick([
        "こんにちは、元気ですか？",
        "你好，你叫什么名字？",
        "감사합니다",
        "Привет, как дела?",
      ]),
  ),
  tpl(
    "language.phrase",
    "train",
    (r) => r.pick(["Ciao! Tutto bene?", "Hej, hur mår du?", "Buenos días a todos.", "À bientôt !"]),
  ),
  tpl(
    "news.economy",
    "train",
    (r) =>
      `Prices rose ${r.int(2, 9)} percent in ${
        r.pick(["May", "June", "October"])
      }, the highest rate since ${r.int(1990, 2019)}.`,
  ),
  tpl(
    "message.busy",
    "train",
    (r) =>
      `I have ${r.int(2, 9)} meetings and ${r.int(10, 60)} emails to answer before ${
        r.int(2, 6)
      } pm. How do I get through the day?`,
  ),
  tpl(
    "math.discount",
    "train",
    (r) =>
      `A shirt costs ${r.int(15, 90)} dollars and is ${
        r.pick(["10", "20", "30"])
      }% off. What do I pay?`,
  ),
  tpl(
    "news.science",
    "train",
    (r) =>
      `Scientists in ${r.pick(CITIES)} say they have found a new kind of ${
        r.pick(["frog", "beetle", "orchid", "fish"])
      } living in ${r.pick(["the old forest", "a cave", "the river delta"])}.`,
  ),
  tpl(
    "news.visitors",
    "train",
    (r) =>
      `The museum welcomed ${r.int(2, 90)},000 visitors in ${
        r.pick(["March", "July", "December"])
      }, ${r.int(2, 40)} percent more than a year ago.`,
  ),
  tpl(
    "story.family",
    "train",
    (r) =>
      `${r.pick(NAMES)} and ${
        r.pick(["her brother", "his aunt", "their neighbour"])
      } spent the afternoon ${
        r.pick(["building a treehouse", "fixing an old radio", "baking bread"])
      } while it rained outside.`,
  ),
  tpl(
    "message.update",
    "train",
    (r) =>
      `Quick update: the meeting moved to ${r.pick(["Monday", "Thursday"])} at ${
        r.int(9, 16)
      }:00, and ${r.pick(NAMES)} will bring the slides.`,
  ),
  tpl(
    "story.event",
    "train",
    (r) =>
      `${r.pick(["Last summer", "Two days ago", "Early this morning", "Last night"])} ${
        r.pick(["the village", "our school", "the neighbours", "the small theatre"])
      } ${
        r.pick(["built a new bridge", "held a concert", "planted a garden", "painted a mural"])
      } near ${r.pick(["the river", "the station", "the old church", "the market square"])}, and ${
        r.pick(["everyone came to see it", "the children loved it", "it was in the newspaper"])
      }.`,
  ),
  tpl(
    "story.describe",
    "train",
    (r) =>
      `The ${r.pick(["kitchen", "beach", "library", "street", "forest"])} was ${
        r.pick(["quiet", "crowded", "warm", "dark", "bright"])
      }, and somewhere ${
        r.pick(["a radio was playing", "a dog was barking", "someone was laughing"])
      }.`,
  ),
  tpl(
    "explain.whatis",
    "train",
    (r) =>
      `What is ${
        r.pick(["love", "happiness", "time", "consciousness", "art", "justice", "success", "luck"])
      }${r.pick(["?", ", really?", " in your opinion?"])}`,
  ),
];
