/**
 * The server with SEAP_THREADS (the WASM backend's opt-in threads, lib/backends/wasm_threads.ts):
 * the setting parses and rejects bad values clearly; 2 threads answer a chat completion exactly
 * as 1 thread does; `deno task serve --threads 2` runs under the narrow permissions (which then
 * include the pool's worker module), answers, and exits 0 on SIGTERM with its workers.
 */

import assert from "node:assert/strict";
import type { WasmBackend } from "../lib/backends/wasm.ts";

Deno.test("server: SEAP_THREADS parses, and 2 threads answer exactly what 1 thread answers", async () => {
  const { DEFAULT_CONFIG, readServerConfig, ServerConfigError } = await import(
    "../lib/server/config.ts"
  );
  const { loadEngine } = await import("../lib/server/engine_handle.ts");
  const { createApp } = await import("../lib/server/app.ts");
  const env = (v: string) => (k: string) => (k === "SEAP_THREADS" ? v : undefined);
  assert.equal(readServerConfig(() => undefined, []).threads, 1);
  assert.equal(readServerConfig(env("2"), []).threads, 2);
  assert.equal(readServerConfig(env("2"), ["--threads=3"]).threads, 3);
  for (const bad of ["0", "1.5", "two", "300"]) {
    assert.throws(
      () => readServerConfig(env(bad), []),
      (e: unknown) => e instanceof ServerConfigError && /SEAP_THREADS/.test(String(e)),
      bad,
    );
  }
  const answer = async (threads: number) => {
    const engine = await loadEngine({ ...DEFAULT_CONFIG, backend: "wasm", threads });
    try {
      const be = engine.model.backend as WasmBackend;
      assert.equal(be.threads, threads);
      const res = await createApp(engine).request("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: engine.modelId,
          messages: [{ role: "user", content: "Reverse the letters: j g t v s" }],
          max_tokens: 24,
          temperature: 0,
        }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      const body = await res.json();
      return { body, jobs: be.threadPool?.jobs ?? 0 };
    } finally {
      await engine.model.backend.close?.();
    }
  };
  const one = await answer(1), two = await answer(2);
  console.log(`  1 thread: ${JSON.stringify(one.body.choices[0].message.content)}`);
  console.log(
    `  2 threads: ${JSON.stringify(two.body.choices[0].message.content)} (${two.jobs} jobs)`,
  );
  assert.ok(two.jobs > 0, "the 2-thread server never used its worker");
  assert.equal(two.body.choices[0].message.content, one.body.choices[0].message.content);
  assert.deepEqual(two.body.seap, one.body.seap);
  assert.deepEqual(two.body.usage, one.body.usage);
});

Deno.test("deno task serve --threads 2: narrow permissions suffice, it answers, and SIGTERM ends it", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const root = new URL("..", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "serve", "--port", String(port), "--threads", "2", "--backend", "wasm"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = Promise.all([child.stdout, child.stderr].map((s) => new Response(s).text()));
  let content = "";
  try {
    let ok = false;
    for (let i = 0; i < 600 && !ok; i++) {
      ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => (r.body?.cancel(), r.ok),
        () => false,
      );
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok, "the threaded server never became healthy");
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "seap-tiny-skills",
        messages: [{ role: "user", content: "Reverse the letters: j g t v s" }],
        max_tokens: 12,
        temperature: 0,
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    content = (await res.json()).choices[0].message.content;
  } finally {
    child.kill("SIGTERM");
  }
  const status = await child.status;
  const [stdout, stderr] = await out;
  assert.equal(status.code, 0, `exit ${status.code}\n${stdout}\n${stderr}`);
  assert.match(stdout, /wasm_threads_worker\.ts/, "the launcher grants read of the worker module");
  assert.match(stdout, /backend: wasm|ready: model/);
  assert.ok(content.length > 0);
  console.log(`  answered ${JSON.stringify(content)}; exit code ${status.code} after SIGTERM`);
});
