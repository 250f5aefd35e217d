/**
 * The WASM backend's linear memory and kernel module, in one place: which module (wasm32 or
 * wasm64 build of kernels/wasm) serves a memory limit, how that memory is created and grown, and
 * the calling convention of the wasm64 module (its pointers and `size_t`s are i64, which
 * JavaScript passes as BigInt). Choice and measurements: docs/design.md, WASM memory past 4 GiB.
 *
 * Every `WebAssembly.Memory` of the backend is made by {@link createLinearMemory}; the backend's
 * code keeps byte offsets as plain numbers (exact below 2^53) and calls the kernels through
 * {@link bindKernels}, which converts the i64 parameters.
 */

/** A WebAssembly page. */
export const WASM_PAGE = 65536;
/** The most a 32-bit memory can address (65,536 pages). */
export const WASM32_MAX_BYTES = 4 * 2 ** 30;
/**
 * The most a 64-bit memory can hold in Deno 2.9's V8 (262,144 pages; `maximum` above that is
 * refused when the memory is created).
 */
export const WASM64_MAX_BYTES = 16 * 2 ** 30;

/** Address width of a kernel module and its memory. */
export type AddressBits = 32 | 64;

/**
 * The kernel module for an address width, a private (`shared` false) or shared memory, and the
 * portable (`fp16` false) or half-precision SIMD f16 conversion: one of the eight builds of
 * kernels/wasm/build.sh, next to their C sources. `seap_kernels` + `64` for memory64 + `_mt` for a
 * shared memory (atomics, an exported `__stack_pointer`; `SEAP_THREADS` > 1,
 * lib/backends/wasm_threads.ts) + `_fp16` for the build whose f16 kernels convert with
 * `f32x4.promote_low_f16x8` (V8 validates it only with `--v8-flags=--experimental-wasm-fp16`;
 * lib/backends/wasm_kernels.ts decides when it is used).
 */
export function kernelUrl(bits: AddressBits, shared: boolean, fp16: boolean): URL {
  if (bits !== 32 && bits !== 64) throw new RangeError(`wasm: address bits ${bits}`);
  const name = `seap_kernels${bits === 64 ? "64" : ""}${shared ? "_mt" : ""}${fp16 ? "_fp16" : ""}`;
  return new URL(`../../kernels/wasm/${name}.wasm`, import.meta.url);
}

/**
 * The address width for a memory limit: wasm32 while the limit fits 4 GiB, wasm64 beyond
 * (`force` overrides: tests run the wasm64 path on small models with it).
 */
export function addressBitsFor(limitBytes: number, force?: AddressBits): AddressBits {
  if (force !== undefined) {
    if (force !== 32 && force !== 64) throw new RangeError(`wasm: address bits ${force}`);
    if (force === 32 && limitBytes > WASM32_MAX_BYTES) {
      throw new RangeError(
        `wasm: a 32-bit memory cannot hold the ${fmtGiB(limitBytes)} limit (at most 4 GiB)`,
      );
    }
    return force;
  }
  return limitBytes > WASM32_MAX_BYTES ? 64 : 32;
}

/** A linear memory and how to grow it by pages (numbers, whatever the address width). */
export interface LinearMemory {
  readonly memory: WebAssembly.Memory;
  readonly bits: AddressBits;
  /** Grow by `pages` pages (throws as `WebAssembly.Memory.grow` does when refused). */
  grow(pages: number): void;
}

/**
 * Create the backend's one linear memory: `initialPages` now, growable to `maxBytes` (rounded up
 * to whole pages, at most 4 GiB for wasm32 and 16 GiB for wasm64). The one place a memory is
 * made. `shared`: a shared memory (a SharedArrayBuffer that worker threads instantiate the
 * shared-memory kernels on, {@link kernelUrl} with `shared` true; it reserves address space up to
 * its maximum, not memory).
 */
