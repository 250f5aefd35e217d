// The WebGPU kernels' uniforms are defined once, in the kernel table of
// lib/backends/webgpu_kernels.ts: the WGSL struct is generated from it and the host packs by
// name. Checked here for every kernel: the generated struct declares exactly the table's fields
// in order (then padding to whole 16-byte rows), the shader reads every field and no other
// `u.<name>`, the constants the host shares (TT) are declared by the table and not again by the
// shader, and packUniforms puts each field at its struct offset with its type.
import assert from "node:assert/strict";
import {
  KERNELS,
  type KernelSpec,
  packUniforms,
  uniformBytes,
  uniformsWgsl,
} from "../lib/backends/webgpu_kernels.ts";

const specs = Object.values(KERNELS) as KernelSpec[];
const source = (k: KernelSpec) =>
  Deno.readTextFile(new URL(`../kernels/wgsl/${k.file}.wgsl`, import.meta.url));

/** `name: type` members of `struct U` in a WGSL text, in order. */
function structFields(wgsl: string): { name: string; type: string }[] {
  const body = /struct U \{\n([\s\S]*?)\n\}/.exec(wgsl);
  assert.ok(body, "no struct U");
  return body[1].split("\n").map((l) => {
    const m = /^\s*(\w+): (u32|f32),/.exec(l);
    assert.ok(m, `bad struct line "${l}"`);
    return { name: m[1], type: m[2] };
  });
}

Deno.test("each kernel's generated struct holds its table's fields, padded to 16-byte rows", () => {
  for (const k of specs) {
    const fields = structFields(uniformsWgsl(k));
    const named = fields.filter((f) => !f.name.startsWith("_p"));
    assert.deepEqual(named, k.uniforms.map((f) => ({ name: f.name, type: f.type })), k.file);
    assert.equal(fields.length * 4, uniformBytes(k), k.file);
    assert.equal(uniformBytes(k) % 16, 0, k.file);
    assert.ok(uniformBytes(k) <= 256, `${k.file}: a uniform slot is 256 bytes`);
    assert.match(uniformsWgsl(k), /@group\(0\) @binding\(0\) var<uniform> u: U;/);
  }
});

Deno.test("each shader reads exactly the uniform fields its table defines", async () => {
  for (const k of specs) {
    const src = await source(k);
    const used = new Set([...src.matchAll(/\bu\.(\w+)/g)].map((m) => m[1]));
    const defined = new Set(k.uniforms.map((f) => f.name));
    assert.deepEqual([...used].filter((n) => !defined.has(n)), [], `${k.file}: undeclared`);
    assert.deepEqual([...defined].filter((n) => !used.has(n)), [], `${k.file}: unused`);
    for (const [name, value] of Object.entries(k.consts ?? {})) {
      assert.match(src, new RegExp(`\\b${name}\\b`), `${k.file} uses ${name}`);
      assert.doesNotMatch(src, new RegExp(`const ${name}\\b`), `${k.file} redeclares ${name}`);
      assert.match(uniformsWgsl(k), new RegExp(`const ${name}: u32 = ${value}u;`));
    }
    // a tiled kernel's TT comes from the table: its shared-memory arrays are sized by it
    if (/\bTT\b/.test(src)) assert.ok(k.consts && "TT" in k.consts, `${k.file}: TT not shared`);
  }
});

Deno.test("packUniforms writes each field at its struct offset, by type, and zero padding", () => {
  for (const k of specs) {
    const view = new DataView(new ArrayBuffer(512));
    new Uint8Array(view.buffer).fill(0xee);
    const values: Record<string, number> = {};
    k.uniforms.forEach((f, i) => values[f.name] = f.type === "f32" ? i + 0.25 : 1000 + i);
    packUniforms(view, 256, k, values);
    const fields = structFields(uniformsWgsl(k));
    fields.forEach((f, i) => {
      const at = 256 + 4 * i;
      const want = f.name.startsWith("_p") ? 0 : values[f.name];
      const got = f.type === "f32" ? view.getFloat32(at, true) : view.getUint32(at, true);
      assert.equal(got, want, `${k.file}.${f.name}`);
    });
    assert.equal(view.getUint8(255), 0xee, `${k.file}: wrote before its slot`);
    assert.equal(view.getUint8(256 + uniformBytes(k)), 0xee, `${k.file}: wrote past its struct`);
  }
});

Deno.test("packUniforms refuses a missing field and a value that is not a u32", () => {
  const k: KernelSpec = KERNELS.copy_rows;
  const view = new DataView(new ArrayBuffer(256));
  assert.throws(
    () => packUniforms(view, 0, k, { n: 4, src_off: 0 }),
    /uniform copy_rows\.dst_off = undefined is not a u32/,
  );
  assert.throws(
    () => packUniforms(view, 0, k, { n: -1, src_off: 0, dst_off: 0 }),
    /uniform copy_rows\.n = -1 is not a u32/,
  );
});
