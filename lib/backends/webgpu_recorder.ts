/**
 * The WebGPU command recorder: ops are recorded into one pending command encoder (one compute
 * pass, split only where a buffer copy must sit between dispatches) and submitted together at
 * the next {@link GpuRecorder.flush}, so a decode step is one submission.
 *
 * - Uniforms: one 256-byte slot of a ring buffer per dispatch (dynamic offset), written by name
 *   from the kernel table (lib/backends/webgpu_kernels.ts); a full ring flushes.
 * - Upload arena: a persistent storage buffer for per-step host data (token ids, rope tables,
 *   tensor writes), its host mirror written just before submission.
 * - Caches: bind-group layouts, shader modules, pipelines (per override set) and bind groups
 *   (per buffer ranges), so a decode step reuses the previous step's objects.
 * - Errors: uncaptured validation errors and device loss, reported by {@link checkErrors}.
 */

import {
  type BindKind,
  type Flags,
  type KernelName,
  KERNELS,
  type KernelSpec,
  packUniforms,
  type UniformsOf,
} from "./webgpu_kernels.ts";
import { WebGpuError } from "./webgpu_device.ts";

/** A buffer range for one binding (`id` identifies the GPUBuffer for the bind-group cache). */
export interface Res {
  buf: GPUBuffer;
  id: number;
  offset: number;
  size: number;
}

const UNI_SLOT = 256;
const UNI_SLOTS = 2048;
const MAX_WG_X = 65535;

let nextBufId = 1;

/** A fresh id for a GPUBuffer (bind groups are cached by buffer id and range). */
export function newBufferId(): number {
  return nextBufId++;
}

/** `n` rounded up to a multiple of `m`. */
export const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/** Records dispatches and copies into one pending submission; see the module comment. */
export class GpuRecorder {
  /** Counters since creation: submissions, compute passes, dispatches, tensor readbacks. */
  readonly stats = { submissions: 0, passes: 0, dispatches: 0, readbacks: 0 };
  /** Device storage-binding limit (tensors, scratch, the arena). */
  readonly maxBind: number;
  /** Offset alignment of storage bindings. */
  readonly align: number;
  /** Per-submission values keyed by the caller (rope tables), cleared when the arena rewinds. */
  readonly stepCache = new Map<string, Res>();

  #layouts = new Map<string, GPUBindGroupLayout>();
  #pipeLayouts = new Map<string, GPUPipelineLayout>();
  #modules = new Map<string, GPUShaderModule>();
  #pipelines = new Map<string, GPUComputePipeline>();
  #bindGroups = new Map<string, GPUBindGroup>();

  #uniBuf: GPUBuffer;
  #uniView = new DataView(new ArrayBuffer(UNI_SLOT * UNI_SLOTS));
  #uniUsed = 0;

  #enc: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #passPipe: GPUComputePipeline | null = null;
  #deferred: GPUBuffer[] = [];

  #arena: GPUBuffer;
  #arenaId = newBufferId();
  #arenaHost: ArrayBuffer;
  /** Bytes of the arena in use / already written to the GPU since the last rewind. */
  #arenaUsed = 0;
  #arenaWritten = 0;

  #gpuError: string | null = null;
  #lost: string | null = null;
  #destroyed = false;