export function createLinearMemory(
  opts: { bits: AddressBits; maxBytes: number; initialPages?: number; shared?: boolean },
): LinearMemory {
  const cap = opts.bits === 64 ? WASM64_MAX_BYTES : WASM32_MAX_BYTES;
  if (!(opts.maxBytes > 0 && opts.maxBytes <= cap)) {
    throw new RangeError(
      `wasm: memory limit ${fmtGiB(opts.maxBytes)} outside (0, ${
        fmtGiB(cap)
      }] for wasm${opts.bits}`,
    );
  }
  const maxPages = Math.ceil(opts.maxBytes / WASM_PAGE);
  const initial = Math.min(opts.initialPages ?? 32, maxPages);
  if (opts.bits === 32) {
    const memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared: opts.shared });
    return { memory, bits: 32, grow: (pages) => void memory.grow(pages) };
  }
  // Memory64 (address: "i64"): page counts are BigInts. Not in lib.deno's typings yet.
  const desc = {
    initial: BigInt(initial),
    maximum: BigInt(maxPages),
    address: "i64",
    shared: opts.shared,
  };
  const memory = new WebAssembly.Memory(desc as unknown as WebAssembly.MemoryDescriptor);
  const grow = memory.grow.bind(memory) as unknown as (pages: bigint) => bigint;
  return { memory, bits: 64, grow: (pages) => void grow(BigInt(pages)) };
}

/** Read an unsigned LEB128 at `p`; returns the value and the next position. */
function leb(b: Uint8Array, p: number): [number, number] {
  let v = 0, shift = 0, byte;
  do {
    byte = b[p++];
    v += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [v, p];
}

/**
 * For every exported function of a module's bytes, which parameters are i64: read from its type,
 * function, import and export sections (the WebAssembly binary format, section ids 1, 2, 3, 7).
 */
export function i64Params(bytes: Uint8Array): Map<string, boolean[]> {
  if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error("wasm: not a WebAssembly module");
  }
  const types: boolean[][] = [];
  const funcTypes: number[] = []; // imported functions first, then defined ones
  const exports = new Map<string, number>();
  let p = 8;
  while (p < bytes.length) {
    const id = bytes[p++];
    let size;
    [size, p] = leb(bytes, p);
    const end = p + size;
    let q = p, n;
    if (id === 1) {
      [n, q] = leb(bytes, q);
      for (let i = 0; i < n; i++) {
        if (bytes[q++] !== 0x60) throw new Error("wasm: unsupported type form");
        let np, nr;
        [np, q] = leb(bytes, q);
        types.push(Array.from(bytes.subarray(q, q + np), (t) => t === 0x7e));
        q += np;
        [nr, q] = leb(bytes, q);
        q += nr;
      }
    } else if (id === 2) {
      [n, q] = leb(bytes, q);
      for (let i = 0; i < n; i++) {
        let len;
        for (let s = 0; s < 2; s++) [len, q] = leb(bytes, q), q += len; // module, field
        const kind = bytes[q++];
        if (kind === 0) {
          let t;
          [t, q] = leb(bytes, q);
          funcTypes.push(t);
        } else if (kind === 1) { // table: reftype + limits
          q++;
          const flags = bytes[q++];
          [, q] = leb(bytes, q);
          if (flags & 1) [, q] = leb(bytes, q);
        } else if (kind === 2) { // memory: limits
          const flags = bytes[q++];
          [, q] = leb(bytes, q);
          if (flags & 1) [, q] = leb(bytes, q);
        } else if (kind === 3) q += 2; // global: valtype + mutability
        else throw new Error(`wasm: unsupported import kind ${kind}`);
      }
    } else if (id === 3) {
      [n, q] = leb(bytes, q);
      for (let i = 0; i < n; i++) {
        let t;
        [t, q] = leb(bytes, q);
        funcTypes.push(t);
      }
    } else if (id === 7) {
      [n, q] = leb(bytes, q);
      for (let i = 0; i < n; i++) {
        let len, index;
        [len, q] = leb(bytes, q);
        const name = new TextDecoder().decode(bytes.subarray(q, q + len));
        q += len;
        const kind = bytes[q++];
        [index, q] = leb(bytes, q);
        if (kind === 0) exports.set(name, index);
      }
    }
    p = end;
  }
  const out = new Map<string, boolean[]>();
  for (const [name, f] of exports) out.set(name, types[funcTypes[f]]);
  return out;
}

