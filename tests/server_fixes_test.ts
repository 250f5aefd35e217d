/**
 * Regression tests of issue 13's findings 1, 4, 5, 6 and 7, each as an outside client sees it:
 * percent tricks in model ids, the `param` of context errors, a mask name that contradicts the
 * requested sparsity, 64-bit seeds, 405s, content codings and media types, slow bodies.
 */

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { Rng } from "../lib/generate/sampler.ts";
import { readServerConfig } from "../lib/server/config.ts";
import { servePermissionFlags } from "../lib/server/permissions.ts";
import { post, serveLoopback, tinyApp } from "./server_helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

function assertOpenAiError(json: Any, status: number, where: string): void {
  assert.equal(typeof json?.error?.message, "string", `${where}: error.message`);
  assert.equal(typeof json.error.type, "string", `${where}: error.type`);
  assert.ok("param" in json.error && "code" in json.error, `${where}: param and code`);
  assert.ok(status >= 400 && status < 500, `${where}: status ${status}`);
}

Deno.test("models/:id: the id is decoded once; stray % never 500s", async () => {
  const { app, engine } = await tinyApp();
  const id = engine.modelId;
  const enc = encodeURIComponent(id).replace(/_/g, "%5F").replace(/-/g, "%2D");
  const ok = await app.request(`/v1/models/${enc}`);
  assert.equal(ok.status, 200, "one level of percent-encoding names the model");
  assert.equal((await ok.json()).id, id);
  for (const p of ["%25", "%ZZ", "%C0%80", "%", "%E0%A4%A", `${enc.replace(/%/g, "%25")}`]) {
    const r = await app.request(`/v1/models/${p}`);
    const json = await r.json();
    assert.equal(r.status, 404, `/v1/models/${p} → ${r.status} ${JSON.stringify(json)}`);
    assertOpenAiError(json, r.status, p);
    assert.equal(json.error.code, "model_not_found");
  }
});

Deno.test("context errors name the parameter the client sent", async () => {
  const { app, engine } = await tinyApp({ maxContext: 40 });
  const model = engine.modelId;
  const long = "a b c d e f g h ".repeat(20);
  const cases: [string, Any, number, string][] = [
    ["/v1/completions", { model, prompt: long }, 413, "prompt"],
    ["/v1/route", { prompt: long }, 413, "prompt"],
    ["/v1/route", { messages: [{ role: "user", content: long }] }, 413, "messages"],
    [
      "/v1/chat/completions",
      { model, messages: [{ role: "user", content: long }] },
      413,
      "messages",
    ],
    [
      "/v1/chat/completions",
      { model, messages: [{ role: "user", content: "hi" }], max_completion_tokens: 1000 },
      400,
      "max_completion_tokens",
    ],
    [
      "/v1/chat/completions",
      { model, messages: [{ role: "user", content: "hi" }], max_tokens: 1000 },
      400,
      "max_tokens",
    ],
    ["/v1/completions", { model, prompt: "hi", max_tokens: 1000 }, 400, "max_tokens"],
  ];
  for (const [path, body, status, param] of cases) {
    const r = await post(app, path, body);
    const json = await r.json();
    assert.equal(r.status, status, `${path} ${JSON.stringify(json)}`);
    assert.equal(json.error.param, param, `${path}: ${json.error.message}`);
    assert.equal(json.error.code, "context_length_exceeded");
  }
});

Deno.test("seap: a mask name contradicting seap.sparsity is a 400, a consistent one runs", async () => {
  const { app, engine } = await tinyApp();
  const base = { model: engine.modelId, prompt: "hi" };
  const bad = await post(app, "/v1/route", {
    ...base,
    seap: { mask: "alpha@0.5", sparsity: 0.25 },
  });
  const json = await bad.json();
  assert.equal(bad.status, 400, JSON.stringify(json));
  assert.equal(json.error.param, "seap.sparsity");
  const good = await post(app, "/v1/route", {
    ...base,
    seap: { mask: "alpha@0.5", sparsity: 0.5 },
  });
  assert.equal(good.status, 200);
  assert.equal((await good.json()).mask, "alpha@0.5");
});

Deno.test("seeds keep all their bits: 0 vs -1 and 1 vs 2^32 sample differently", async () => {
  const draws = (seed: number) =>
    Array.from({ length: 4 }, ((r) => () => r.nextU32())(new Rng(seed)));
  assert.notDeepEqual(draws(0), draws(-1));
  assert.notDeepEqual(draws(1), draws(2 ** 32));
  assert.notDeepEqual(draws(2 ** 52), draws(-(2 ** 52)));
  assert.deepEqual(draws(Number.MAX_SAFE_INTEGER), draws(Number.MAX_SAFE_INTEGER));
  // Through the server: sampled completions differ between seeds that used to collide.
  const { app, engine } = await tinyApp();
  const text = async (seed: number) => {
    const r = await post(app, "/v1/completions", {
      model: engine.modelId,
      prompt: "hello",
      max_tokens: 24,
      temperature: 2,
      seed,
      seap: { mask: "dense" },
    });
    assert.equal(r.status, 200);
    return (await r.json()).choices[0].text as string;
  };
  assert.equal(await text(-1), await text(-1), "a seed replays");
  assert.notEqual(await text(0), await text(-1));
  assert.notEqual(await text(1), await text(2 ** 32));
});

