// llama.cpp (through node-llama-cpp) behind a line-delimited JSON protocol on stdin/stdout,
// driven by lib/export/llama_cpp.ts. One request per line: {id, op, ...}; one reply per line:
// {id, ok: true, result} or {id, ok: false, error}. Runs under Node.js because the package's
// prebuilt CPU binaries are a Node-API addon installed by npm into this folder.
//
// ops: load {path, threads, contextSize, precise} · tokenize {text} · run {ids, steps, probs} · close
import { getLlama } from "node-llama-cpp";
import { createInterface } from "node:readline";

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
let model = null;
let context = null;
let sequence = null;

// precise: an F32 KV cache and no flash attention (whose CPU kernel rounds to f16), so that
// logits can be compared closely; otherwise llama.cpp's defaults, as a user would run it.
async function load({ path, threads, contextSize, precise }) {
  if (context) await context.dispose();
  if (model) await model.dispose();
  model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  context = await model.createContext({
    contextSize,
    threads,
    sequences: 1,
    ...(precise
      ? {
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
        flashAttention: false,
      }
      : {}),
  });
  sequence = context.getSequence();
  return { trainContextSize: model.trainContextSize };
}

// Prefill `ids`, then greedy-decode `steps` tokens (EOG included; generation never stops
// early). Times: prefillMs = until the first token is picked, decodeMs[i] = each step after;
// prefillCpuMs / decodeCpuMs: the process's CPU time over the same two spans.
async function run({ ids, steps, probs }) {
  await sequence.clearHistory();
  const tokens = [];
  const decodeMs = [];
  let first = null;
  let t0 = performance.now();
  let prefillMs = 0;
  // CPU time of this process (every thread, llama.cpp's included): on a shared machine the wall
  // clock also counts the time slices other processes take.
  const cpu0 = process.cpuUsage();
  let cpuPrefill = null;
  const gen = sequence.evaluateWithMetadata(ids, { probabilities: !!probs }, {
    temperature: 0,
    yieldEogToken: true,
  });
  for await (const r of gen) {
    const now = performance.now();
    if (tokens.length === 0) {
      prefillMs = now - t0;
      cpuPrefill = process.cpuUsage(cpu0);
      if (probs) first = Array.from(r.probabilities.entries());
    } else decodeMs.push(now - t0);
    t0 = now;
    tokens.push(r.token);
    if (tokens.length > steps) break;
  }
  const cpuAll = process.cpuUsage(cpu0);
  const ms = (c) => (c.user + c.system) / 1000;
  const prefillCpuMs = ms(cpuPrefill);
  return {
    tokens,
    prefillMs,
    decodeMs,
    firstProbs: first,
    prefillCpuMs,
    decodeCpuMs: ms(cpuAll) - prefillCpuMs,
  };
}

const ops = {
  load,
  run,
  tokenize: ({ text }) => Array.from(model.tokenize(text, true)),
  close: async () => {
    if (context) await context.dispose();
    if (model) await model.dispose();
    context = model = sequence = null;
    return null;
  },
};

const rl = createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ id: 0, ok: true, result: "ready" }) + "\n");
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  try {
    const result = await ops[req.op](req);
    process.stdout.write(JSON.stringify({ id: req.id, ok: true, result }) + "\n");
  } catch (e) {
    process.stdout.write(
      JSON.stringify({ id: req.id, ok: false, error: String(e?.stack ?? e) }) + "\n",
    );
  }
  if (req.op === "close") break;
}
process.exit(0);
