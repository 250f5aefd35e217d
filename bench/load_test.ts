/**
 * Load generator: throughput and p50/p95 latency (and time to first token) of streaming chat
 * completions at 1, 4 and 16 concurrent clients on loopback, dense vs auto-routed.
 *
 *   deno run -A bench/load_test.ts [--url http://127.0.0.1:8000] [--requests 32]
 *     [--max-tokens 32] [--levels 1,4,16] [--seconds 60] [--model DIR] [--backend auto]
 *
 * Without --url the server runs in this process (Deno.serve on 127.0.0.1, random port) on
 * the configured model (SEAP_* variables as for main.ts). Bounded: at most --requests per
 * (mode, level), and no new request after --seconds per (mode, level). Only loopback traffic.
 * Writes bench/out/load_test.json and prints a Markdown table.
 */

import { createApp } from "../lib/server/app.ts";
import { readServerConfig } from "../lib/server/config.ts";
import { loadEngine } from "../lib/server/engine_handle.ts";

interface Result {
  mode: string;
  clients: number;
  requests: number;
  errors: number;
  seconds: number;
  reqPerS: number;
  tokPerS: number;
  /** Mean completion tokens per request. */
  meanTokens: number;
  p50Ms: number;
  p95Ms: number;
  ttftP50Ms: number;
  ttftP95Ms: number;
  masks: Record<string, number>;
}

function flag(name: string, def: string): string {
  const i = Deno.args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return def;
  const a = Deno.args[i];
  return a.includes("=") ? a.slice(a.indexOf("=") + 1) : Deno.args[i + 1];
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

async function prompts(dir: string | null): Promise<string[]> {
  const fallback = [
    "Give the reverse of a b c d",
    "Is 17 bigger than 9?",
    "What is the capital of France?",
    "Uppercase this word: table",
    "Sort these digits: 5 1 4 2",
    "Tell me a short story about a cat.",
  ];
  if (!dir) return fallback;
  try {
    const lines = (await Deno.readTextFile(`${dir}/eval.jsonl`)).split("\n").filter((l) =>
      l.trim()
    );
    const out = lines.map((l) => JSON.parse(l).prompt).filter((p) => typeof p === "string");
    // A fixed sample across tasks: seeded shuffle, first 97.
    let a = 12345;
    const rand = () => {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      return a / 2 ** 32;
    };
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out.slice(0, 97);
  } catch {
    return fallback;
  }
}

async function oneRequest(
  base: string,
  model: string,
  prompt: string,
  maxTokens: number,
  mask: string,
): Promise<{ ms: number; ttftMs: number; tokens: number; mask: string }> {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      messages: [{ role: "user", content: prompt }],
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      seap: { mask },
    }),
  });
  if (r.status !== 200) {
    await r.body?.cancel();
    throw new Error(`status ${r.status}`);
  }
  const used = r.headers.get("x-seap-mask") ?? "?";
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let ttft = NaN;
  let tokens = 0;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!frame.startsWith("data: ") || frame === "data: [DONE]") continue;
      const j = JSON.parse(frame.slice(6));
      if (j.error) throw new Error(j.error.message);
      if (Number.isNaN(ttft) && j.choices?.[0]?.delta?.content) ttft = performance.now() - t0;
      if (j.usage) tokens = j.usage.completion_tokens;
    }
  }
  const ms = performance.now() - t0;
  return { ms, ttftMs: Number.isNaN(ttft) ? ms : ttft, tokens, mask: used };
}