Deno.test("wrong methods are 405 with Allow; unknown paths stay 404", async () => {
  const { app } = await tinyApp();
  const cases: [string, string, string][] = [
    ["GET", "/v1/chat/completions", "POST"],
    ["PUT", "/v1/completions", "POST"],
    ["DELETE", "/v1/route", "POST"],
    ["POST", "/v1/models", "GET, HEAD"],
    ["PATCH", "/v1/models/x", "GET, HEAD"],
    ["POST", "/healthz", "GET, HEAD"],
    ["DELETE", "/metrics", "GET, HEAD"],
    ["POST", "/openapi.json", "GET, HEAD"],
  ];
  for (const [method, path, allow] of cases) {
    const r = await app.request(path, { method });
    const json = await r.json();
    assert.equal(r.status, 405, `${method} ${path}`);
    assert.equal(r.headers.get("allow"), allow);
    assertOpenAiError(json, 405, path);
  }
  const head = await app.request("/healthz", { method: "HEAD" });
  assert.equal(head.status, 200);
  const unknown = await app.request("/v2/nothing", { method: "POST" });
  assert.equal(unknown.status, 404);
});

Deno.test("content codings and media types: gzip is read, fakes and others refused", async () => {
  const { app, engine } = await tinyApp();
  const body = JSON.stringify({ model: engine.modelId, prompt: "hi", max_tokens: 2 });
  const send = (b: BodyInit, headers: Record<string, string>) =>
    app.request("/v1/completions", { method: "POST", body: b, headers });
  const gz = new Uint8Array(gzipSync(new TextEncoder().encode(body)));
  const real = await send(gz, { "content-type": "application/json", "content-encoding": "gzip" });
  assert.equal(real.status, 200, await real.clone().text());
  const fake = await send(body, { "content-type": "application/json", "content-encoding": "gzip" });
  assert.equal(fake.status, 400);
  assert.equal((await fake.json()).error.code, "invalid_encoding");
  const br = await send(body, { "content-type": "application/json", "content-encoding": "br" });
  assert.equal(br.status, 415);
  const text = await send(body, { "content-type": "text/plain" });
  assert.equal(text.status, 415);
  assert.equal((await text.json()).error.code, "unsupported_media_type");
  const form = await send(body, { "content-type": "application/x-www-form-urlencoded" });
  assert.equal(form.status, 415);
  const latin = await send(body, { "content-type": "application/json; charset=latin1" });
  assert.equal(latin.status, 415);
  const withCharset = await send(body, { "content-type": "application/json; charset=utf-8" });
  assert.equal(withCharset.status, 200);
  // A gzip bomb: 64 MiB of spaces decompresses past the body cap → 413, not memory growth.
  const bomb = new Uint8Array(gzipSync(new Uint8Array(64 << 20).fill(32)));
  const b = await send(bomb, { "content-type": "application/json", "content-encoding": "gzip" });
  assert.equal(b.status, 413);
});

Deno.test("a client that stalls mid-body gets a 408 and the server goes on", async () => {
  const { app, engine } = await tinyApp({ readTimeoutMs: 300 });
  const srv = serveLoopback(app.fetch);
  try {
    const { port } = srv.server.addr as Deno.NetAddr;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const head = "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" +
      'content-length: 100\r\n\r\n{"model":';
    await conn.write(new TextEncoder().encode(head));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf); // the server answers without waiting for the rest
    const reply = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    conn.close();
    assert.match(reply, /^HTTP\/1\.1 408/);
    assert.match(reply, /request_timeout/);
    const ok = await fetch(`${srv.base}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: engine.modelId, prompt: "hi", max_tokens: 1 }),
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    await srv.close();
  }
});

Deno.test("serve settings: host and port from flags or SEAP_HOST/SEAP_PORT, loopback by default", () => {
  const none = () => undefined;
  assert.equal(readServerConfig(none, []).host, "127.0.0.1");
  assert.equal(readServerConfig(none, []).port, 8000);
  const env = (k: string) =>
    ({ SEAP_HOST: "0.0.0.0", SEAP_PORT: "8080" } as Record<string, string>)[k];
  assert.deepEqual(
    [readServerConfig(env, []).host, readServerConfig(env, []).port],
    ["0.0.0.0", 8080],
  );
  const c = readServerConfig(env, ["--port", "9000", "--host=::1"]);
  assert.deepEqual([c.host, c.port], ["::1", 9000], "flags win");
  assert.throws(() => readServerConfig(none, ["--port=70000"]), /≤ 65535/);
  assert.throws(() => readServerConfig(none, ["--host=a b"]), /SEAP_HOST/);
  const flags = servePermissionFlags({ ...c, modelDir: null, masksDir: null });
  assert.equal(flags.length, 3);
  assert.ok(flags.includes("--allow-net=[::1]:9000"), flags.join(" "));
  assert.ok(flags.includes("--allow-env=SEAP_*"));
  assert.match(flags[0], /^--allow-read=[^,]*\/kernels,[^,]*\/models,[^,]*\/masks/);
});

Deno.test("deno task serve: the launcher passes --port to the server and its permissions", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const root = new URL("..", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "serve", "--port", String(port), "--model", `${root}tests/fixtures/tiny_chat`],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = Promise.all([child.stdout, child.stderr].map((s) => new Response(s).text()));
  try {
    let ok = false;
    for (let i = 0; i < 300 && !ok; i++) {
      ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => (r.body?.cancel(), r.ok),
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, "listening on the --port given to the task");
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  const [stdout] = await out;
  assert.equal(status.code, 0);
  assert.match(stdout, new RegExp(`--allow-net=127\\.0\\.0\\.1:${port} --allow-env=SEAP_\\* `));
  assert.doesNotMatch(
    stdout.split("\n").find((l) => l.includes("deno run"))!,
    /--allow-(run|write|all)/,
  );
});
