// The WGSL include step (lib/backends/wgsl_include.ts): known input -> expected text, bad
// include lines -> clear errors, and every kernel in kernels/wgsl/ expands with the real helpers
// and its generated uniforms, with no copy of a helper left in a kernel.
import assert from "node:assert/strict";
import { expandIncludes, loadWgslIncludes } from "../lib/backends/wgsl_include.ts";
import { KERNELS, kernelSource, type KernelSpec } from "../lib/backends/webgpu_kernels.ts";

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

Deno.test("every kernel expands with the shared helpers and its generated uniforms", async () => {
  const includes = await loadWgslIncludes();
  assert.deepEqual([...includes.keys()].sort(), ["elem", "grid", "q8"]);
  const dir = new URL("../kernels/wgsl/", import.meta.url);
  const specs = new Map(Object.values(KERNELS).map((k) => [k.file as string, k as KernelSpec]));
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".wgsl")) files.push(e.name.slice(0, -5));
  }
  // every kernel file is in the table and every table entry has its file
  assert.deepEqual(files.sort(), [...specs.keys()].sort());
  for (const name of files) {
    const src = await Deno.readTextFile(new URL(`${name}.wgsl`, dir));
    const out = kernelSource(specs.get(name)!, src, includes);
    assert.doesNotMatch(out, /^\s*\/\/!include/m, name);
    // each helper is defined once, by its include, never again in the kernel itself
    for (
      const fn of [
        "elem_word",
        "elem_lane",
        "unpack_elem",
        "unpack_half4",
        "dot4",
        "q8_value",
        "workgroup_index",
      ]
    ) {
      assert.ok((out.match(new RegExp(`\\bfn ${fn}\\(`, "g")) ?? []).length <= 1, `${name} ${fn}`);
    }
    // no leftover copies of the prelude: f16 unpacking, the 2-D grid index and the uniform
    // struct come only from the includes
    assert.doesNotMatch(src, /unpack2x16float|wid\.y \* nwg\.x|\bstruct U\b/, name);
    assert.equal((src.match(/^\/\/!include grid$/gm) ?? []).length, 1, `${name}: grid prelude`);
    assert.equal((src.match(/^\/\/!include uniforms$/gm) ?? []).length, 1, `${name}: uniforms`);
    if (/load_w|load_b|W_F16|B_F16/.test(src)) assert.match(src, /^\/\/!include elem$/m, name);
  }
});
