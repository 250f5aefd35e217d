/**
 * The committed kernels/wasm/seap_kernels.wasm is what its sources build to: a fresh build with
 * clang-19 + wasm-ld (Debian `clang-19 lld-19`, installed by .ci/run; relaxed SIMD needs clang
 * >= 16) must be byte-identical. Skipped, saying why, only on a machine without those tools.
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
const tools = (await hasTool(clang)) &&
  ((await hasTool("wasm-ld-19")) || (await hasTool("wasm-ld")));

Deno.test({
  name: `kernels/wasm: a rebuild reproduces the committed .wasm${
    tools ? "" : ` (skipped: ${clang} or wasm-ld not installed: apt install clang-19 lld-19)`
  }`,
  ignore: !tools,
  fn: async () => {
    const script = new URL("../kernels/wasm/check_reproducible.sh", import.meta.url).pathname;
    const r = await new Deno.Command("bash", { args: [script] }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.ok(r.success, `rebuild differs from the committed seap_kernels.wasm:\n${out}`);
    console.log(`  ${out.trim()}`);
  },
});
