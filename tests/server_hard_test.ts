/**
 * The hardening suite (`deno task test:hard` runs it at full size; `deno task test` runs a
 * shortened form). Over real sockets:
 *
 * - fuzz: hostile requests across every endpoint (tests/server_hard_cases.ts) → 0 × 5xx, and
 *   every error an OpenAI-shaped JSON body;
 * - overload: more concurrent streams than slots + queue → each one a 200 whose stream
 *   completes, or a 429 with Retry-After;
 * - disconnect storm: streams aborted mid-generation → no sequence and no backend memory
 *   left behind;
 * - soak: many generations with the resident memory sampled (SVG curve) → it plateaus;
 * - the end-to-end test of the real process under the narrow permissions of
 *   `deno task serve`, with the SIGTERM drain (503s, in-flight work finishes) and a corrupt
 *   model refused at start.
 *
 * SEAP_HARD=full selects the full sizes; results land in bench/out/hard/ (JSON + SVG).
 */

import assert from "node:assert/strict";
import OpenAI from "openai";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { lineChartSvg } from "../lib/eval/line_chart_svg.ts";
import { DEFAULT_CONFIG } from "../lib/server/config.ts";
import { REPO_ROOT, servePermissionFlags } from "../lib/server/permissions.ts";
import { hardCases } from "./server_hard_cases.ts";
import { rawRequest } from "./server_raw_http.ts";
import { serveLoopback, tinyApp } from "./server_helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const FULL = Deno.env.get("SEAP_HARD") === "full";
const SIZES = FULL
  ? { fuzz: 12_000, overload: 120, storm: 200, soak: 6_000 }
  : { fuzz: 1_200, overload: 24, storm: 30, soak: 300 };
const OUT = `${REPO_ROOT}/bench/out/hard`;
const MAX_BODY = 64 * 1024;
const results: Record<string, unknown> = { full: FULL, sizes: SIZES };

async function saveResults(): Promise<void> {
  await Deno.mkdir(OUT, { recursive: true });
  await Deno.writeTextFile(`${OUT}/hardening.json`, JSON.stringify(results, null, 2) + "\n");
}

function isOpenAiError(text: string): boolean {
  try {
    const e = JSON.parse(text).error;
    return typeof e?.message === "string" && typeof e.type === "string" && "param" in e &&
      "code" in e;
  } catch {
    return false;
  }
}