  /** `sources`: expanded WGSL per kernel file (lib/backends/webgpu_kernels.ts). */
  constructor(readonly device: GPUDevice, private readonly sources: Map<string, string>) {
    this.maxBind = device.limits.maxStorageBufferBindingSize;
    this.align = device.limits.minStorageBufferOffsetAlignment;
    this.#uniBuf = device.createBuffer({
      size: UNI_SLOT * UNI_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#arena = this.#newArena(1 << 20);
    this.#arenaHost = new ArrayBuffer(this.#arena.size);
    device.addEventListener("uncapturederror", (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error?.message ?? String(ev);
      if (this.#gpuError === null) this.#gpuError = msg;
    });
    device.lost.then((info) => {
      if (!this.#destroyed) this.#lost = info.message || String(info.reason);
    });
  }

  /** Host mirror of the upload arena (write what {@link arenaAlloc} returned, then flush). */
  get arenaHost(): ArrayBuffer {
    return this.#arenaHost;
  }

  /** Whether commands are recorded and not yet submitted. */
  get pending(): boolean {
    return this.#enc !== null;
  }

  /** Throws when the backend was destroyed or the device lost. */
  alive(): void {
    if (this.#destroyed) throw new WebGpuError("webgpu: backend destroyed");
    if (this.#lost) throw new WebGpuError(`webgpu: device lost: ${this.#lost}`);
  }

  /** Throws (once) the first uncaptured GPU error since the last call. */
  checkErrors(): void {
    this.alive();
    if (this.#gpuError) {
      const m = this.#gpuError;
      this.#gpuError = null;
      throw new WebGpuError(`webgpu: ${m}`);
    }
  }

  /** Submit pending work and destroy the device. */
  destroy(): void {
    if (this.#destroyed) return;
    this.flush();
    this.#destroyed = true;
    this.device.destroy();
  }

  /** Destroy a buffer once the work recorded so far is submitted. */
  defer(buf: GPUBuffer): void {
    if (this.#enc) this.#deferred.push(buf);
    else buf.destroy();
  }

  /** Forget every cached bind group (a buffer they reference is going away). */
  dropBindGroups(): void {
    this.#bindGroups.clear();
  }

  /** The pending encoder, created on first use. */
  encoder(): GPUCommandEncoder {
    if (!this.#enc) this.#enc = this.device.createCommandEncoder();
    return this.#enc;
  }

  /** End the open compute pass (before a buffer copy). */
  endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /**
   * Submit everything recorded so far (uniforms and upload-arena contents first), without
   * waiting. The arena is only rewound with `resetArena` (reads, or when it is full): a flush
   * forced by a full uniform ring may sit between an op's arena upload and its dispatch, and
   * rewriting unchanged arena bytes at the next flush is harmless.
   */
  flush(resetArena = false): void {
    this.endPass();
    const q = this.device.queue;
    if (this.#uniUsed > 0) {
      q.writeBuffer(this.#uniBuf, 0, this.#uniView.buffer, 0, this.#uniUsed * UNI_SLOT);
    }
    if (this.#arenaUsed > this.#arenaWritten) {
      const at = this.#arenaWritten;
      q.writeBuffer(this.#arena, at, this.#arenaHost, at, this.#arenaUsed - at);
      this.#arenaWritten = this.#arenaUsed;
    }
    if (this.#enc) {
      q.submit([this.#enc.finish()]);
      this.stats.submissions++;
      this.#enc = null;
    }
    this.#uniUsed = 0;
    for (const b of this.#deferred) b.destroy();
    this.#deferred = [];
    if (resetArena) {
      this.#arenaUsed = 0;
      this.#arenaWritten = 0;
      this.stepCache.clear();
    }
  }

  /**
   * Room for `bytes` of per-step host data in the upload arena; bind groups on it are cached
   * like any other. Flushes and rewinds when full; grows when too small.
   */
  arenaAlloc(bytes: number): Res {
    const size = Math.max(16, roundUp(bytes, 16));
    let offset = roundUp(this.#arenaUsed, this.align);
    if (offset + size > this.#arena.size) {
      this.flush(true);
      offset = 0;
      if (size > this.#arena.size) {
        if (size > this.maxBind) {
          throw new RangeError(`webgpu: ${bytes} bytes of per-step data exceed the binding limit`);
        }
        this.#deferred.push(this.#arena);
        this.#bindGroups.clear();
        this.#arena = this.#newArena(
          Math.min(this.maxBind, Math.max(roundUp(size, 256), 2 * this.#arena.size)),
        );
        this.#arenaHost = new ArrayBuffer(this.#arena.size);
        this.#arenaId = newBufferId();
      }
    }
    this.#arenaUsed = offset + size;
    return { buf: this.#arena, id: this.#arenaId, offset, size };
  }

  /**
   * A storage buffer of at least `bytes` (at least `min`) replacing `old` when that is too
   * small (the old one is destroyed after pending work); `what` names it in the error.
   */
  grow(old: Res | null, bytes: number, min: number, what: string): Res {
    if (old && old.size >= bytes) return old;
    if (old) this.#deferred.push(old.buf);
    const size = roundUp(Math.max(bytes, min), 256);
    if (size > this.maxBind) {
      throw new RangeError(`webgpu: ${size} bytes of ${what} exceed the binding limit`);
    }
    const buf = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE });
    return { buf, id: newBufferId(), offset: 0, size };
  }

  /**
   * Record one dispatch of `nwg` workgroups (folded into x/y for the 65535 limit; kernels use
   * the linear id and skip the excess). `uni` holds the kernel's uniform fields by name; `res`
   * the storage bindings 1..n. Bind groups are cached by their buffer ranges.
   */
  dispatch<K extends KernelName>(
    name: K,
    entry: string,
    flags: Flags,
    uni: UniformsOf<K>,
    res: Res[],
    nwg: number,
  ): void {
    const spec: KernelSpec = KERNELS[name];
    const pipe = this.#pipeline(spec, entry, flags);
    if (this.#uniUsed === UNI_SLOTS) this.flush();
    const base = this.#uniUsed++ * UNI_SLOT;
    packUniforms(this.#uniView, base, spec, uni);
    const key = name + "|" + res.map((r) => `${r.id}:${r.offset}:${r.size}`).join("|");
    let bg = this.#bindGroups.get(key);
    if (!bg) {
      bg = this.device.createBindGroup({
        layout: this.#layout(spec.bindings).layout,
        entries: [
          { binding: 0, resource: { buffer: this.#uniBuf, offset: 0, size: UNI_SLOT } },
          ...res.map((r, i) => ({
            binding: i + 1,
            resource: { buffer: r.buf, offset: r.offset, size: r.size },
          })),
        ],
      });
      if (this.#bindGroups.size > 8192) this.#bindGroups.clear();
      this.#bindGroups.set(key, bg);
    }
    if (!this.#pass) {
      this.#pass = this.encoder().beginComputePass();
      this.#passPipe = null;
      this.stats.passes++;
    }
    if (this.#passPipe !== pipe) {
      this.#pass.setPipeline(pipe);
      this.#passPipe = pipe;
    }
    this.#pass.setBindGroup(0, bg, [base]);
    const x = Math.min(nwg, MAX_WG_X);
    this.#pass.dispatchWorkgroups(x, Math.ceil(nwg / x));
    this.stats.dispatches++;
  }

  #newArena(size: number): GPUBuffer {
    return this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
  }

  #layout(kinds: readonly BindKind[]): { layout: GPUBindGroupLayout; pipe: GPUPipelineLayout } {
    const key = kinds.join("");
    let layout = this.#layouts.get(key);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        entries: kinds.map((k, i) => ({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: k === "u"
            ? { type: "uniform" as const, hasDynamicOffset: true }
            : { type: k === "s" ? "storage" as const : "read-only-storage" as const },
        })),
      });
      this.#layouts.set(key, layout);
      this.#pipeLayouts.set(key, this.device.createPipelineLayout({ bindGroupLayouts: [layout] }));
    }
    return { layout, pipe: this.#pipeLayouts.get(key)! };
  }

  #pipeline(spec: KernelSpec, entry: string, flags: Flags): GPUComputePipeline {
    const key = `${spec.file}:${entry}:${flags.W_F16 ? 1 : 0}${flags.B_F16 ? 1 : 0}` +
      `${flags.U_F16 ? 1 : 0}${flags.VEC ? 1 : 0}${flags.TABLE ? 1 : 0}:${flags.LANES ?? ""}`;
    let p = this.#pipelines.get(key);
    if (!p) {
      const constants: Record<string, number> = {};
      for (const o of spec.overrides) {
        if (flags[o] !== undefined) constants[o] = Number(flags[o]);
      }
      let module = this.#modules.get(spec.file);
      if (!module) {
        module = this.device.createShaderModule({
          label: spec.file,
          code: this.sources.get(spec.file)!,
        });
        this.#modules.set(spec.file, module);
      }
      p = this.device.createComputePipeline({
        label: key,
        layout: this.#layout(spec.bindings).pipe,
        compute: { module, entryPoint: entry, constants },
      });
      this.#pipelines.set(key, p);
    }
    return p;
  }
}
