// The WGSL include step (lib/backends/wgsl_include.ts): known input -> expected text, bad
// include lines -> clear errors, and every kernel in kernels/wgsl/ expands with the real helpers.
import assert from "node:assert/strict";
import { expandIncludes, loadWgslIncludes } from "../lib/backends/wgsl_include.ts";

const INCLUDES = new Map([
  ["grid", "// grid\nfn workgroup_index() -> u32 {\n  return 0u;\n}\n"],
  ["q8", "const Q8_BLOCK_WORDS: u32 = 9u;"],
]);

Deno.test("expandIncludes replaces each include line by the file's text", () => {
  const src = [
    "// header",
    "",
    "//!include grid",
    "  //!include q8  ",
    "",
    "fn main() {}",
    "// a comment that mentions //!include grid is not an include line",
  ].join("\n");
  const want = [
    "// header",
    "",
    "// grid",
    "fn workgroup_index() -> u32 {",
    "  return 0u;",
    "}",
    "const Q8_BLOCK_WORDS: u32 = 9u;",
    "",
    "fn main() {}",
    "// a comment that mentions //!include grid is not an include line",
  ].join("\n");
  assert.equal(expandIncludes(src, "k", INCLUDES), want);
  assert.equal(expandIncludes("fn main() {}\n", "k", INCLUDES), "fn main() {}\n");
});

Deno.test("expandIncludes refuses unknown, malformed, repeated and nested includes", () => {
  assert.throws(
    () => expandIncludes("x\n//!include nope\n", "matmul", INCLUDES),
    /matmul\.wgsl:2: unknown include "nope" \(no kernels\/wgsl\/include\/nope\.wgsl; known: grid, q8\)/,
  );
  assert.throws(() => expandIncludes("//!include\n", "k", INCLUDES), /k\.wgsl:1: bad include line/);
  assert.throws(() => expandIncludes("//!include ../x\n", "k", INCLUDES), /bad include line/);
  assert.throws(
    () => expandIncludes("//!include q8\n//!include q8\n", "k", INCLUDES),
    /k\.wgsl:2: include "q8" repeated/,
  );
  const nested = new Map([["a", "//!include b"], ["b", "fn b() {}"]]);
  assert.throws(() => expandIncludes("//!include a\n", "k", nested), /nesting is not supported/);
});

Deno.test("every kernel expands with the shared helpers in kernels/wgsl/include/", async () => {
  const includes = await loadWgslIncludes();
  assert.deepEqual([...includes.keys()].sort(), ["elem", "grid", "q8"]);
  const dir = new URL("../kernels/wgsl/", import.meta.url);
  let used = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".wgsl")) continue;
    const src = await Deno.readTextFile(new URL(e.name, dir));
    const out = expandIncludes(src, e.name.slice(0, -5), includes);
    assert.doesNotMatch(out, /^\s*\/\/!include/m, e.name);
    // each helper is defined once, by its include, never again in the kernel itself
    for (
      const fn of ["elem_word", "elem_lane", "unpack_elem", "dot4", "q8_value", "workgroup_index"]
    ) {
      assert.ok(
        (out.match(new RegExp(`\\bfn ${fn}\\(`, "g")) ?? []).length <= 1,
        `${e.name} ${fn}`,
      );
    }
    if (out !== src) used++;
  }
  assert.equal(used, 18);
});
