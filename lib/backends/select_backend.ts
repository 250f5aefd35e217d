/**
 * Backend choice by name: "reference" (plain TypeScript), "wasm" (WASM SIMD kernels),
 * "webgpu" (WGSL kernels, any adapter including a software fallback), or "auto": WebGPU when a
 * real (non-fallback) GPU adapter exists, else WASM, else the reference backend.
 *
 * A software adapter such as llvmpipe is correct but far slower than the WASM kernels, which is
 * why "auto" skips it; ask for "webgpu" explicitly to use it anyway (tests do).
 */

import type { Backend, WeightDType } from "./backend.ts";
import { ReferenceBackend } from "./reference.ts";
import { requestWebGpuAdapter, WebGpuBackend } from "./webgpu.ts";

/** The weight formats, for command-line and environment parsing. */
export const WEIGHT_DTYPES: readonly WeightDType[] = ["f32", "f16", "q8"];

/** Parse a weight format name (`--weights`, `SEAP_WEIGHTS`); throws a clear error otherwise. */
export function parseWeightDType(s: string, what = "--weights"): WeightDType {
  if ((WEIGHT_DTYPES as readonly string[]).includes(s)) return s as WeightDType;
  throw new RangeError(`${what}: expected ${WEIGHT_DTYPES.join(", ")}, got "${s}"`);
}

/** A backend name, or "auto". */
export type BackendChoice = "auto" | "reference" | "wasm" | "webgpu";

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Weight storage precision, "f32" (default), "f16" or "q8", on every backend. */
  weightDType?: WeightDType;
  /** Where "auto" reports what it chose and why (default: nothing). */
  log?: (msg: string) => void;
  /**
   * Threads of the WASM backend (`SEAP_THREADS`; default 1: no workers, no shared memory).
   * Above 1 the caller must `close()` the backend. Other backends ignore it.
   */
  threads?: number;
}

/** Parse a thread count (`--threads`, `SEAP_THREADS`): an integer in 1..256. */
export function parseThreads(s: string, what = "--threads"): number {
  const n = Number(s);
  if (!(s.trim() !== "" && Number.isInteger(n) && n >= 1 && n <= 256)) {
    throw new RangeError(`${what}: expected an integer from 1 to 256, got "${s}"`);
  }
  return n;
}

async function makeWasm(weightDType: WeightDType, threads: number): Promise<Backend> {
  // Imported on demand: the WASM module is only read when this backend is chosen.
  const mod = await import("./wasm.ts");
  return await mod.WasmBackend.create({ weightDType, threads });
}

/**
 * Create the chosen backend. Explicit choices throw when unavailable (e.g. "webgpu" without
 * any adapter); "auto" always returns a backend, falling back WebGPU -> WASM -> reference.
 */
export async function selectBackend(
  choice: BackendChoice,
  opts: SelectBackendOptions = {},
): Promise<Backend> {
  const weightDType = opts.weightDType ?? "f32";
  const log = opts.log ?? (() => {});
  const threads = opts.threads ?? 1;
  switch (choice) {
    case "reference":
      return new ReferenceBackend({ weightDType });
    case "wasm":
      return await makeWasm(weightDType, threads);
    case "webgpu":
      return await WebGpuBackend.create({ weightDType, allowFallback: true });
    case "auto": {
      const adapter = await requestWebGpuAdapter({ allowFallback: false });
      if (adapter) {
        try {
          const b = await WebGpuBackend.create({ weightDType, adapter });
          log(`backend: webgpu on ${b.adapterDescription}`);
          return b;
        } catch (e) {
          log(`backend: webgpu unavailable (${(e as Error).message}); trying wasm`);
        }
      } else {
        log("backend: no hardware WebGPU adapter; trying wasm");
      }
      try {
        const b = await makeWasm(weightDType, threads);
        log(`backend: wasm${threads > 1 ? `, ${threads} threads` : ""}`);
        return b;
      } catch (e) {
        log(`backend: wasm unavailable (${(e as Error).message}); using reference`);
        return new ReferenceBackend({ weightDType });
      }
    }
    default:
      throw new RangeError(
        `unknown backend "${choice as string}" (auto, reference, wasm, webgpu)`,
      );
  }
}
