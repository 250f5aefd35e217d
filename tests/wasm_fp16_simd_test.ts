/**
 * The half-precision SIMD f16 path of the WASM backend (kernels/wasm/seap_kernels_fp16.wasm,
 * lib/backends/wasm.ts `fp16Simd`): the committed module really uses `f32x4.promote_low_f16x8`
 * (no placeholder import left), its f16 products match a float64 reference on f16-rounded
 * weights (the conversion is exact: only the f32 summation order differs from the portable
 * kernels), and the choice falls back to the portable bit-trick kernels in a runtime without the
 * V8 flag or with `SEAP_FP16_SIMD=0` (checked in child processes started without the flag).
 * The in-process checks need `--v8-flags=--experimental-wasm-fp16` (`deno task test` passes it)
 * and are skipped, saying so, without it.
 */

import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { fp16SimdSupported } from "../lib/backends/wasm_kernels.ts";
import { KERNEL_FP16_URL } from "../lib/backends/wasm_memory.ts";
import type { MatView } from "../lib/backends/backend.ts";
import { rng, uniform } from "./helpers/seeded.ts";
import { assertClose } from "./helpers/assert_close.ts";

const HAS = fp16SimdSupported();
const WHY = HAS ? "" : " (skipped: run deno with --v8-flags=--experimental-wasm-fp16)";
const FLAG = "--v8-flags=--experimental-wasm-fp16";

/** Run a snippet in a child Deno and return its stdout (trimmed); fails on a non-zero exit. */
async function child(code: string, flags: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...flags, code],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout).trim();
  assert.ok(r.success, `child deno failed: ${new TextDecoder().decode(r.stderr)}`);
  return out;
}

const WASM_TS = new URL("../lib/backends/wasm.ts", import.meta.url).href;
const PROBE = `import { WasmBackend } from "${WASM_TS}";
const b = await WasmBackend.create({ weightDType: "f16" });
let forced = "accepted";
try { await WasmBackend.create({ weightDType: "f16", fp16Simd: true }); }
catch (e) { forced = e.message; }
console.log(JSON.stringify({ path: b.f16Path, forced }));`;

Deno.test("wasm fp16 SIMD: without the V8 flag the backend takes the portable path and says why fp16Simd: true fails", async () => {
  const r = JSON.parse(await child(PROBE, []));
  assert.equal(r.path, "bit-trick");
  assert.match(r.forced, /--v8-flags=--experimental-wasm-fp16/);
  console.log(`  no flag: ${r.path}; forced: "${r.forced}"`);
});

Deno.test("wasm fp16 SIMD: with the flag a child takes it, and SEAP_FP16_SIMD=0 turns it off", async () => {
  const on = JSON.parse(await child(PROBE, [FLAG]));
  assert.equal(on.path, "fp16-simd");
  assert.equal(on.forced, "accepted");
  const off = JSON.parse(await child(PROBE, [FLAG], { SEAP_FP16_SIMD: "0" }));
  assert.equal(off.path, "bit-trick");
  console.log(`  flag: ${on.path}; flag + SEAP_FP16_SIMD=0: ${off.path}`);
});

Deno.test("wasm fp16 SIMD: the committed module has the opcode and no placeholder import", async () => {
  const bytes = await Deno.readFile(KERNEL_FP16_URL);
  let n = 0;
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xfd && bytes[i + 1] === 0xcb && bytes[i + 2] === 0x02) n++;
  }
  // f32x4.promote_low_f16x8 = 0xFD, LEB128(0x14B) = CB 02 (may also match inside immediates,
  // but the placeholder's name must be gone and the opcode must occur).
  assert.ok(n > 0, "no f32x4.promote_low_f16x8 in seap_kernels_fp16.wasm");
  const text = new TextDecoder("latin1").decode(bytes);
  assert.ok(!text.includes("seap_fp16"), "the placeholder import is still in the module");
  assert.equal(WebAssembly.validate(bytes), HAS);
  console.log(`  ${n} promote opcodes, validates here: ${HAS}`);
});

/** f16-rounded copy of a (what the weights hold after upload as f16). */
function f16(a: Float32Array): Float32Array {
  return new Float32Array(Float16Array.from(a));
}

