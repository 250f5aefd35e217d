/**
 * Benchmark-row loaders on small inline fixtures of every row shape (multiple choice, partial
 * scoring, generation, plain text), clear errors on bad rows, folder reading by split, and the
 * mask selectors of `deno task eval --masks`.
 */

import assert from "node:assert/strict";
import { DatasetError, datasetFiles, parseDatasets } from "../lib/eval/datasets.ts";
import { sampleRows } from "../lib/eval/harness.ts";
import {
  parseSelectors,
  type Selectable,
  selectContenders,
  SelectorError,
} from "../lib/eval/mask_selector.ts";

const MC =
  `{"task":"boolq","split":"validation","id":"b0","context":"P\\nQuestion: q?\\nAnswer:","choices":[" no"," yes"],"gold":1}`;
const WG =
  `{"task":"winogrande","split":"validation","id":"w0","contexts":["A so Sarah","A so Maria"],"continuation":" won.","gold":0}`;
const GSM =
  `{"task":"gsm8k","split":"test","id":"g0","context":"Question: 1+1?\\nAnswer:","target":" 1+1=2 #### 2","answer":"2"}`;
const TXT = `{"task":"wikitext2","split":"test","id":"t0","text":" = Title = \\n Body ."}`;

Deno.test("each row shape parses into its kind with its fields", () => {
  const sets = parseDatasets([MC, WG, GSM, TXT, MC.replace('"b0"', '"b1"')].join("\n"), "x.jsonl");
  assert.deepEqual(sets.map((s) => [s.task, s.kind, s.rows.length]), [
    ["boolq", "choice", 2],
    ["winogrande", "partial", 1],
    ["gsm8k", "generation", 1],
    ["wikitext2", "text", 1],
  ]);
  const mc = sets[0];
  assert.equal(mc.kind, "choice");
  if (mc.kind === "choice") assert.deepEqual(mc.rows[0].choices, [" no", " yes"]);
  const g = sets[2];
  if (g.kind === "generation") assert.equal(g.rows[0].answer, "2");
  const numericId = parseDatasets(`{"task":"t","id":7,"text":"x"}`, "n.jsonl")[0];
  assert.equal(numericId.rows[0].id, "7");
});

Deno.test("bad rows are refused with file, line and field", () => {
  const bad: [string, RegExp][] = [
    ["not json", /x\.jsonl:2: not JSON/],
    ["[1,2]", /x\.jsonl:2: a row must be a JSON object/],
    [`{"task":"t","id":"1","foo":1}`, /x\.jsonl:2: unknown row shape/],
    [MC.replace('"gold":1', '"gold":2'), /x\.jsonl:2: bad choice row: gold: gold must index/],
    [MC.replace(',"gold":1', ""), /x\.jsonl:2: bad choice row: gold:/],
    [MC.replace('"choices":[" no"," yes"]', '"choices":[" no"]'), /bad choice row: choices:/],
    [WG.replace('"continuation":" won."', '"continuation":5'), /bad partial row: continuation:/],
    [
      GSM.replace('"context":"Question: 1+1?\\nAnswer:"', '"context":""'),
      /bad generation row: context/,
    ],
    [TXT.replace('"task":"wikitext2"', '"task":""'), /bad text row: task:/],
    [MC.replace('"task":"boolq"', '"task":"wikitext2"'), /task "wikitext2" mixes row shapes/],
  ];
  for (const [line, re] of bad) {
    assert.throws(() => parseDatasets(`${TXT}\n${line}`, "x.jsonl"), (e: Error) => {
      assert.ok(e instanceof DatasetError, `${line}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.throws(() => parseDatasets("\n\n", "empty.jsonl"), /empty\.jsonl: no rows/);
});

Deno.test("a folder is read as one split per task, falling back to test", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const f of ["boolq.train", "boolq.validation", "gsm8k.test", "gsm8k.train", "README"]) {
      await Deno.writeTextFile(`${dir}/${f}.jsonl`, "");
    }
    assert.deepEqual(await datasetFiles(dir), [
      `${dir}/boolq.validation.jsonl`,
      `${dir}/gsm8k.test.jsonl`,
    ]);
    assert.deepEqual(await datasetFiles(dir, "train"), [
      `${dir}/boolq.train.jsonl`,
      `${dir}/gsm8k.train.jsonl`,
    ]);
    await assert.rejects(() => datasetFiles(`${dir}/nope`), /no such file or folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("row samples are seeded, capped per group and keep file order", () => {
  const rows = Array.from({ length: 40 }, (_, i) => ({ i, task: i % 2 ? "a" : "b" }));
  const s1 = sampleRows(rows, 5, 1, (r) => r.task);
  assert.deepEqual(sampleRows(rows, 5, 1, (r) => r.task), s1);
  assert.equal(s1.filter((r) => r.task === "a").length, 5);
  assert.equal(s1.filter((r) => r.task === "b").length, 5);
  assert.deepEqual(s1.map((r) => r.i), [...s1.map((r) => r.i)].sort((x, y) => x - y));
  assert.notDeepEqual(sampleRows(rows, 5, 2, (r) => r.task), s1);
  assert.equal(sampleRows(rows, 0, 1, (r) => r.task).length, 40);
  assert.deepEqual(sampleRows(rows, 2, 1, (r) => r.task, true).map((r) => r.i), [0, 1, 2, 3]);
});

const ITEMS: Selectable[] = [
  { method: "dense", task: null, share: 0, name: "dense" },
  { method: "flap", task: null, share: 0.2, name: "flap@0.2" },
  { method: "flap", task: null, share: 0.5, name: "flap@0.5" },
  { method: "seap-routed", task: null, share: 0.5, name: "seap-routed@0.5" },
  { method: "mask", task: "reverse", share: 0.2, name: "reverse@0.2" },
  { method: "mask", task: "reverse", share: 0.5, name: "reverse@0.5" },
  { method: "mask", task: "sort_digits", share: 0.5, name: "sort_digits@0.5" },
];
const names = (specs: string[]) =>
  selectContenders(ITEMS, parseSelectors(specs)).map((c) => c.name);

Deno.test("mask selectors: methods, shares, tasks, globs", () => {
  assert.deepEqual(names([]), ["dense", "flap@0.2", "flap@0.5", "seap-routed@0.5"]);
  assert.deepEqual(names(["share=0.5"]), ["flap@0.5", "seap-routed@0.5"]);
  assert.deepEqual(names(["method=flap|seap-*,share=0.5"]), ["flap@0.5", "seap-routed@0.5"]);
  assert.deepEqual(names(["reverse@*"]), ["reverse@0.2", "reverse@0.5"]);
  assert.deepEqual(names(["task=reverse|sort_digits,share=0.5"]), [
    "reverse@0.5",
    "sort_digits@0.5",
  ]);
  assert.deepEqual(names(["method=mask,share=0.2;method=dense"]), ["dense", "reverse@0.2"]);
  assert.deepEqual(names(["share=0.*", "*@0.2"]), [
    "flap@0.2",
    "flap@0.5",
    "seap-routed@0.5",
    "reverse@0.2",
  ]);
  assert.throws(() => parseSelectors(["method=flap,bogus=1"]), SelectorError);
  assert.throws(() => parseSelectors(["share="]), /not key=value/);
});
