/**
 * SEAP_MAX_MEMORY on the server's side: the setting parses into the config (bad values are a
 * ServerConfigError), and memory-aware admission sizes the context from the backend's real limit
 * (a 6 GiB memory64 one holding 4.5 GiB of weights), not from a 4 GiB ceiling. The backend's
 * side: tests/wasm64_test.ts.
 */

import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { loadModel } from "../lib/model/model.ts";
import { readServerConfig, ServerConfigError } from "../lib/server/config.ts";
import { admitByMemory } from "../lib/server/admission.ts";

const GiB = 2 ** 30;
const FIXTURE = new URL("./fixtures/llama_gqa_llama3rope", import.meta.url).pathname;

Deno.test("SEAP_MAX_MEMORY reaches the server config; admission counts the real limit", async () => {
  const env = (k: string) => (k === "SEAP_MAX_MEMORY" ? "12G" : undefined);
  assert.equal(readServerConfig(env, []).maxMemory, 12 * GiB);
  assert.equal(readServerConfig(() => undefined, ["--max-memory=6144M"]).maxMemory, 6 * GiB);
  assert.equal(readServerConfig(() => undefined, []).maxMemory, null);
  assert.throws(() => readServerConfig(() => undefined, ["--max-memory=big"]), ServerConfigError);
  // A model of 4.5 GiB of weights (never written: address space only) leaves no room in 4 GiB;
  // a 6 GiB wasm64 limit leaves 1.5 GiB, and admission sizes the context from that.
  const be = await WasmBackend.create({ maxBytes: 6 * GiB });
  be.allocWeights(4.5 * GiB / 4, "f32");
  const model = await loadModel(FIXTURE, { backend: be });
  const engine = { model, maxContext: 2 ** 20, maxPromptChars: 2 ** 22 };
  // deno-lint-ignore no-explicit-any
  const adm = admitByMemory(engine as any, { maxConcurrent: 1, prefillChunk: 64 })!;
  assert.ok(adm.freeBytes > 1.4 * GiB && adm.freeBytes < 1.5 * GiB, `free ${adm.freeBytes}`);
  assert.ok(adm.memorySafeContext > 1000, `context ${adm.memorySafeContext}`);
});
