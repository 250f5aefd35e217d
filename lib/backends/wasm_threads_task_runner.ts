/**
 * Runs one task record of the WASM thread pool's control block (lib/backends/
 * wasm_threads_control.ts): the copy-in, the kernel call, the copy-out. The calling thread
 * (lib/backends/wasm_threads.ts) and every worker (lib/backends/wasm_threads_worker.ts) run
 * tasks with it, each on its own instance of the shared-memory kernels.
 *
 * Part of the worker's module graph: imports only the control block (see there).
 */

import { TASK_COPY_IN, TASK_COPY_OUT, THREAD_KERNELS } from "./wasm_threads_control.ts";

/** Runs one task on the calling thread (the same code runs in every worker). */
export class TaskRunner {
  #mem: WebAssembly.Memory;
  #fns: ((...a: number[]) => void)[];
  #f32: Float32Array | null = null;
  #f64: Float64Array | null = null;
  #len = -1;

  /**
   * `exports` are the kernels' exports of this thread's instance; `wide[name][i]` is true where
   * parameter i is an i64 (passed as a BigInt).
   */
  constructor(
    mem: WebAssembly.Memory,
    exports: WebAssembly.Exports,
    wide: Record<string, boolean[]>,
  ) {
    this.#mem = mem;
    this.#fns = THREAD_KERNELS.map((n) => {
      const f = exports[n];
      if (typeof f !== "function") throw new Error(`wasm threads: kernel ${n} is not exported`);
      const w = wide[n] ?? [];
      if (!w.some((x) => x)) return f as (...a: number[]) => void;
      const g = f as (...a: (number | bigint)[]) => void;
      return (...a: number[]) => g(...a.map((v, i) => (w[i] ? BigInt(v) : v)));
    });
  }

  #views(): void {
    const buf = this.#mem.buffer;
    if (buf.byteLength !== this.#len) {
      this.#len = buf.byteLength;
      this.#f32 = new Float32Array(buf);
      this.#f64 = new Float64Array(buf);
    }
  }

  #copy(F: Float64Array, at: number): void {
    const rows = F[at + 2];
    if (rows === 0) return;
    const src = F[at] / 4, dst = F[at + 1] / 4, cols = F[at + 3];
    const sp = F[at + 4], dp = F[at + 5];
    const f = this.#f32!;
    for (let r = 0; r < rows; r++) f.copyWithin(dst + r * dp, src + r * sp, src + r * sp + cols);
  }

  /** Run the task record at byte address `rec` (a no-op record has kernel -1). */
  run(rec: number): void {
    this.#views();
    const F = this.#f64!;
    const at = rec / 8;
    const k = F[at];
    if (k < 0) return;
    this.#copy(F, at + TASK_COPY_IN);
    const n = F[at + 1];
    const args = new Array<number>(n);
    for (let i = 0; i < n; i++) args[i] = F[at + 2 + i];
    this.#fns[k](...args);
    this.#views(); // a kernel cannot grow memory, but stay safe
    this.#copy(F, at + TASK_COPY_OUT);
  }
}
