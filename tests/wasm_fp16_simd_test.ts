/**
 * The half-precision SIMD f16 path of the WASM backend (kernels/wasm/seap_kernels*_fp16.wasm, one
 * per address width and memory; lib/backends/wasm.ts `fp16Simd`): the four committed modules
 * really use `f32x4.promote_low_f16x8` (no placeholder import left), the f16 products match a
 * float64 reference on f16-rounded weights (the conversion is exact: only the f32 summation order
 * differs from the portable kernels), the backend takes the fp16 build on wasm32 and wasm64, one
 * thread and two, and the kernels that run really are the fp16 ones there (an f16 infinity stays
 * infinite through them, where the portable bit tricks turn it into 65536), and the choice falls
 * back to the portable bit-trick kernels in a runtime without the V8 flag or with
 * `SEAP_FP16_SIMD=0` (checked in child processes started without the flag).
 * The in-process checks need `--v8-flags=--experimental-wasm-fp16` (`deno task test` passes it)
 * and are skipped, saying so, without it.
 */

import assert from "node:assert/strict";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { fp16SimdSupported } from "../lib/backends/wasm_kernels.ts";
import { kernelUrl } from "../lib/backends/wasm_memory.ts";
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
/** The four kernel builds: address width and threads (2: the shared-memory build). */
const BUILDS = [
  { addressBits: 32, threads: 1 },
  { addressBits: 64, threads: 1 },
  { addressBits: 32, threads: 2 },
  { addressBits: 64, threads: 2 },
] as const;

/** "wasm32, 1 thread" etc. */
function buildName(b: { addressBits: number; threads: number }): string {
  return `wasm${b.addressBits}, ${b.threads} thread${b.threads > 1 ? "s" : ""}`;
}

// Each build: the default path, and what `fp16Simd: true` does (closing the threaded backends).
const PROBE = `import { WasmBackend } from "${WASM_TS}";
const out = [];
for (const o of ${JSON.stringify(BUILDS)}) {
  const b = await WasmBackend.create({ weightDType: "f16", ...o });
  await b.close();
  let forced = "accepted";
  try { await (await WasmBackend.create({ weightDType: "f16", fp16Simd: true, ...o })).close(); }
  catch (e) { forced = e.message; }
  out.push({ path: b.f16Path, forced });
}
console.log(JSON.stringify(out));`;

type ProbeResult = { path: string; forced: string }[];

Deno.test("wasm fp16 SIMD: without the V8 flag every build takes the portable path and says why fp16Simd: true fails", async () => {
  const r: ProbeResult = JSON.parse(await child(PROBE, []));
  r.forEach((x, i) => {
    assert.equal(x.path, "bit-trick", buildName(BUILDS[i]));
    assert.match(x.forced, /--v8-flags=--experimental-wasm-fp16/, buildName(BUILDS[i]));
    console.log(`  no flag, ${buildName(BUILDS[i])}: ${x.path}; forced: "${x.forced}"`);
  });
});

Deno.test("wasm fp16 SIMD: with the flag a child takes it on wasm32 and wasm64, one thread and two; SEAP_FP16_SIMD=0 turns it off", async () => {
  const on: ProbeResult = JSON.parse(await child(PROBE, [FLAG]));
  const off: ProbeResult = JSON.parse(await child(PROBE, [FLAG], { SEAP_FP16_SIMD: "0" }));
  BUILDS.forEach((b, i) => {
    assert.equal(on[i].path, "fp16-simd", buildName(b));
    assert.equal(on[i].forced, "accepted", buildName(b));
    // The switch turns off the default only: an explicit fp16Simd: true still gets it.
    assert.equal(off[i].path, "bit-trick", buildName(b));
    assert.equal(off[i].forced, "accepted", buildName(b));
    console.log(`  ${buildName(b)}: flag ${on[i].path}; flag + SEAP_FP16_SIMD=0 ${off[i].path}`);
  });
});

const MODULES = ([false, true] as const).flatMap((shared) =>
  ([32, 64] as const).map((bits) => ({
    what: `wasm${bits}${shared ? ", shared memory" : ""}`,
    url: kernelUrl(bits, shared, true),
  }))
);
for (const { what, url } of MODULES) {
  const file = url.pathname.split("/").pop();
  Deno.test(`wasm fp16 SIMD: the committed ${file} (${what}) has the opcode and no placeholder import`, async () => {
    const bytes = await Deno.readFile(url);
    let n = 0;
    for (let i = 0; i + 2 < bytes.length; i++) {
      if (bytes[i] === 0xfd && bytes[i + 1] === 0xcb && bytes[i + 2] === 0x02) n++;
    }
    // f32x4.promote_low_f16x8 = 0xFD, LEB128(0x14B) = CB 02 (may also match inside immediates,
    // but the placeholder's name must be gone and the opcode must occur).
    assert.ok(n > 0, `no f32x4.promote_low_f16x8 in ${file}`);
    const text = new TextDecoder("latin1").decode(bytes);
    assert.ok(!text.includes("seap_fp16"), "the placeholder import is still in the module");
    assert.equal(WebAssembly.validate(bytes), HAS);
    console.log(`  ${n} promote opcodes, validates here: ${HAS}`);
  });
}

Deno.test({
  name:
    `wasm fp16 SIMD: on every build the kernels that run are the fp16 ones (an f16 infinity stays infinite), the portable ones without it${WHY}`,
  ignore: !HAS,
  fn: async () => {
    // [N, K] rows with one +inf weight each (a different column per row), x all ones: every
    // product is +inf through the exact native conversion; the bit tricks read the f16 infinity
    // as 2^16 (exponent 31 - 15 with a zero mantissa), so their sums stay finite.
    const N = 64, K = 96;
    const w = new Float32Array(N * K).fill(0.25);
    for (let n = 0; n < N; n++) w[n * K + ((n * 7) % K)] = Infinity;
    for (const b of BUILDS) {
      for (const fp16Simd of [true, false, undefined]) {
        const be = await WasmBackend.create({ weightDType: "f16", fp16Simd, ...b });
        try {
          const simd = fp16Simd !== false;
          assert.equal(be.f16Path, simd ? "fp16-simd" : "bit-trick", buildName(b));
          assert.equal(be.addressBits, b.addressBits);
          assert.equal(be.threads, b.threads);
          const pool = be.threadPool;
          if (pool) {
            pool.minWork = 0;
            pool.waitForWorkers = true; // the worker runs its rows too
            pool.decodeColumnCuts = true;
          }
          const shared0 = pool?.sharedJobs ?? 0;
          const buf = be.weights(w);
          const x = be.tensor(1, K), out = be.tensor(1, N);
          be.write(x, new Float32Array(K).fill(1));
          be.matmul(x, { buf, offset: 0, stride: K, rows: N, cols: K }, null, null, out);
          const got = await be.read(out);
          if (pool) assert.equal(pool.sharedJobs - shared0, 1, "the worker did not run rows");
          const inf = got.filter((v) => v === Infinity).length;
          const tag = `${buildName(b)} fp16Simd ${fp16Simd}: ${be.f16Path}`;
          console.log(`  ${tag}: ${inf} of ${N} outputs +inf (first ${got[0]})`);
          if (simd) assert.equal(inf, N, `${tag}: a row did not run the native conversion`);
          else {
            // 65536 + 95 * 0.25 for every row.
            got.forEach((v, i) => assert.equal(v, 65536 + 95 * 0.25, `${tag}: row ${i}`));
          }
        } finally {
          await be.close();
        }
      }
    }
  },
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
