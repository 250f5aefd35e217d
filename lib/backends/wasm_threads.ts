/**
 * Worker threads for the WASM backend (opt in: `SEAP_THREADS` > 1, `WasmBackend.create({threads})`).
 *
 * The backend's memory is a shared `WebAssembly.Memory`; every worker instantiates the same
 * kernels (`kernels/wasm/seap_kernels_mt.wasm`, linked for shared memory) on it with a stack of
 * its own (`__stack_pointer` set to a block from the backend's allocator). An op is cut into one
 * task per thread (the calling thread runs task 0 itself): a task is a kernel call on a range of
 * the output plus optional strided copies (lib/backends/wasm_threads_worker.ts runs them).
 *
 * Synchronisation costs no `postMessage`: an op is cut into about {@link TASKS_PER_THREAD} tasks
 * per thread, written into a control block in the shared memory; the caller marks each task
 * available with the job's generation, bumps the generation word and `Atomics.notify`s. Every
 * thread (the caller first) claims available tasks with a compare-and-swap and runs them, and a
 * worker marks each task it ran done. The caller only waits (`Atomics.wait`) for tasks a worker
 * has claimed: a worker that the OS has not scheduled yet (a busy machine) claims nothing, and
 * the caller runs its share instead of waiting for it. No spinning: with more runnable threads
 * than cores, a spinning thread steals the time of the one it waits for (measured: 6-15 us per
 * round trip without spin, 30-500 us with).
 *
 * How ops are cut into tasks, and which are worth it: lib/backends/wasm_threads_cuts.ts; the
 * control block's layout: lib/backends/wasm_threads_control.ts.
 */

import type { WeightDType } from "./backend.ts";
import {
  CTRL,
  ctrlHeaderBytes,
  nextGeneration,
  TAKEN,
  TASK_SLOTS,
  TASKS_PER_THREAD,
  type ThreadTask,
  writeTaskRecords,
} from "./wasm_threads_control.ts";
import {
  align64,
  attentionTasks,
  type CutContext,
  cutsAttention,
  cutsFfn,
  cutsMatmul,
  cutsMatmulTAdd,
  ffnNeuronTasks,
  matmulTAddTasks,
  matmulTasks,
  MIN_THREADED_WORK,
} from "./wasm_threads_cuts.ts";
import { TaskRunner } from "./wasm_threads_task_runner.ts";

/** Per-thread stack (the module is linked with `-z stack-size=65536`). */
const STACK_BYTES = 65536;

/**
 * What the pool needs from the backend: the shared memory, the kernels linked for it, which
 * kernel parameters are i64 (the memory64 build's pointers: `i64Params` of
 * lib/backends/wasm_memory.ts; passed as BigInt), and its allocator (64-byte aligned blocks).
 */
export interface PoolMemory {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  wide: Record<string, boolean[]>;
  alloc(bytes: number): { ptr: number; size: number };
  free(ptr: number, size: number): void;
}

/**
 * A pool of `threads - 1` workers plus the calling thread over one shared memory. Create with
 * {@link ThreadPool.create}; {@link ThreadPool.close} wakes and terminates the workers (a worker
 * blocked in `Atomics.wait` would otherwise keep the process alive).
 */