/**
 * The instance's exports with numbers accepted for i64 parameters (converted to BigInt) and
 * `__heap_base` read as a number; a wasm32 instance's exports are returned as they are but
 * for `__heap_base`.
 */
export function bindKernels<K>(
  inst: WebAssembly.Instance,
  bytes: Uint8Array,
): K & { heapBase: number } {
  const ex = inst.exports as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, wide] of i64Params(bytes)) {
    const f = ex[name] as (...a: unknown[]) => unknown;
    if (!wide.some((x) => x)) {
      out[name] = f;
      continue;
    }
    out[name] = (...a: number[]) => {
      const b: (number | bigint)[] = new Array(a.length);
      for (let i = 0; i < a.length; i++) b[i] = wide[i] ? BigInt(a[i]) : a[i];
      return f(...b);
    };
  }
  out.heapBase = Number((ex.__heap_base as WebAssembly.Global).value);
  return out as K & { heapBase: number };
}

function fmtGiB(n: number): string {
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/** Room left for KV caches and scratch when deciding whether a model's weights fit wasm32. */
export const WASM32_HEADROOM_BYTES = 2 ** 30;

/**
 * The memory limit when none is configured (SEAP_MAX_MEMORY unset), for weights of
 * `weightBytes`: 4 GiB (the wasm32 build, fastest) when the weights leave at least 1 GiB of it
 * for KV caches and scratch; otherwise 3/4 of the host's memory, at most 16 GiB (the memory64
 * build). Without permission to read the host's memory (`--allow-sys`), a model that needs more
 * than 4 GiB gets a clear error asking for SEAP_MAX_MEMORY.
 */
export function defaultMemoryLimit(
  weightBytes: number,
  hostBytes: () => number = () => Deno.systemMemoryInfo().total,
): number {
  if (weightBytes + WASM32_HEADROOM_BYTES <= WASM32_MAX_BYTES) return WASM32_MAX_BYTES;
  let host;
  try {
    host = hostBytes();
  } catch (e) {
    throw new RangeError(
      `wasm: the weights take ${fmtGiB(weightBytes)}, more than a 4 GiB memory holds with room ` +
        `for the KV cache; set SEAP_MAX_MEMORY (e.g. ${
          Math.ceil((weightBytes + 2 * WASM32_HEADROOM_BYTES) / 2 ** 30)
        }G, at most 16G) to use the 64-bit memory (${(e as Error).message})`,
    );
  }
  return Math.min(WASM64_MAX_BYTES, Math.floor(host * 0.75 / WASM_PAGE) * WASM_PAGE);
}

/**
 * Parse a memory size (`SEAP_MAX_MEMORY`, `--max-memory`): bytes, or a number with a unit
 * K/M/G (powers of 1024; `KiB`, `MB`, `GB`… read the same), e.g. "12G", "6144M", "1.5GiB".
 */
export function parseByteSize(s: string, what = "--max-memory"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(s);
  if (!m) {
    throw new RangeError(`${what}: expected bytes or a size like 12G or 6144M, got "${s}"`);
  }
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[
    (m[2] ?? "").toLowerCase() as "" | "k" | "m" | "g" | "t"
  ];
  const n = Math.floor(Number(m[1]) * unit);
  if (!(n > 0)) throw new RangeError(`${what}: must be more than 0 bytes, got "${s}"`);
  return n;
}
