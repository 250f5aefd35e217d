/**
 * The committed kernel modules are what their sources build to: a fresh build must be
 * byte-identical. kernels/wasm/seap_kernels.wasm (wasm32) is built with clang + wasm-ld,
 * kernels/wasm/seap_kernels64.wasm (memory64) with clang-19 + wasm-ld-19 (installed by .ci/run;
 * clang 14 crashes on wasm64 SIMD); their shared-memory builds for SEAP_THREADS
 * (seap_kernels_mt.wasm, seap_kernels64_mt.wasm) likewise. Each is skipped, saying why, only on a machine without its
 * tools.
 */

import assert from "node:assert/strict";

async function hasTool(name: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`] }).output();
    return r.success;
  } catch {
    return false;
  }
}

const CASES = [
  { target: "wasm32", file: "seap_kernels.wasm", tools: ["clang", "wasm-ld"] },
  { target: "wasm64", file: "seap_kernels64.wasm", tools: ["clang-19", "wasm-ld-19"] },
  { target: "wasm32-threads", file: "seap_kernels_mt.wasm", tools: ["clang", "wasm-ld"] },
  { target: "wasm64-threads", file: "seap_kernels64_mt.wasm", tools: ["clang-19", "wasm-ld-19"] },
];

for (const c of CASES) {
  const missing = [];
  for (const t of c.tools) if (!(await hasTool(t))) missing.push(t);
  Deno.test({
    name: `kernels/wasm: a rebuild reproduces the committed ${c.file}${
      missing.length ? ` (skipped: ${missing.join(", ")} not installed)` : ""
    }`,
    ignore: missing.length > 0,
    fn: async () => {
      const script = new URL("../kernels/wasm/check_reproducible.sh", import.meta.url).pathname;
      const r = await new Deno.Command("bash", { args: [script, c.target] }).output();
      const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
      assert.ok(r.success, `rebuild differs from the committed ${c.file}:\n${out}`);
      console.log(`  ${out.trim()}`);
    },
  });
}