export class ThreadPool {
  /** Threads including the caller. */
  readonly threads: number;
  #m: PoolMemory;
  #workers: Worker[];
  #runner: TaskRunner;
  #ctrl: { ptr: number; size: number };
  /** Most tasks a job has; header bytes of the control block. */
  readonly maxTasks: number;
  #header: number;
  #gen = 0;
  #stacks: { ptr: number; size: number }[];
  #slot = { ptr: 0, size: 0, each: 0 };
  #act = { ptr: 0, size: 0 };
  #closed = false;
  #errors: string[] = [];
  /** What cutting an op needs of the pool: its size and its scratch. */
  #cuts: CutContext;
  /** Jobs the pool ran (cut ops; for tests and metrics). */
  jobs = 0;
  /** Jobs of which a worker ran at least one task. */
  sharedJobs = 0;
  /** Milliseconds the caller spent waiting for workers' tasks (a busy machine shows here). */
  waitMs = 0;
  /** Ops with fewer multiply-adds run on one thread (tests set 0 to cut every op they can). */
  minWork = MIN_THREADED_WORK;
  /**
   * For tests: the caller claims only its own share of a job's tasks (the first
   * 1/threads of them) and waits for the workers to run the rest, so that every job exercises
   * them. Default false: the caller also runs whatever no worker has claimed yet.
   */
  waitForWorkers = false;
  /**
   * Whether decode (T = 1) cuts `matmulTAdd` and the fused FFN too (default false). Their cuts
   * read every weight row in column pieces (down^T halves of 1.1 KB of each 6.9 KB neuron
   * bundle, gate/up without their down part; o-projection rows in halves). On SmolLM2-135M's
   * shapes one thread running the cut pieces back to back takes 2.0-2.7x the uncut time
   * (bench/thread_cut_bench.ts), so two threads could at best tie: decode leaves them on one
   * thread. Prefill (T > 1) is compute-bound and cuts them. Tests set it to check those cuts at
   * T = 1 as well.
   */
  decodeColumnCuts = false;

