/**
 * Run a bench script's `--child` mode in a fresh Deno process (so its memory and peak RSS are its
 * own) and read the JSON object it prints on its last stdout line.
 */

import { fp16SimdSupported } from "../lib/backends/wasm_kernels.ts";

/** The child's answer: its JSON on success, else why it failed (exit code and last line). */
export type ChildResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * `deno run -A <script> --child ...args`; stderr goes to this process's stderr. When this process
 * runs WebAssembly half-precision SIMD (started with `--v8-flags=--experimental-wasm-fp16`, as the
 * deno tasks are), the child gets the same flag, so its f16 weights take the same kernels.
 */
export async function runChildJson<T>(
  script: string | URL,
  args: string[],
): Promise<ChildResult<T>> {
  const path = typeof script === "string" ? script : script.pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(fp16SimdSupported() ? ["--v8-flags=--experimental-wasm-fp16"] : []),
      path,
      "--child",
      ...args,
    ],
    stderr: "inherit",
  }).output();
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success) {
    return { ok: false, reason: `failed (exit ${out.code})${last ? ": " + last : ""}` };
  }
  return { ok: true, value: JSON.parse(last) as T };
}