Deno.test({
  name:
    `wasm fp16 SIMD: f16 matmul and matmulTAdd equal a float64 reference and the portable kernels${WHY}`,
  ignore: !HAS,
  fn: async () => {
    const simd = await WasmBackend.create({ weightDType: "f16", fp16Simd: true });
    const port = await WasmBackend.create({ weightDType: "f16", fp16Simd: false });
    assert.equal(simd.f16Path, "fp16-simd");
    assert.equal(port.f16Path, "bit-trick");
    const r = rng(1607);
    // K = 203: full 32-weight steps, an 8-weight step and a scalar tail; rows gathered.
    const N = 37, K = 203, stride = 211;
    const wHost = uniform(N * stride, r, 0.5);
    // Include subnormal and large halves: the native conversion is exact for both.
    wHost[3] = 3e-6;
    wHost[stride + 5] = -6e-8;
    wHost[2 * stride + 7] = 60000;
    const wRef = f16(wHost);
    const rows = Int32Array.from([36, 0, 5, 5, 17, 2, 30, 11, 8]);
    for (const T of [1, 5]) {
      const x = uniform(T * K, r, 1);
      const a = uniform(T * rows.length, r, 1);
      // matmul: out[t, i] = x[t] . w[rows[i]]
      const want = new Float64Array(T * rows.length);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < rows.length; i++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += x[t * K + k] * wRef[rows[i] * stride + k];
          want[t * rows.length + i] = s;
        }
      }
      // matmulTAdd: out[t, :K] += sum_i a[t, i] w[rows[i], :K]
      const wantT = new Float64Array(T * K);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < rows.length; i++) {
          for (let k = 0; k < K; k++) {
            wantT[t * K + k] += a[t * rows.length + i] * wRef[rows[i] * stride + k];
          }
        }
      }
      const got: Float32Array[] = [];
      for (const be of [simd, port]) {
        const buf = be.weights(wHost);
        const w: MatView = { buf, offset: 0, stride, rows: N, cols: K };
        const idx = be.indices(rows);
        const xt = be.tensor(T, K), out = be.tensor(T, rows.length);
        be.write(xt, x);
        be.matmul(xt, w, idx, null, out);
        const at = be.tensor(T, rows.length), o2 = be.tensor(T, K);
        be.write(at, a);
        be.write(o2, new Float32Array(T * K));
        be.matmulTAdd(at, w, idx, o2);
        const m = await be.read(out), mt = await be.read(o2);
        const tag = `${be.f16Path} T=${T}`;
        // Tolerance of the conformance suite, scaled for the 60000 weight's products.
        assertClose(`${tag} matmul`, m, want, 1e-5, 1e-3);
        assertClose(`${tag} matmulTAdd`, mt, wantT, 1e-5, 1e-3);
        got.push(m, mt);
        let worst = 0, at0 = 0;
        m.forEach((v, i) => {
          const e = Math.abs(v - want[i]);
          if (e > worst) [worst, at0] = [e, i];
        });
        console.log(`  ${tag}: matmul worst |err| ${worst.toExponential(2)} at ${at0}`);
        for (const t of [xt, out, at, o2]) be.free(t);
        be.release(buf);
        be.release(idx);
      }
      let worst = 0;
      for (let j = 0; j < 2; j++) {
        got[j].forEach((v, i) => (worst = Math.max(worst, Math.abs(v - got[j + 2][i]))));
      }
      console.log(`  T=${T}: fp16-simd vs bit-trick worst |diff| ${worst.toExponential(2)}`);
    }
  },
});

Deno.test("wasm fp16 SIMD: /healthz reports the f16 path the backend took", async () => {
  const { tinyApp } = await import("./server_helpers.ts");
  for (const fp16Simd of [false, ...(HAS ? [undefined] : [])]) {
    const backend = await WasmBackend.create({ weightDType: "f16", fp16Simd });
    const { app } = await tinyApp({ backend });
    const body = await (await app.request("/healthz")).json();
    assert.equal(body.backend, "wasm");
    assert.equal(body.f16_path, fp16Simd === false ? "bit-trick" : "fp16-simd");
    console.log(`  fp16Simd ${fp16Simd}: /healthz f16_path ${body.f16_path}`);
  }
  const ref = await tinyApp();
  assert.equal((await (await ref.app.request("/healthz")).json()).f16_path, null);
});
