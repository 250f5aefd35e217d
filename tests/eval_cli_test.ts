/**
 * `deno task eval` end to end (tools/eval.ts in a subprocess), writing only to temporary
 * folders: every benchmark row shape on the fixture chat model; a bad row refused with its
 * file and line; the transfer matrix and the curve built from saved statistics on the default
 * model and its committed mask set.
 */

import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;
const CHAT = `${ROOT}tests/fixtures/tiny_chat`;
const DEFAULT_MASKS = `${ROOT}masks/seap-tiny-skills`;

async function evalCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tools/eval.ts`, "--no-progress", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

const ROWS = [
  `{"task":"mc","id":"1","context":"Question: Is the sky blue?\\nAnswer:","choices":[" no"," yes"],"gold":1}`,
  `{"task":"mc","id":"2","context":"Question: Pick a colour.\\nAnswer:","choices":[" red"," green"," blue"],"gold":2}`,
  `{"task":"wg","id":"1","contexts":["Ann helped Bo because Ann","Ann helped Bo because Bo"],"continuation":" was kind.","gold":0}`,
  `{"task":"math","id":"1","context":"Question: What is 2 plus 3?\\nAnswer:","target":" 5 #### 5","answer":"5"}`,
  `{"task":"wiki","id":"1","text":" = A title = \\n Some plain text about a title , with words ."}`,
];

Deno.test("eval CLI: every row shape on the fixture chat model, outputs in --out only", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "eval-cli-" });
  try {
    await Deno.writeTextFile(`${tmp}/rows.jsonl`, ROWS.join("\n") + "\n");
    const out = `${tmp}/out`;
    const r = await evalCli([
      "--model",
      CHAT,
      "--data",
      `${tmp}/rows.jsonl`,
      "--backend",
      "reference",
      "--max-gen",
      "8",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.err);
    const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(files, ["eval.json", "eval.md"]);
    const j = JSON.parse(await Deno.readTextFile(`${out}/eval.json`));
    assert.equal(j.results.length, 1);
    assert.equal(j.results[0].method, "dense");
    const byTask = Object.fromEntries(
      j.results[0].results.map((x: { task: string }) => [x.task, x]),
    );
    assert.deepEqual(Object.keys(byTask).sort(), ["math", "mc", "wg", "wiki"]);
    assert.deepEqual(Object.keys(byTask.mc.metrics).sort(), ["acc", "acc_norm"]);
    assert.deepEqual(Object.keys(byTask.wg.metrics), ["acc"]);
    assert.deepEqual(Object.keys(byTask.math.metrics), ["exact_match"]);
    assert.ok(byTask.wiki.metrics.token_perplexity > 1);
    for (const x of Object.values(byTask) as { rowsPerSecond: number }[]) {
      assert.ok(x.rowsPerSecond > 0);
    }
    assert.equal(byTask.mc.n, 2);
    const md = await Deno.readTextFile(`${out}/eval.md`);
    assert.match(md, /\| contender \| share \| removed \| mc \| wg \| math \| mc norm \| mean/);
    assert.match(md, /Reproduce:/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("eval CLI: a bad row is refused with its file and line", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "eval-cli-" });
  try {
    await Deno.writeTextFile(
      `${tmp}/bad.jsonl`,
      `${ROWS[0]}\n{"task":"mc","id":"3","context":"x","choices":[" a"," b"],"gold":5}\n`,
    );
    const r = await evalCli(["--model", CHAT, "--data", `${tmp}/bad.jsonl`, "--out", `${tmp}/o`]);
    assert.equal(r.code, 2);
    assert.match(r.err, /bad\.jsonl:2: bad choice row: gold: gold must index into choices/);
    const r2 = await evalCli(["--model", CHAT, "--data", `${tmp}/bad.jsonl`, "--masks", "share="]);
    assert.equal(r2.code, 2);
    assert.match(r2.err, /bad selector/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("eval CLI: transfer matrix and a curve from saved statistics", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "eval-cli-" });
  try {
    const t = await evalCli([
      "--transfer",
      "--masks",
      "task=reverse|sort_digits|generic",
      "--shares",
      "0.2",
      "--limit",
      "2",
      "--out",
      `${tmp}/transfer`,
    ]);
    assert.equal(t.code, 0, t.err);
    const tj = JSON.parse(await Deno.readTextFile(`${tmp}/transfer/eval.json`));
    assert.equal(tj.mode, "transfer");
    assert.deepEqual(tj.transfer[0].rows, ["reverse", "sort_digits", "generic", "dense"]);
    assert.ok(tj.transfer[0].cols.includes("reverse"));
    assert.ok((await Deno.readTextFile(`${tmp}/transfer/transfer_0.2.svg`)).startsWith("<svg"));

    const c = await evalCli([
      "--from-stats",
      `${DEFAULT_MASKS}/stats.safetensors`,
      "--shares",
      "0.2,0.4",
      "--masks",
      "method=seap-generic|wanda-sp|seap-routed",
      "--limit",
      "1",
      "--out",
      `${tmp}/curve`,
    ]);
    assert.equal(c.code, 0, c.err);
    const cj = JSON.parse(await Deno.readTextFile(`${tmp}/curve/eval.json`));
    assert.equal(cj.mode, "curve");
    assert.deepEqual(
      cj.results.map((x: { label: string }) => x.label),
      [
        "dense",
        "wanda-sp@0.2",
        "seap-generic@0.2",
        "seap-routed@0.2",
        "wanda-sp@0.4",
        "seap-generic@0.4",
        "seap-routed@0.4",
      ],
    );
    const svg = await Deno.readTextFile(`${tmp}/curve/curve.svg`);
    assert.equal(svg.match(/<path d="M/g)?.length, 3, "one line per method");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
