/**
 * Scale serving check (not in CI: needs a model of 1–3B parameters and minutes): starts the
 * server (main.ts, WASM backend) in a child process on a model folder and its calibrated mask
 * set, waits for /healthz, and asks one streamed chat completion through the `openai` client
 * per prompt, the router choosing the mask. Reports load time (spawn to ready), the server's
 * peak RSS (VmHWM of the child), first-token latency, decode tok/s (tokens after the first over the time
 * after the first), the mask the router chose and the WASM memory (build and limit). Fails
 * unless every answer ran a mask the router chose (its task's mask, or the generic one when it
 * is unsure), never dense or one the request forced.
 *
 *   deno run -A bench/scale_serve.ts --model DIR --masks DIR [--weights f32|f16|q8]
 *     [--max-memory 12G] [--tokens 16] [--prompt TEXT]...
 *
 * Models: random weights in real shapes (tools/make_random_model.ts, writeRandomModelF16);
 * masks: `deno task calibrate` on that model (see README, Scale).
 */

import { parseArgs } from "node:util";
import OpenAI from "openai";
import { parseWeightDType } from "../lib/backends/select_backend.ts";
import { parseByteSize } from "../lib/backends/wasm_memory.ts";

/** Chat prompts of three tasks, from the default model's calibration set (calibration.jsonl). */
export const DEFAULT_PROMPTS = [
  "What is l c k k spelled backwards?",
  "Sort 3 2 3 3 in ascending order.",
  "Tell me which is greater: 58 or 45",
];

/** One served request's measurements. */
export interface ServeRow {
  model: string;
  weights: string;
  /** SEAP_MAX_MEMORY given to the server ("" = its default). */
  maxMemory: string;
  loadS: number;
  peakRssBytes: number;
  firstTokenMs: number;
  decodeTokS: number;
  completionTokens: number;
  mask: string;
  task: string | null;
  confidence: number | null;
  selection: string;
  /** The server's log line about the WASM memory it made. */
  memoryLine: string;
}

/** Peak resident bytes of process `pid` (Linux VmHWM). */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  if (!m) throw new Error(`scale_serve: no VmHWM for pid ${pid}`);
  return Number(m[1]) * 1024;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Serve `model` with `masks` and time one routed chat completion. */
