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
import { parseByteSize } from "./wasm_memory.ts";

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
   * The WASM backend's memory limit in bytes (`SEAP_MAX_MEMORY`; default: that variable when
   * set and readable, else 4 GiB). Past 4 GiB the memory64 kernels serve it (docs/design.md,
   * WASM memory past 4 GiB). Other backends ignore it.
   */
  maxMemoryBytes?: number;
  /**
   * Threads of the WASM backend (`SEAP_THREADS`; default 1: no workers, no shared memory).
   * Above 1 the caller must `close()` the backend. Other backends ignore it.
   */
  threads?: number;
}

/** SEAP_MAX_MEMORY when set (and the environment readable), parsed; else undefined. */
export function envMaxMemory(): number | undefined {
  let raw;
  try {
    raw = Deno.env.get("SEAP_MAX_MEMORY");
  } catch {
    return undefined; // no --allow-env
  }
  return raw ? parseByteSize(raw, "SEAP_MAX_MEMORY") : undefined;
}

async function makeWasm(
  weightDType: WeightDType,
  maxBytes: number | undefined,
  threads: number,
): Promise<Backend> {
  // Imported on demand: the WASM module is only read when this backend is chosen.
  const mod = await import("./wasm.ts");
  return await mod.WasmBackend.create({
    weightDType,
    maxBytes: maxBytes ?? envMaxMemory(),
    threads,
  });
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
      return await makeWasm(weightDType, opts.maxMemoryBytes, threads);
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
        const b = await makeWasm(weightDType, opts.maxMemoryBytes, threads);
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