async function level(
  base: string,
  model: string,
  mode: string,
  clients: number,
  total: number,
  seconds: number,
  ps: string[],
  maxTokens: number,
): Promise<Result> {
  const lat: number[] = [];
  const ttft: number[] = [];
  const masks: Record<string, number> = {};
  let next = 0;
  let tokens = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const worker = async () => {
    while (next < total && performance.now() < deadline) {
      const k = next++;
      try {
        const r = await oneRequest(base, model, ps[k % ps.length], maxTokens, mode);
        lat.push(r.ms);
        ttft.push(r.ttftMs);
        tokens += r.tokens;
        masks[r.mask] = (masks[r.mask] ?? 0) + 1;
      } catch (e) {
        errors++;
        console.error(`  request ${k}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  const s = (performance.now() - t0) / 1000;
  return {
    mode,
    clients,
    requests: lat.length,
    errors,
    seconds: s,
    reqPerS: lat.length / s,
    tokPerS: tokens / s,
    meanTokens: tokens / Math.max(1, lat.length),
    p50Ms: pct(lat, 0.5),
    p95Ms: pct(lat, 0.95),
    ttftP50Ms: pct(ttft, 0.5),
    ttftP95Ms: pct(ttft, 0.95),
    masks,
  };
}

if (import.meta.main) {
  const levels = flag("levels", "1,4,16").split(",").map(Number);
  const perLevel = Number(flag("requests", "32"));
  const seconds = Number(flag("seconds", "60"));
  const maxTokens = Number(flag("max-tokens", "32"));
  let url = flag("url", "");
  let close: (() => Promise<void>) | null = null;
  let modelDir: string | null = null;
  if (!url) {
    const cfg = readServerConfig(undefined, Deno.args);
    cfg.maxConcurrent = Math.max(...levels);
    cfg.queueSize = 4 * Math.max(...levels);
    cfg.timeoutMs = 600_000;
    const engine = await loadEngine(cfg);
    modelDir = engine.model.dir;
    console.log(
      `server: model ${engine.modelId} (${engine.backendName}), masks ${engine.catalog.source}, ` +
        `default sparsity ${engine.catalog.defaultSparsity}, max concurrent ${cfg.maxConcurrent}`,
    );
    const app = createApp(engine, cfg);
    const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    url = `http://127.0.0.1:${(srv.addr as Deno.NetAddr).port}`;
    close = () => srv.shutdown();
  }
  const models = await (await fetch(`${url}/v1/models`)).json();
  const model = models.data[0].id as string;
  const ps = await prompts(modelDir);
  // Warm-up (compiles kernels, fills pools).
  await oneRequest(url, model, ps[0], 4, "dense");
  await oneRequest(url, model, ps[1], 4, "auto");
  const results: Result[] = [];
  for (const clients of levels) {
    for (const mode of ["dense", "auto"]) {
      const total = Math.max(perLevel, clients * 2);
      const r = await level(url, model, mode, clients, total, seconds, ps, maxTokens);
      results.push(r);
      console.log(
        `${mode.padEnd(5)} c=${String(clients).padStart(2)}: ${r.requests} req in ${
          r.seconds.toFixed(1)
        } s, ` +
          `${r.tokPerS.toFixed(1)} tok/s, p50 ${r.p50Ms.toFixed(0)} ms, p95 ${
            r.p95Ms.toFixed(0)
          } ms`,
      );
    }
  }
  console.log(`\nmodel ${model}, max_tokens ${maxTokens}, greedy, streaming, loopback\n`);
  console.log(
    "| mode | clients | requests | tokens/req | req/s | tok/s | p50 ms | p95 ms | TTFT p50 ms | TTFT p95 ms | masks |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const masks = Object.entries(r.masks).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`)
      .join(" ");
    console.log(
      `| ${r.mode} | ${r.clients} | ${r.requests}${r.errors ? ` (+${r.errors} err)` : ""} | ${
        r.meanTokens.toFixed(1)
      } | ${r.reqPerS.toFixed(2)} | ` +
        `${r.tokPerS.toFixed(1)} | ${r.p50Ms.toFixed(0)} | ${r.p95Ms.toFixed(0)} | ${
          r.ttftP50Ms.toFixed(0)
        } | ` +
        `${r.ttftP95Ms.toFixed(0)} | ${masks} |`,
    );
  }
  await Deno.mkdir("bench/out", { recursive: true });
  await Deno.writeTextFile(
    "bench/out/load_test.json",
    JSON.stringify({ model, maxTokens, levels, results }, null, 2),
  );
  await close?.();
}
