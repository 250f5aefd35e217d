/**
 * Peak resident memory and time of loading a model folder onto the WASM (default) or WebGPU
 * backend, each format in a fresh process. The child reads the kernel's peak-RSS counter (VmHWM in
 * /proc/self/status) twice: after importing the modules and creating the backend, nothing
 * loaded (the baseline: what a process that loads nothing but the same modules holds), and
 * after loading. The parent prints, per format:
 *
 * - (peak - baseline) / weights: what loading itself adds, per byte of weights the backend
 *   holds afterwards. Issue 14's lean-loading bound (<= 1.15x) is on this number.
 * - peak / weights: the whole process. For small models the runtime's own ~50 MiB baseline
 *   dominates it (a 135M model as q8 is 144 MiB), so it cannot meet 1.15x there.
 * - overhead: peak - baseline - weights, the loader's fixed cost (piece buffers, the code and
 *   heap it runs with).
 *
 * With `--backend webgpu` the weights the device holds are counted as weight bytes. On a
 * software adapter (llvmpipe) "GPU" buffers are host memory, so the peak counts the weights
 * themselves plus everything the upload stages on the host (queue staging, mapped ranges,
 * pieces): the same bound as on wasm. On a discrete GPU the weights are not in RSS and the
 * ratio would measure host staging alone. `--whole` measures the loader's whole-matrix path
 * instead (the backend's allocWeights hidden), for comparison.
 *
 *   deno run -A tools/load_memory.ts --model /tmp/scale_360m --formats f32,f16,q8
 *   MESA_SHADER_CACHE_DISABLE=true deno run -A tools/load_memory.ts --model DIR --backend webgpu
 */

import { parseArgs } from "node:util";
import { WasmBackend } from "../lib/backends/wasm.ts";
import { WebGpuBackend } from "../lib/backends/webgpu.ts";
import type { Backend } from "../lib/backends/backend.ts";
import { envMaxMemory, parseWeightDType } from "../lib/backends/select_backend.ts";
import { memoryLimitFor } from "../lib/server/memory_fit.ts";
import { loadModel, type Model } from "../lib/model/model.ts";

/** Backends {@link measureLoad} can load onto. */
export type LoadBackend = "wasm" | "webgpu";

/** One load's measurement (bytes and milliseconds). */
export interface LoadMemory {
  format: string;
  /** Backend loaded onto (and "whole" when the loader's whole-matrix path was used). */
  backend?: string;
  /** Bytes the backend holds after loading (weights, as stored). */
  weightBytes: number;
  /** Peak RSS before loading: the runtime, the same modules and the backend, nothing loaded. */
  baselineRss: number;
  /** Peak RSS of the whole process after loading. */
  peakRss: number;
  loadMs: number;
}

/** Peak resident bytes of this process so far (Linux VmHWM). */
export function peakRssBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  if (!m) throw new Error("load_memory: no VmHWM in /proc/self/status (Linux only)");
  return Number(m[1]) * 1024;
}

/** Measure loading `dir` in `format` in this process (call it in a fresh one). */
export async function measureLoad(
  dir: string,
  format: string,
  backend: LoadBackend = "wasm",
  whole = false,
): Promise<LoadMemory> {
  return (await loadMeasured(dir, format, backend, whole)).load;
}

/** Bytes of weights a backend holds now (wasm: its memory in use; webgpu: weight buffers). */
function heldBytes(be: Backend): number {
  if (be instanceof WebGpuBackend) return be.weightBytes;
  if (be.usedBytes === undefined) throw new Error(`load_memory: ${be.name} reports no bytes`);
  return be.usedBytes;
}

/** {@link measureLoad}, also handing back the loaded model (for benchmarks that go on with it). */
export async function loadMeasured(
  dir: string,
  format: string,
  backend: LoadBackend = "wasm",
  whole = false,
): Promise<{ load: LoadMemory; model: Model }> {
  const weightDType = parseWeightDType(format);
  const be: Backend = backend === "webgpu"
    ? await WebGpuBackend.create({ weightDType })
    : backend === "wasm"
    ? await WasmBackend.create({
      weightDType,
      // The server's memory limit: SEAP_MAX_MEMORY, else by the weights' size (wasm64 past
      // 4 GiB).
      maxBytes: await memoryLimitFor(dir, weightDType, envMaxMemory() ?? null, "wasm"),
    })
    : (() => {
      throw new Error(`load_memory: unknown backend "${backend}" (wasm or webgpu)`);
    })();
  if (whole) Object.defineProperty(be, "allocWeights", { value: undefined });
  const before = heldBytes(be);
  const baselineRss = peakRssBytes();
  const t0 = performance.now();
  const model = await loadModel(dir, { backend: be });
  if (be instanceof WebGpuBackend) {
    // Loading ends when the device holds the weights: submit what is recorded, wait for it.
    const t = be.tensor(1, 1);
    await be.read(t);
    be.free(t);
    await be.device.queue.onSubmittedWorkDone();
  }
  const loadMs = performance.now() - t0;
  return {
    load: {
      format,
      backend: backend + (whole ? " whole" : ""),
      weightBytes: heldBytes(be) - before,
      baselineRss,
      peakRss: peakRssBytes(),
      loadMs,
    },
    model,
  };
}

/** Run {@link measureLoad} in a child process and parse its answer. */
export async function measureLoadInChild(
  dir: string,
  format: string,
  backend: LoadBackend = "wasm",
  whole = false,
): Promise<LoadMemory> {
  const args = ["run", "-A", new URL(import.meta.url).pathname, "--child", "--model", dir];
  args.push("--backend", backend, ...(whole ? ["--whole"] : []), format);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`load_memory child (${format}) failed: ${text}`);
  return JSON.parse(text.trim().split("\n").pop()!);
}

const mib = (n: number) => (n / 2 ** 20).toFixed(0);

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      model: { type: "string" },
      formats: { type: "string", default: "f32,f16,q8" },
      backend: { type: "string", default: "wasm" },
      whole: { type: "boolean" },
      child: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.model) {
    console.log(
      "usage: load_memory.ts --model DIR [--formats f32,f16,q8] [--backend wasm|webgpu] [--whole]",
    );
    Deno.exit(values.help ? 0 : 2);
  }
  if (values.child) {
    const backend = values.backend as LoadBackend;
    const r = await measureLoad(values.model, positionals[0], backend, values.whole);
    console.log(JSON.stringify(r));
    // A WebGPU device thread may outlive the load: leave without waiting on it.
    Deno.exit(0);
  } else {
    console.log(
      "| format | weights MiB | baseline RSS MiB | peak RSS MiB | overhead MiB | (peak-baseline)/weights | peak/weights | load s |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const f of values.formats!.split(",")) {
      const r = await measureLoadInChild(
        values.model,
        f,
        values.backend as LoadBackend,
        values.whole,
      );
      console.log(
        `| ${f} | ${mib(r.weightBytes)} | ${mib(r.baselineRss)} | ${mib(r.peakRss)} | ${
          mib(r.peakRss - r.baselineRss - r.weightBytes)
        } | ${((r.peakRss - r.baselineRss) / r.weightBytes).toFixed(3)} | ${
          (r.peakRss / r.weightBytes).toFixed(2)
        } | ${(r.loadMs / 1000).toFixed(1)} |`,
      );
    }
  }
}