  private constructor(
    m: PoolMemory,
    threads: number,
    workers: Worker[],
    runner: TaskRunner,
    ctrl: { ptr: number; size: number },
    stacks: { ptr: number; size: number }[],
  ) {
    this.#m = m;
    this.threads = threads;
    this.#workers = workers;
    this.#runner = runner;
    this.#ctrl = ctrl;
    this.#stacks = stacks;
    this.maxTasks = threads * TASKS_PER_THREAD;
    this.#header = ctrlHeaderBytes(this.maxTasks);
    this.#cuts = {
      threads,
      maxTasks: this.maxTasks,
      slots: (bytes) => this.#slots(bytes),
    };
  }

  /**
   * Start `threads - 1` workers on `m.memory` (shared) with instances of `m.module`; `main` is
   * the calling thread's instance.
   */
  static async create(
    m: PoolMemory,
    main: WebAssembly.Instance,
    threads: number,
  ): Promise<ThreadPool> {
    if (!(Number.isInteger(threads) && threads >= 2 && threads <= 256)) {
      throw new RangeError(`wasm threads: expected 2..256 threads, got ${threads}`);
    }
    const nw = threads - 1;
    const maxTasks = threads * TASKS_PER_THREAD;
    const header = ctrlHeaderBytes(maxTasks);
    const ctrl = m.alloc(header + maxTasks * TASK_SLOTS * 8);
    const stacks: { ptr: number; size: number }[] = [];
    const workers: Worker[] = [];
    const errors: string[] = [];
    try {
      for (let i = 0; i < nw; i++) stacks.push(m.alloc(STACK_BYTES));
      const ready: Promise<void>[] = [];
      for (let i = 0; i < nw; i++) {
        const w = new Worker(new URL("./wasm_threads_worker.ts", import.meta.url), {
          type: "module",
        });
        workers.push(w);
        ready.push(
          new Promise<void>((res, rej) => {
            w.onmessage = (e: MessageEvent) => {
              if (e.data?.type === "ready") res();
              else if (e.data?.type === "error") {
                errors.push(String(e.data.message));
                rej(new Error(`wasm threads: worker ${i + 1}: ${e.data.message}`));
              }
            };
            w.onerror = (e: ErrorEvent) => {
              e.preventDefault();
              errors.push(e.message);
              rej(new Error(`wasm threads: worker ${i + 1}: ${e.message}`));
            };
          }),
        );
        w.postMessage({
          module: m.module,
          memory: m.memory,
          wide: m.wide,
          index: i + 1,
          threads,
          ctrl: ctrl.ptr,
          header,
          stackTop: stacks[i].ptr + stacks[i].size,
        });
      }
      await Promise.all(ready);
    } catch (e) {
      ThreadPool.#stopWorkers(m.memory, ctrl.ptr, workers);
      for (const s of stacks) m.free(s.ptr, s.size);
      m.free(ctrl.ptr, ctrl.size);
      throw e;
    }
    const pool = new ThreadPool(
      m,
      threads,
      workers,
      new TaskRunner(m.memory, main.exports, m.wide),
      ctrl,
      stacks,
    );
    pool.#errors = errors;
    return pool;
  }

  static #stopWorkers(mem: WebAssembly.Memory, ctrl: number, workers: Worker[]): void {
    const I = new Int32Array(mem.buffer, ctrl, CTRL.CLAIM);
    Atomics.store(I, CTRL.STOP, 1);
    Atomics.add(I, CTRL.SEQ, 1);
    Atomics.notify(I, CTRL.SEQ);
    for (const w of workers) w.terminate();
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Wake every worker out of its wait, let it leave its loop, and terminate it; frees the
   * pool's blocks. Synchronous (the caller blocks until every worker has left its loop, at most
   * 1 s), so it may run at the end of a test or in an exit path. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const I = this.#ctrlView();
    Atomics.store(I, CTRL.STOP, 1);
    Atomics.add(I, CTRL.SEQ, 1);
    Atomics.notify(I, CTRL.SEQ);
    const deadline = performance.now() + 1000;
    for (let v = Atomics.load(I, CTRL.EXITED); v < this.#workers.length;) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(I, CTRL.EXITED, v, left);
      v = Atomics.load(I, CTRL.EXITED);
    }
    for (const w of this.#workers) w.terminate();
    for (const s of this.#stacks) this.#m.free(s.ptr, s.size);
    if (this.#slot.size > 0) this.#m.free(this.#slot.ptr, this.#slot.size);
    if (this.#act.size > 0) this.#m.free(this.#act.ptr, this.#act.size);
    this.#m.free(this.#ctrl.ptr, this.#ctrl.size);
  }

  /** Workers that have left their loop (all of them after {@link close}). */
  get exitedWorkers(): number {
    return Atomics.load(this.#ctrlView(), CTRL.EXITED);
  }

  #ctrlView(): Int32Array {
    return new Int32Array(this.#m.memory.buffer, this.#ctrl.ptr, this.#header / 4);
  }

  /** Per-task scratch of at least `bytes` each; returns slot addresses. */
  #slots(bytes: number): number[] {
    const each = align64(Math.max(64, bytes));
    if (each > this.#slot.each) {
      if (this.#slot.size > 0) this.#m.free(this.#slot.ptr, this.#slot.size);
      this.#slot = { ptr: 0, size: 0, each: 0 };
      const a = this.#m.alloc(each * this.maxTasks);
      this.#slot = { ptr: a.ptr, size: a.size, each };
    }
    const e = this.#slot.each;
    return Array.from({ length: this.maxTasks }, (_, i) => this.#slot.ptr + i * e);
  }

  /** A pool-owned f32 buffer of `floats` values (the FFN's activations when none is given). */
  #actBuf(floats: number): number {
    if (floats * 4 > this.#act.size) {
      if (this.#act.size > 0) this.#m.free(this.#act.ptr, this.#act.size);
      this.#act = { ptr: 0, size: 0 };
      this.#act = this.#m.alloc(floats * 4);
    }
    return this.#act.ptr;
  }

  /**
   * Run `tasks` (at most {@link maxTasks}) on the caller and whichever workers are free, and
   * wait for those a worker claimed.
   */
  run(tasks: ThreadTask[]): void {
    if (this.#closed) throw new Error("wasm threads: the pool is closed");
    const n = tasks.length;
    if (n > this.maxTasks) throw new Error("wasm threads: more tasks than the pool holds");
    const buf = this.#m.memory.buffer;
    const base = this.#ctrl.ptr + this.#header;
    const F = new Float64Array(buf, base, n * TASK_SLOTS);
    writeTaskRecords(F, tasks);
    const I = new Int32Array(buf, this.#ctrl.ptr, this.#header / 4);
    const g = this.#gen = nextGeneration(this.#gen);
    Atomics.store(I, CTRL.NTASKS, n);
    for (let i = 0; i < n; i++) Atomics.store(I, CTRL.CLAIM + 2 * i, g);
    Atomics.store(I, CTRL.SEQ, g);
    Atomics.notify(I, CTRL.SEQ);
    let err: unknown = null;
    const mine: boolean[] = [];
    const share = this.waitForWorkers ? Math.ceil(n / this.threads) : n;
    for (let i = 0; i < n; i++) {
      mine.push(i < share && Atomics.compareExchange(I, CTRL.CLAIM + 2 * i, g, g | TAKEN) === g);
      if (!mine[i] || err) continue;
      try {
        this.#runner.run(base + i * TASK_SLOTS * 8);
      } catch (e) {
        err = e;
      }
    }
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (mine[i]) continue;
      const w = CTRL.CLAIM + 2 * i + 1;
      for (let v = Atomics.load(I, w); v !== g; v = Atomics.load(I, w)) Atomics.wait(I, w, v);
    }
    this.waitMs += performance.now() - t0;
    this.jobs++;
    if (mine.some((m) => !m)) this.sharedJobs++;
    if (err) throw err;
    const bad = Atomics.load(I, CTRL.ERR);
    if (bad !== 0) {
      Atomics.store(I, CTRL.ERR, 0);
      throw new Error(`wasm threads: worker ${bad - 1} failed a task`);
    }
  }

  /**
   * Row-gathered matmul cut by rows (kernel arguments as in wasm.ts; `ws` is the row stride in
   * elements, or blocks for q8). Returns false when the op is too small to cut (run it on one).
   */
  matmul(
    dt: WeightDType,
    x: number,
    T: number,
    K: number,
    w: number,
    ws: number,
    rows: number,
    R: number,
    out: number,
  ): boolean {
    if (!cutsMatmul(this, T, K, R)) return false;
    this.run(matmulTasks(this.#cuts, dt, x, T, K, w, ws, rows, R, out));
    return true;
  }

  /**
   * `out[t, :] += sum_i a[t, i] * w[rows[i], :]` cut by out's columns. Returns false when too
   * small to cut.
   */
  matmulTAdd(
    dt: WeightDType,
    a: number,
    T: number,
    R: number,
    w: number,
    ws: number,
    rows: number,
    M: number,
    out: number,
  ): boolean {
    if (!cutsMatmulTAdd(this, T, R, M)) return false;
    this.run(matmulTAddTasks(this.#cuts, dt, a, T, R, w, ws, rows, M, out));
    return true;
  }

  /**
   * Fused SwiGLU FFN in two cut phases (neurons, then out's columns); `gs`/`us`/`ds` are row
   * strides (elements, or blocks for q8) and `act` 0 when the caller wants no activations.
   * Returns false when too small to cut.
   */
  ffn(
    dt: WeightDType,
    x: number,
    T: number,
    K: number,
    gate: number,
    gs: number,
    up: number,
    us: number,
    down: number,
    ds: number,
    M: number,
    rows: number,
    R: number,
    out: number,
    act: number,
  ): boolean {
    if (!cutsFfn(this, T, K, R, M)) return false;
    const acts = act || this.#actBuf(T * R);
    this.run(
      ffnNeuronTasks(this.#cuts, dt, x, T, K, gate, gs, up, us, down, ds, rows, R, out, acts),
    );
    this.run(matmulTAddTasks(this.#cuts, dt, acts, T, R, down, ds, rows, M, out));
    return true;
  }

  /**
   * Causal attention cut by query heads (T = 1) or by tokens of equal causal work (T > 1).
   * Returns false when too small to cut.
   */
  attention(
    q: number,
    T: number,
    S: number,
    d: number,
    kc: number,
    vc: number,
    kvOf: number,
    maxT: number,
    pos0: number,
    scale: number,
    out: number,
  ): boolean {
    if (!cutsAttention(this, T, S, d, pos0)) return false;
    this.run(attentionTasks(this.#cuts, q, T, S, d, kc, vc, kvOf, maxT, pos0, scale, out));
    return true;
  }

  /** Errors workers reported while starting (empty when all started). */
  get startErrors(): readonly string[] {
    return this.#errors;
  }
}
