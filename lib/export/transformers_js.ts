/**
 * transformers.js as an independent runner of the ONNX export: @huggingface/transformers
 * (installed into node_peers/transformers_js by `deno task transformers-js:install`) loads an
 * exported folder from local files only, in a Node.js subprocess (node_peers/transformers_js/
 * greedy.mjs), and generates greedily.
 */

const DIR = new URL("../../node_peers/transformers_js/", import.meta.url).pathname;

/** Why transformers.js cannot run here, or null when it and node are installed. */
export async function transformersJsMissing(): Promise<string | null> {
  try {
    await Deno.stat(`${DIR}node_modules/@huggingface/transformers/package.json`);
  } catch {
    return "@huggingface/transformers is not installed in node_peers/transformers_js " +
      "(run: deno task transformers-js:install)";
  }
  try {
    const { success } = await new Deno.Command("node", { args: ["--version"], stdout: "null" })
      .output();
    return success ? null : "node does not run";
  } catch {
    return "node (Node.js) is not on PATH; transformers.js runs under it here";
  }
}

/** New tokens of each prompt, run alone and as one left-padded batch. */
export interface TransformersJsGreedy {
  single: number[][];
  batched: number[][];
}

/** Greedy-generate `steps` tokens after each prompt with transformers.js from folder `dir`. */
export async function transformersJsGreedy(
  dir: string,
  prompts: number[][],
  steps: number,
  padId: number,
): Promise<TransformersJsGreedy> {
  const child = new Deno.Command("node", {
    args: [`${DIR}greedy.mjs`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify({ dir, prompts, steps, padId })));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`transformers.js failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text.trim().split("\n").pop()!) as TransformersJsGreedy;
}
