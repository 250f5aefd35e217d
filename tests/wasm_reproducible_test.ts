/**
 * The committed kernel modules are what their sources build to: a fresh build must be
 * byte-identical. All eight (kernels/wasm/seap_kernels.wasm, its memory64 build
 * seap_kernels64.wasm, and their shared-memory builds for SEAP_THREADS, seap_kernels_mt.wasm and
 * seap_kernels64_mt.wasm, and the half-precision SIMD build of each of the four,
 * seap_kernels_fp16.wasm, seap_kernels64_fp16.wasm, seap_kernels_mt_fp16.wasm and
 * seap_kernels64_mt_fp16.wasm) are built with clang-19 + wasm-ld (Debian `clang-19 lld-19`,
 * installed by .ci/run; relaxed SIMD needs clang >= 16, and clang 14 crashes on wasm64 SIMD). Skipped,
 * saying why, only on a machine without those tools.
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

// build.sh takes $CLANG, else clang-19; clang-19's driver finds lld-19's wasm-ld by itself.
const clang = Deno.env.get("CLANG") ?? "clang-19";
const missing: string[] = [];
if (!(await hasTool(clang))) missing.push(clang);
if (!(await hasTool("wasm-ld-19")) && !(await hasTool("wasm-ld"))) missing.push("wasm-ld");

const CASES = [
  { target: "wasm32", file: "seap_kernels.wasm" },
  { target: "wasm64", file: "seap_kernels64.wasm" },
  { target: "wasm32-threads", file: "seap_kernels_mt.wasm" },
  { target: "wasm64-threads", file: "seap_kernels64_mt.wasm" },
  // The half-precision SIMD builds: clang-19 + wasm-ld, then kernels/wasm/fp16_rewrite.ts (deno,
  // binaryen from npm at the version deno.json pins) puts the opcode in place.
  { target: "wasm32-fp16", file: "seap_kernels_fp16.wasm" },
  { target: "wasm64-fp16", file: "seap_kernels64_fp16.wasm" },
  { target: "wasm32-threads-fp16", file: "seap_kernels_mt_fp16.wasm" },
  { target: "wasm64-threads-fp16", file: "seap_kernels64_mt_fp16.wasm" },
];

for (const c of CASES) {
  Deno.test({
    name: `kernels/wasm: a rebuild reproduces the committed ${c.file}${
      missing.length
        ? ` (skipped: ${missing.join(", ")} not installed: apt install clang-19 lld-19)`
        : ""
    }`,
    ignore: missing.length > 0,
    fn: async () => {
      const script = new URL("../kernels/wasm/check_reproducible.sh", import.meta.url).pathname;
      const r = await new Deno.Command("bash", {
        args: [script, c.target],
        env: { DENO: Deno.execPath() }, // the fp16 build's post-link step runs on deno
      }).output();
      const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
      assert.ok(r.success, `rebuild differs from the committed ${c.file}:\n${out}`);
      console.log(`  ${out.trim()}`);
    },
  });
}
