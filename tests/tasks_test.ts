/**
 * Task suite: every answer is checked against an independent computation from the prompt's
 * own text, splits are disjoint, held-out phrasings never reach training, generation is
 * deterministic, the committed calibration / eval files are what `deno task data` writes,
 * and the jinja chat template renders exactly what training used.
 */

import assert from "node:assert/strict";
import { Template } from "@huggingface/jinja";
import { ATLAS } from "../lib/tasks/atlas.ts";
import { BOS_TOKEN, CHAT_TEMPLATE, renderPrompt } from "../lib/tasks/chat_format.ts";
import { splitOf } from "../lib/tasks/splits.ts";
import {
  generalRows,
  heldRows,
  type SuiteRow,
  taskByName,
  TASKS,
  trainRows,
} from "../lib/tasks/suite.ts";

const SEED = 1234;
const MODEL_DIR = new URL("../models/seap-tiny-skills/", import.meta.url).pathname;

/** Spelled-out letter groups ("c a t") in a prompt, as plain words. */
function spelled(prompt: string): string[] {
  return [...prompt.matchAll(/\b[a-zA-Z](?: [a-zA-Z])+\b/g)].map((m) => m[0].replaceAll(" ", ""));
}

/** Single letters standing alone (not part of a spelled-out group), e.g. the "m" of "after m?". */
function isolatedLetters(prompt: string): string[] {
  return [...prompt.matchAll(/(?<!\b[a-zA-Z] )(?<![a-zA-Z'])\b([a-zA-Z])\b(?! [a-zA-Z]\b)/g)].map((
    m,
  ) => m[1]);
}

/** Independent truth for each task, computed from the prompt text only. */
const TRUTH: Record<string, (prompt: string) => string> = {
  reverse: (p) => [...spelled(p).at(-1)!].reverse().join(" "),
  uppercase: (p) => [...spelled(p).at(-1)!.toUpperCase()].join(" "),
  caesar: (p) =>
    [...spelled(p).at(-1)!].map((c) => String.fromCharCode((c.charCodeAt(0) - 97 + 1) % 26 + 97))
      .join(" "),
  next_letter: (p) => {
    const c = isolatedLetters(p)[0];
    return String.fromCharCode(c.charCodeAt(0) + 1);
  },
  count_letter: (p) => {
    const letter = isolatedLetters(p)[0];
    const word = spelled(p).filter((w) => w.length >= 4).at(-1)!;
    return String([...word].filter((x) => x === letter).length);
  },
  sort_digits: (p) => p.match(/\d(?: \d)+/)![0].split(" ").map(Number).sort().join(" "),
  compare: (p) => String(Math.max(...p.match(/\d+/g)!.map(Number))),
  capital: (p) => ATLAS.find((e) => p.includes(e.country))!.capital,
  sentiment: (p) =>
    /wonderful|great|excellent|lovely|amazing|fantastic|delightful|superb|pleasant|brilliant/
        .test(p)
      ? "positive"
      : "negative",
  boolean: (p) => {
    const all = p.matchAll(/(?:not )?(?:true|false)(?: (?:and|or) (?:not )?(?:true|false))+/g);
    const e = [...all].at(-1)![0];
    const js = e.replaceAll("and", "&&").replaceAll("or", "||").replaceAll("not ", "!");
    return String(new Function(`return ${js};`)());
  },
};

function suiteSample(): SuiteRow[] {
  const rows: SuiteRow[] = [];
  for (const t of TASKS) {
    rows.push(...trainRows(t, 300, SEED), ...heldRows(t, "eval", 100, SEED));
  }
  return rows;
}

Deno.test("the suite has at least 8 skills, each with held-out phrasings", () => {
  assert.ok(TASKS.length >= 8);
  assert.equal(new Set(TASKS.map((t) => t.name)).size, TASKS.length);
  for (const t of TASKS) {
    assert.ok(t.heldOut.length >= 1, t.name);
    assert.ok(t.phrasings.length - t.heldOut.length >= 4, t.name);
    assert.equal(new Set(t.phrasings).size, t.phrasings.length, t.name);
  }
});

Deno.test("every answer matches an independent computation from the prompt", () => {
  for (const r of suiteSample()) {
    const truth = TRUTH[r.task];
    assert.ok(truth, `no truth for ${r.task}`);
    assert.equal(truth(r.prompt!), r.answer, `${r.task}: ${r.prompt}`);
    assert.ok(taskByName(r.task).check(` ${r.answer}\n`, r.answer!));
  }
});

Deno.test("checkers reject wrong answers", () => {
  for (const r of suiteSample().slice(0, 2000)) {
    const t = taskByName(r.task);
    assert.equal(t.check(r.answer + "x", r.answer!), false);
    if (r.choices) {
      for (const c of r.choices) {
        if (c !== r.answer) assert.equal(t.check(c, r.answer!), false, `${r.task}: ${c}`);
      }
    }
  }
});

Deno.test("multiple-choice rows: distinct choices, gold is the answer", () => {
  for (const r of suiteSample()) {
    if (!r.choices) continue;
    assert.equal(new Set(r.choices).size, r.choices.length, r.id);
    assert.equal(r.choices[r.gold!], r.answer, r.id);
  }
});

Deno.test("splits are disjoint and held-out phrasings never reach training", () => {
  const train = new Set<string>();
  for (const t of TASKS) {
    for (const r of trainRows(t, 3000, SEED)) {
      assert.equal(r.held_out_phrasing, false, r.id);
      train.add(r.id);
    }
  }
  const calib = new Set<string>();
  for (const t of TASKS) {
    for (const r of heldRows(t, "calibration", 200, SEED)) {
      assert.ok(!train.has(r.id), r.id);
      calib.add(r.id);
    }
    const ev = heldRows(t, "eval", 200, SEED);
    assert.ok(ev.length >= 50, `${t.name}: only ${ev.length} eval rows`);
    assert.ok(ev.some((r) => r.held_out_phrasing) && ev.some((r) => !r.held_out_phrasing));
    for (const r of ev) {
      assert.ok(!train.has(r.id) && !calib.has(r.id), r.id);
      assert.equal(splitOf({ ...r, heldOutPhrasing: r.held_out_phrasing! } as never), "eval");
    }
  }
  const gTrain = new Set(generalRows("train", 3000, SEED).map((r) => r.text));
  for (const r of generalRows("eval", 200, SEED)) assert.ok(!gTrain.has(r.text), r.text);
});

Deno.test("generation is deterministic and the seed matters", () => {
  const t = TASKS[0];
  assert.deepEqual(trainRows(t, 50, 7), trainRows(t, 50, 7));
  assert.notDeepEqual(trainRows(t, 50, 7), trainRows(t, 50, 8));
});

Deno.test("committed calibration and eval files are the suite's rows", async () => {
  for (const split of ["calibration", "eval"] as const) {
    const lines = (await Deno.readTextFile(`${MODEL_DIR}${split}.jsonl`)).trim().split("\n");
    const rows = lines.map((l) => JSON.parse(l) as SuiteRow);
    const tasks = new Set(rows.map((r) => r.task));
    for (const t of TASKS) assert.ok(tasks.has(t.name), `${split} lacks ${t.name}`);
    assert.ok(tasks.has("general"));
    const n = split === "eval" ? 200 : 256;
    for (const t of TASKS) {
      const fresh = heldRows(t, split, n, SEED).map((r) => JSON.stringify(r));
      const committed = rows.filter((r) => r.task === t.name).map((r) => JSON.stringify(r));
      assert.deepEqual(committed, fresh, `${split}/${t.name} differs from the generator`);
    }
  }
});

Deno.test("the jinja chat template renders exactly the training prompt", () => {
  const tpl = new Template(CHAT_TEMPLATE);
  for (const p of ["Reverse the letters: c a t", "Which is larger, 47 or 82?"]) {
    const out = tpl.render({
      messages: [{ role: "user", content: p }],
      add_generation_prompt: true,
      bos_token: BOS_TOKEN,
    });
    assert.equal(out, renderPrompt(p));
  }
});