export async function serveOnce(opts: {
  model: string;
  masks: string;
  weights: string;
  maxMemory?: string;
  tokens: number;
  /** Chat prompts, asked one after another (each a row). */
  prompts: string[];
  /** Most seconds to wait for the server to load (default 1800). */
  loadTimeoutS?: number;
}): Promise<ServeRow[]> {
  const weights = parseWeightDType(opts.weights);
  if (opts.maxMemory) parseByteSize(opts.maxMemory);
  const port = freePort();
  const env: Record<string, string> = {
    SEAP_MODEL: opts.model,
    SEAP_MASKS: opts.masks,
    SEAP_WEIGHTS: weights,
    SEAP_BACKEND: "wasm",
    SEAP_PORT: String(port),
    SEAP_MAX_CONCURRENT: "1",
    SEAP_TIMEOUT_MS: "0",
  };
  if (opts.maxMemory) env.SEAP_MAX_MEMORY = opts.maxMemory;
  const main = new URL("../main.ts", import.meta.url).pathname;
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      for (const l of chunk.split("\n")) {
        if (l.trim()) {
          lines.push(l);
          console.error(`  server: ${l}`);
        }
      }
    }
  };
  const pumps = [pump(child.stdout), pump(child.stderr)];
  const base = `http://127.0.0.1:${port}`;
  try {
    const deadline = t0 + (opts.loadTimeoutS ?? 1800) * 1000;
    let shown = 0;
    for (;;) {
      const st = await Promise.race([
        child.status.then((s) => s),
        new Promise<null>((r) => setTimeout(() => r(null), 500)),
      ]);
      if (st) throw new Error(`server exited (code ${st.code}) while loading`);
      try {
        const r = await fetch(`${base}/healthz`);
        const body = await r.json();
        if (r.ok && body.status === "ready") break;
        if (body.status === "failed") throw new Error(`server failed to load: ${body.error}`);
      } catch (e) {
        if ((e as Error).message.startsWith("server failed")) throw e;
      }
      if (performance.now() > deadline) throw new Error("server did not load in time");
      const s = Math.floor((performance.now() - t0) / 10000);
      if (s > shown) {
        shown = s;
        console.error(`scale_serve: loading ... ${s * 10} s, RSS ${mib(peakRss(child.pid))} MiB`);
      }
    }
    const loadS = (performance.now() - t0) / 1000;
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
    const models = await client.models.list();
    const id = models.data[0].id;
    const rows: ServeRow[] = [];
    for (const prompt of opts.prompts) {
      const q0 = performance.now();
      const stream = await client.chat.completions.create({
        model: id,
        messages: [{ role: "user", content: prompt }],
        max_tokens: opts.tokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let first = 0, last = 0, tokens = 0, seap: Record<string, unknown> | undefined;
      let text = "";
      for await (const chunk of stream) {
        const c = chunk as typeof chunk & { seap?: Record<string, unknown> };
        seap ??= c.seap;
        if (c.usage) tokens = c.usage.completion_tokens;
        const d = c.choices[0]?.delta?.content;
        if (d) {
          text += d;
          last = performance.now();
          if (first === 0) first = last;
        }
      }
      if (!seap) throw new Error("no seap info in the stream");
      // The router chose (a task mask, or the generic one when unsure); never dense or forced.
      if (seap.selection === "forced" || seap.mask === "dense") {
        throw new Error(`the mask was not routed: ${JSON.stringify(seap)}`);
      }
      console.error(
        `scale_serve: ${JSON.stringify(prompt)} -> ${JSON.stringify(text.slice(0, 60))}, ` +
          `${tokens} tokens, ${JSON.stringify(seap)}`,
      );
      rows.push({
        model: opts.model.replace(/\/+$/, "").split("/").pop()!,
        weights,
        maxMemory: opts.maxMemory ?? "",
        loadS,
        peakRssBytes: peakRss(child.pid),
        firstTokenMs: first - q0,
        decodeTokS: tokens > 1 ? (tokens - 1) / ((last - first) / 1000) : NaN,
        completionTokens: tokens,
        mask: String(seap.mask),
        task: (seap.task as string | null) ?? null,
        confidence: typeof seap.confidence === "number" ? seap.confidence : null,
        selection: String(seap.selection),
        memoryLine: lines.find((l) => l.includes("WASM memory")) ?? "",
      });
    }
    return rows;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await Promise.allSettled(pumps);
  }
}

function mib(n: number): string {
  return (n / 2 ** 20).toFixed(0);
}

/** Markdown rows of {@link serveOnce}'s results. */
export function formatServeTable(rows: ServeRow[]): string {
  const out = [
    "| model | weights | SEAP_MAX_MEMORY | WASM memory | load s | peak RSS MiB | first token ms | " +
    "decode tok/s | router: mask (selection, task, confidence) |",
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.model} | ${r.weights} | ${r.maxMemory || "default"} | ` +
        `${r.memoryLine.replace(/.*WASM memory: /, "")} | ${r.loadS.toFixed(1)} | ` +
        `${mib(r.peakRssBytes)} | ${r.firstTokenMs.toFixed(0)} | ${r.decodeTokS.toFixed(2)} | ` +
        `${r.mask} (${r.selection}, ${r.task ?? "-"}, ${r.confidence?.toFixed(2) ?? "-"}) |`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      masks: { type: "string" },
      weights: { type: "string", default: "f32" },
      "max-memory": { type: "string" },
      tokens: { type: "string", default: "16" },
      prompt: { type: "string", multiple: true },
    },
  });
  if (!values.model || !values.masks) {
    console.error("usage: scale_serve.ts --model DIR --masks DIR [--weights f32|f16|q8] ...");
    Deno.exit(2);
  }
  const tokens = Number(values.tokens);
  if (!Number.isInteger(tokens) || tokens < 2) throw new Error("--tokens: an integer ≥ 2");
  const rows = await serveOnce({
    model: values.model,
    masks: values.masks,
    weights: values.weights!,
    maxMemory: values["max-memory"],
    tokens,
    prompts: values.prompt?.length ? values.prompt : DEFAULT_PROMPTS,
  });
  console.log(formatServeTable(rows));
  console.log(JSON.stringify(rows));
}