/** Run `tasks` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, run: (t: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      await run(items[i], i);
    }
  }));
}

Deno.test(`hard: ${SIZES.fuzz} hostile requests → no 5xx, every error OpenAI-shaped`, async () => {
  const { app, engine } = await tinyApp({
    maxBodyBytes: MAX_BODY,
    readTimeoutMs: 2_000,
    maxConcurrent: 4,
    queueSize: 64,
    backend: await WasmBackend.create(),
  });
  const srv = serveLoopback(app.fetch);
  const { port } = srv.server.addr as Deno.NetAddr;
  const cases = hardCases(engine.modelId, SIZES.fuzz, 1313, MAX_BODY);
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, Record<string, number>> = {};
  const bad: string[] = [];
  let noAnswer = 0, httpLayer = 0;
  const t0 = performance.now();
  try {
    await pool(cases, 8, async (c) => {
      const r = await rawRequest(port, c.head, c.body);
      const key = r.status === 0 ? "closed" : String(r.status);
      byStatus[key] = (byStatus[key] ?? 0) + 1;
      (byKind[c.kind] ??= {})[key] = (byKind[c.kind][key] ?? 0) + 1;
      if (r.status === 0) {
        noAnswer++;
        return;
      }
      // Cases Deno's HTTP parser refuses before the app sees them (an empty 4xx): header
      // blocks past its limit, CONNECT, and the "*" request target.
      const headerCase = c.kind === "oversized header" || c.kind === "many headers" ||
        /^CONNECT |^\S+ \* HTTP/.test(c.head);
      if (r.status >= 500) {
        bad.push(`${r.status} ${c.kind}: ${c.head.slice(0, 80)} → ${r.body.slice(0, 200)}`);
      } else if (r.status >= 400 && headerCase && r.body === "") {
        httpLayer++; // refused by Deno's HTTP parser before the app: an empty 4xx
      } else if (r.status >= 400 && !isOpenAiError(r.body)) {
        bad.push(
          `not OpenAI-shaped ${r.status} ${c.kind}: ${c.head.slice(0, 80)} → ${
            r.body.slice(0, 120)
          }`,
        );
      }
    });
  } finally {
    await srv.close();
  }
  const fiveXX = Object.entries(byStatus).filter(([s]) => Number(s) >= 500)
    .reduce((a, [, n]) => a + n, 0);
  results.fuzz = {
    sent: cases.length,
    seconds: +((performance.now() - t0) / 1000).toFixed(1),
    byStatus,
    fiveXX,
    closedWithoutAnswer: noAnswer,
    emptyFromHttpLayer: httpLayer,
    byKind,
  };
  await saveResults();
  console.log(`fuzz: ${cases.length} requests: ${JSON.stringify(byStatus)}`);
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} bad answers`);
  assert.equal(fiveXX, 0);
  // Only the HTTP layer may drop a connection, and only for oversized headers.
  const closedKinds = Object.entries(byKind).filter(([, s]) => s.closed).map(([k]) => k);
  assert.ok(
    closedKinds.every((k) => k === "oversized header" || k === "many headers"),
    `${closedKinds}`,
  );
  assert.ok((byStatus["200"] ?? 0) > 0, "valid requests were served meanwhile");
});

Deno.test(`hard: overload of ${SIZES.overload} streams → each a complete 200 stream or a 429`, async () => {
  const { app, engine, scheduler } = await tinyApp({ maxConcurrent: 2, queueSize: 4 });
  const srv = serveLoopback(app.fetch);
  const counts = { ok: 0, complete: 0, rejected: 0, other: 0 };
  try {
    await Promise.all(Array.from({ length: SIZES.overload }, async (_, i) => {
      const r = await fetch(`${srv.base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: engine.modelId,
          messages: [{ role: "user", content: `hello ${i}` }],
          max_tokens: 24,
          stream: true,
        }),
      });
      const text = await r.text();
      if (r.status === 200) {
        counts.ok++;
        const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
        const last = events.at(-1), finish = events.at(-2);
        if (last === "data: [DONE]" && /"finish_reason":"(stop|length)"/.test(finish ?? "")) {
          counts.complete++;
        }
      } else if (r.status === 429 && r.headers.get("retry-after") && isOpenAiError(text)) {
        counts.rejected++;
      } else counts.other++;
    }));
  } finally {
    await srv.close();
  }
  results.overload = { sent: SIZES.overload, ...counts };
  await saveResults();
  console.log(`overload: ${JSON.stringify(counts)}`);
  assert.equal(counts.other, 0);
  assert.equal(counts.complete, counts.ok, "every accepted stream ran to [DONE]");
  assert.ok(counts.ok >= 6 && counts.rejected > 0, JSON.stringify(counts));
  assert.equal(scheduler.activeCount + scheduler.queueDepth, 0);
});

Deno.test(`hard: disconnect storm of ${SIZES.storm} streams → no leaked sequence or memory`, async () => {
  const be = await WasmBackend.create();
  const { app, engine, scheduler } = await tinyApp({
    maxConcurrent: 4,
    queueSize: 256,
    backend: be,
  });
  const srv = serveLoopback(app.fetch);
  const body = (i: number) =>
    JSON.stringify({
      model: engine.modelId,
      messages: [{ role: "user", content: `storm ${i}` }],
      max_tokens: 200,
      stream: true,
    });
  try {
    // Warm the backend's pools, then take the baseline.
    const warm = await fetch(`${srv.base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body(-1),
    });
    await warm.text();
    const baseline = be.usedBytes;
    let aborted = 0;
    await Promise.all(Array.from({ length: SIZES.storm }, async (_, i) => {
      const ac = new AbortController();
      try {
        const r = await fetch(`${srv.base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: body(i),
          signal: ac.signal,
        });
        const reader = r.body!.getReader();
        for (let k = 0; k < 1 + (i % 4); k++) await reader.read();
        ac.abort();
        aborted++;
      } catch {
        aborted++;
      }
    }));
    for (let i = 0; i < 200 && scheduler.activeCount + scheduler.queueDepth > 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const metrics = await (await fetch(`${srv.base}/metrics`)).text();
    const active = Number(/^seap_active_sequences (\d+)/m.exec(metrics)?.[1]);
    results.storm = {
      streams: SIZES.storm,
      aborted,
      activeAfter: active,
      leakedBytes: be.usedBytes - baseline,
    };
    await saveResults();
    assert.equal(active, 0, "no sequence left");
    assert.equal(be.usedBytes, baseline, "every KV cache and temporary returned to the allocator");
  } finally {
    await srv.close();
  }
});

Deno.test(`hard: soak of ${SIZES.soak} generations → resident memory plateaus (SVG curve)`, async () => {
  const { app, engine } = await tinyApp({
    maxConcurrent: 4,
    queueSize: 64,
    backend: await WasmBackend.create(),
  });
  const srv = serveLoopback(app.fetch);
  const curve: [number, number][] = [];
  const every = Math.max(1, Math.floor(SIZES.soak / 60));
  const mib = () => Deno.memoryUsage().rss / 2 ** 20;
  let done = 0, ok = 0;
  try {
    await pool(Array.from({ length: SIZES.soak }, (_, i) => i), 4, async (i) => {
      const stream = i % 3 === 0;
      const r = await fetch(`${srv.base}/v1/${i % 2 ? "chat/completions" : "completions"}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(
          i % 2
            ? {
              model: engine.modelId,
              messages: [{ role: "user", content: `soak ${i}` }],
              max_tokens: 8,
              stream,
              seed: i,
            }
            : { model: engine.modelId, prompt: `soak ${i}`, max_tokens: 8, stream, seed: i },
        ),
      });
      await r.text();
      if (r.status === 200) ok++;
      if (++done % every === 0) curve.push([done, +mib().toFixed(1)]);
    });
  } finally {
    await srv.close();
  }
  await Deno.mkdir(OUT, { recursive: true });
  await Deno.writeTextFile(
    `${OUT}/soak_memory.svg`,
    lineChartSvg(
      `Resident memory over a ${SIZES.soak}-request soak (tiny model, wasm)`,
      "requests completed",
      "RSS (MiB)",
      [{ name: "RSS", points: curve }],
    ),
  );
  const q = Math.floor(curve.length / 4);
  const peak = (a: [number, number][]) => Math.max(...a.map((p) => p[1]));
  const half = peak(curve.slice(q * 2, q * 3)), end = peak(curve.slice(q * 3));
  results.soak = {
    requests: SIZES.soak,
    ok,
    rssMiB: curve,
    peakThirdQuarter: half,
    peakLastQuarter: end,
  };
  await saveResults();
  console.log(`soak: ${ok}/${SIZES.soak} ok; RSS ${curve[0]?.[1]} → ${curve.at(-1)?.[1]} MiB`);
  assert.equal(ok, SIZES.soak);
  // Plateau: the last quarter's peak is within 10% + 24 MiB of the third quarter's.
  assert.ok(end <= half * 1.1 + 24, `RSS still growing: ${half} → ${end} MiB`);
});

/** A free loopback port (bound and released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** Start main.ts as `deno task serve` does, with only the narrow permissions. */
function spawnServer(port: number, env: Record<string, string> = {}) {
  const cfg = { ...DEFAULT_CONFIG, port, modelDir: env.SEAP_MODEL ?? null };
  const args = [
    "run",
    "--unstable-no-legacy-abort",
    ...servePermissionFlags(cfg),
    `${REPO_ROOT}/main.ts`,
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { SEAP_PORT: String(port), SEAP_DRAIN_MS: "20000", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([child.stdout, child.stderr].map((s) => new Response(s).text()));
  return { child, output, args };
}

Deno.test("hard: end-to-end under the narrow permissions of `deno task serve`, with the SIGTERM drain", async () => {
  const port = freePort();
  const { child, output, args } = spawnServer(port);
  const base = `http://127.0.0.1:${port}`;
  try {
    assert.ok(!args.some((a) => /^--allow-(all|write|run|ffi|sys)\b|^-A$/.test(a)), args.join(" "));
    let ready = false;
    for (let i = 0; i < 300 && !ready; i++) {
      ready = await fetch(`${base}/healthz`).then((r) => (r.body?.cancel(), r.ok), () => false);
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ready, "the server became ready");
    // A real OpenAI client, unchanged.
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "none" });
    const models = await client.models.list();
    const model = models.data[0].id;
    const chat = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Reverse the letters: j g t v s" }],
      temperature: 0,
    });
    assert.equal(chat.choices[0].message.content, "s v t g j");
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Give the reverse of b m h" }],
      temperature: 0,
      stream: true,
    });
    let streamed = "";
    for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? "";
    assert.equal(streamed, "h m b");
    const completion = await client.completions.create({ model, prompt: "hi", max_tokens: 3 });
    assert.equal(completion.choices.length, 1);
    for (const path of ["/openapi.json", "/metrics", "/v1/route"]) {
      const r = path === "/v1/route"
        ? await fetch(`${base}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"prompt":"Sort the digits 3 1 2"}',
        })
        : await fetch(`${base}${path}`);
      assert.equal(r.status, 200, path);
      await r.body?.cancel();
    }

    // Measured memory of the real server process (sizes the Kubernetes resources).
    const proc = await Deno.readTextFile(`/proc/${child.pid}/status`).catch(() => "");
    const kib = (k: string) =>
      Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(proc)?.[1] ?? NaN);
    results.e2e = {
      rssMiB: +(kib("VmRSS") / 1024).toFixed(1),
      peakRssMiB: +(kib("VmHWM") / 1024).toFixed(1),
    };
    await saveResults();

    // Drain: a request still uploading its body is in flight when SIGTERM arrives.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const body = JSON.stringify({
      model,
      messages: [{ role: "user", content: "Reverse the letters: j g t v s" }],
      temperature: 0,
    });
    const enc = new TextEncoder();
    await conn.write(enc.encode(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${
        body.slice(0, 10)
      }`,
    ));
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGTERM");
    // Wait (without a fixed sleep) until the server has seen the signal.
    let health: Response | null = null;
    for (let i = 0; i < 200; i++) {
      health = await fetch(`${base}/healthz`);
      if (health.status === 503) break;
      await health.body?.cancel();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(health!.status, 503, "the listener stays open and /healthz says 503");
    assert.equal((await health!.json()).status, "draining");
    const during = await fetch(`${base}/v1/models`);
    assert.equal(
      during.status,
      503,
      "new requests get a 503 while draining, not a refused connection",
    );
    assert.ok(isOpenAiError(await during.text()));
    await conn.write(enc.encode(body.slice(10)));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      chunks.push(buf.slice(0, n));
    }
    conn.close();
    const reply = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    assert.match(reply, /^HTTP\/1\.1 200/, "the in-flight request finished");
    assert.match(reply, /"content":"s v t g j"/);
    const status = await child.status;
    assert.equal(status.code, 0, "exits cleanly after the drain");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    const [out, err] = await output;
    if (Deno.env.get("SEAP_HARD_VERBOSE")) console.log(out, err);
  }
});

Deno.test("hard: a corrupt model stops the narrow-permission server at start with its reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "seap_corrupt_" });
  try {
    const src = new URL("./fixtures/tiny_chat", import.meta.url).pathname;
    for await (const e of Deno.readDir(src)) {
      if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
    }
    const w = await Deno.readFile(`${dir}/model.safetensors`);
    await Deno.writeFile(`${dir}/model.safetensors`, w.subarray(0, w.length - 1000));
    const { child, output } = spawnServer(freePort(), { SEAP_MODEL: dir });
    const status = await child.status;
    const [, err] = await output;
    assert.equal(status.code, 1);
    assert.match(err, /seap: cannot start: .*model\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
