/**
 * llama.cpp as an independent peer: node-llama-cpp 3.21.1 (installed into node_peers/llama_cpp by
 * `deno task llama-cpp:install`) running in a Node.js subprocess (node_peers/llama_cpp/worker.mjs),
 * driven over line-delimited JSON. Used by the GGUF round-trip tests and by
 * `deno task bench --only=llama`.
 */

const DIR = new URL("../../node_peers/llama_cpp/", import.meta.url).pathname;

/** Splits a text stream into lines (without the newline). */
function lineStream(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}

/** Why llama.cpp cannot run here, or null when node-llama-cpp and node are installed. */
export async function llamaCppMissing(): Promise<string | null> {
  try {
    await Deno.stat(`${DIR}node_modules/node-llama-cpp/package.json`);
  } catch {
    return `node-llama-cpp is not installed in node_peers/llama_cpp (run: deno task llama-cpp:install)`;
  }
  try {
    const { success } = await new Deno.Command("node", { args: ["--version"], stdout: "null" })
      .output();
    if (!success) return "node does not run";
  } catch {
    return "node (Node.js) is not on PATH; node-llama-cpp needs it";
  }
  return null;
}

/** One prefill + greedy decode in llama.cpp. */
export interface LlamaCppRun {
  /** The token picked after the prompt, then one per decode step (steps + 1 in all). */
  tokens: number[];
  /** Milliseconds from the call until the first token was picked (prompt processing). */
  prefillMs: number;
  /** Milliseconds of each decode step. */
  decodeMs: number[];
  /** Softmax over the vocabulary after the prompt `[V]`, when asked for. */
  firstProbs: Float32Array | null;
  /** CPU time of the llama.cpp process (all its threads) for the prefill, in ms. */
  prefillCpuMs: number;
  /** CPU time of the llama.cpp process for all decode steps together, in ms. */
  decodeCpuMs: number;
}

/** A Node.js subprocess holding one llama.cpp model and context. */
export class LlamaCpp {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #next = 1;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(lineStream())[Symbol.asyncIterator]();
  }

  /**
   * Start the worker and load `path` with `threads` threads (default 1) and a `contextSize`
   * context (default 512). `precise`: an F32 KV cache and no flash attention (its CPU kernel
   * rounds to f16), for close logit comparisons; otherwise llama.cpp's defaults.
   */
  static async open(
    path: string,
    opts: { threads?: number; contextSize?: number; precise?: boolean } = {},
  ): Promise<LlamaCpp> {
    const child = new Deno.Command("node", {
      args: [`${DIR}worker.mjs`],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lc = new LlamaCpp(child);
    const ready = await lc.#lines.next();
    if (ready.done) throw new Error("llama.cpp worker exited before it was ready");
    await lc.#call("load", {
      path,
      threads: opts.threads ?? 1,
      contextSize: opts.contextSize ?? 512,
      precise: opts.precise ?? false,
    });
    return lc;
  }

  async #call(op: string, args: Record<string, unknown>): Promise<unknown> {
    const id = this.#next++;
    await this.#writer.write(new TextEncoder().encode(JSON.stringify({ id, op, ...args }) + "\n"));
    const line = await this.#lines.next();
    if (line.done) throw new Error(`llama.cpp worker exited during "${op}"`);
    const reply = JSON.parse(line.value) as {
      id: number;
      ok: boolean;
      result?: unknown;
      error?: string;
    };
    if (reply.id !== id) throw new Error(`llama.cpp worker: reply ${reply.id} to request ${id}`);
    if (!reply.ok) throw new Error(`llama.cpp ${op}: ${reply.error}`);
    return reply.result;
  }

  /** llama.cpp's tokenization of `text` (special tokens parsed). */
  async tokenize(text: string): Promise<number[]> {
    return await this.#call("tokenize", { text }) as number[];
  }

  /** Prefill `ids` (a fresh sequence), then `steps` greedy decode steps. */
  async run(ids: number[], steps: number, probs = false): Promise<LlamaCppRun> {
    const r = await this.#call("run", { ids, steps, probs }) as {
      tokens: number[];
      prefillMs: number;
      decodeMs: number[];
      firstProbs: [number, number][] | null;
      prefillCpuMs: number;
      decodeCpuMs: number;
    };
    let firstProbs: Float32Array | null = null;
    if (r.firstProbs) {
      firstProbs = new Float32Array(Math.max(...r.firstProbs.map(([t]) => t)) + 1);
      for (const [t, p] of r.firstProbs) firstProbs[t] = p;
    }
    return {
      tokens: r.tokens,
      prefillMs: r.prefillMs,
      decodeMs: r.decodeMs,
      firstProbs,
      prefillCpuMs: r.prefillCpuMs,
      decodeCpuMs: r.decodeCpuMs,
    };
  }

  /** Free the model and end the subprocess. */
  async close(): Promise<void> {
    try {
      await this.#call("close", {});
    } finally {
      await this.#writer.close().catch(() => {});
      await this.#child.status;
    }
  }
}
