/**
 * WebGPU device acquisition: the adapter (`navigator.gpu`), the device with the adapter's full
 * storage limits, and the probe that tells whether packed-f16 kernels compile. With
 * lib/backends/webgpu*.ts this is the only code that touches `navigator.gpu`.
 */

/** Thrown when no WebGPU adapter (or device) is available. */
export class WebGpuUnavailableError extends Error {
  override name = "WebGpuUnavailableError";
}

/** Thrown for a GPU validation error or a lost device, reported at the next `read`. */
export class WebGpuError extends Error {
  override name = "WebGpuError";
}

/**
 * Ask `navigator.gpu` for an adapter. Returns null when WebGPU is absent, when no adapter
 * exists, or (with `allowFallback: false`) when the only adapter is a software fallback such
 * as llvmpipe.
 */
export async function requestWebGpuAdapter(
  opts: { allowFallback?: boolean; powerPreference?: GPUPowerPreference } = {},
): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return null;
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({
      powerPreference: opts.powerPreference ?? "high-performance",
    });
  } catch {
    return null;
  }
  if (!adapter) return null;
  if (opts.allowFallback === false && isFallbackAdapter(adapter)) return null;
  return adapter;
}

/** Whether an adapter is a software fallback (llvmpipe, SwiftShader, WARP). */
export function isFallbackAdapter(adapter: GPUAdapter): boolean {
  const a = adapter as GPUAdapter & { isFallbackAdapter?: boolean; info?: GPUAdapterInfo };
  const info = a.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
  return Boolean(a.isFallbackAdapter ?? info?.isFallbackAdapter);
}

/** A one-line description of an adapter (e.g. "llvmpipe (LLVM 15...)"). */
export function describeAdapter(adapter: GPUAdapter): string {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  return info
    ? [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(" ")
    : "unknown adapter";
}

/**
 * The given adapter, or the default one (a software fallback only with `allowFallback`, the
 * default). Throws {@link WebGpuUnavailableError} when there is none.
 */
export async function adapterOrDefault(
  adapter: GPUAdapter | undefined,
  allowFallback: boolean | undefined,
): Promise<GPUAdapter> {
  const a = adapter ?? await requestWebGpuAdapter({ allowFallback: allowFallback ?? true });
  if (!a) {
    throw new WebGpuUnavailableError(
      "no WebGPU adapter: navigator.gpu is missing or requestAdapter() returned null" +
        (allowFallback === false ? " (software fallback adapters excluded)" : ""),
    );
  }
  return a;
}

/**
 * Open a device with the adapter's largest storage binding and buffer sizes.
 * @throws WebGpuUnavailableError when `requestDevice` fails.
 */
export async function openDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const lim = adapter.limits;
  try {
    return await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
      },
    });
  } catch (e) {
    throw new WebGpuUnavailableError(`WebGPU requestDevice failed: ${(e as Error).message}`);
  }
}

/**
 * Whether the packed-f16 path of a kernel compiles on this device (it needs
 * `unpack2x16float`): builds `source`'s entry point `main` with `W_F16` and `VEC` set.
 * @returns null when it compiles, else the validation message.
 */
export async function packedF16Error(device: GPUDevice, source: string): Promise<string | null> {
  device.pushErrorScope("validation");
  try {
    const m = device.createShaderModule({ code: source });
    device.createComputePipeline({
      layout: "auto",
      compute: { module: m, entryPoint: "main", constants: { W_F16: 1, VEC: 1 } },
    });
  } catch {
    // reported through the error scope below
  }
  const err = await device.popErrorScope();
  return err ? err.message : null;
}
