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
 * Results are bit-identical to one thread: every output value is computed by exactly one thread
 * with the summation order of the one-thread kernel. Ranges start on multiples of 32, so the
 * kernels' register groups (4 rows), q8 tiles and blocks (32), SIMD column groups (8, 16, 32)
 * and the fused FFN's neuron chunks (32) fall where they fall in the one-thread call:
 *
 * - `matmul` (and gate/up): rows split; T = 1 writes straight into out, T > 1 into a per-thread
 *   `[T, n]` block copied into out's columns (the kernels take out's pitch from R).
 * - `matmulTAdd`: columns of out split (each thread still sums over every row, in order).
 * - fused FFN: phase 1 runs the FFN kernel with M = 0 on a range of neurons (silu(gate) * up
 *   into an activation buffer, nothing accumulated), phase 2 is `matmulTAdd` of the down rows
 *   over out's columns: the same per-value sums as the fused one-thread kernel (the test
 *   tests/wasm_threads_test.ts checks every format, dense and masked, T = 1 and T > 1).
 * - `attention`: heads split (T = 1) or tokens split by causal work (T > 1).
 */

import type { WeightDType } from "./backend.ts";

/** Kernels a task may call, by index (the worker resolves them by name). */
export const THREAD_KERNELS = [
  "matmul_f32",
  "matmul_f16",
  "matmul_q8",
  "matmul_t_add_f32",
  "matmul_t_add_f16",
  "matmul_t_add_q8",
  "ffn_f32",
  "ffn_f16",
  "ffn_q8",
  "attention",
] as const;

/** A kernel name of {@link THREAD_KERNELS}. */
export type ThreadKernel = typeof THREAD_KERNELS[number];

/** Control block words (Int32 index from the block start). */
export const CTRL = {
  /** Generation of the posted job (1 .. 2^30 - 1, wrapping); the caller bumps it. */
  SEQ: 0,
  /** Tasks of the posted job. */
  NTASKS: 1,
  /** 1: workers leave their loop and close. */
  STOP: 2,
  /** 1 + index of a worker whose task threw (0: none). */
  ERR: 3,
  /** Workers that have exited their loop (close() checks it). */
  EXITED: 4,
  /**
   * Task i's claim word is CLAIM + 2i (the job's generation g: available; g | TAKEN: claimed)
   * and its done word CLAIM + 2i + 1 (g once a worker has run it).
   */
  CLAIM: 8,
} as const;

/** Claimed bit of a claim word. */
export const TAKEN = 0x40000000;
/** Tasks per thread an op is cut into (the rest of a busy thread's share goes to a free one). */
export const TASKS_PER_THREAD = 2;

/** Bytes of the control block header for `maxTasks` tasks; task records follow. */
export function ctrlHeaderBytes(maxTasks: number): number {
  return Math.ceil(((CTRL.CLAIM + 2 * maxTasks) * 4) / 64) * 64;
}

/** The generation after `g` (never 0, never reaching the TAKEN bit). */
export function nextGeneration(g: number): number {
  return g >= TAKEN - 1 ? 1 : g + 1;
}
/** f64 slots per task record. */
export const TASK_SLOTS = 32;
/** Kernel arguments a task record holds. */
export const TASK_MAX_ARGS = 18;
/** Slot of the copy-in descriptor (src, dst, rows, cols, srcPitch, dstPitch; rows 0 = none). */
export const TASK_COPY_IN = 20;
/** Slot of the copy-out descriptor (same layout). */
export const TASK_COPY_OUT = 26;

/**
 * Threads only cut ops with at least this many multiply-adds (smaller ones run on one): 2^18 is
 * 1 MiB of f32 weights at T = 1, about 70 us of streaming, so that half of it saved outweighs a
 * job's synchronisation (6-15 us round trip on an idle core, tens of us on a busy machine:
 * a 128 x 64 matmul took 16-44 us on one thread and 55-94 us cut, load average 10). On
 * SmolLM2-135M, decode cuts q and the LM head; k and v (110K) stay on one thread.
 */
export const MIN_THREADED_WORK = 1 << 18;
/** Token block of the T > 1 kernels (TOKEN_BLOCK in wasm.ts). */
const TB = 32;
/** Range boundaries are multiples of this (see the module comment). */
const ALIGN_UNITS = 32;
/** Per-thread stack (the module is linked with `-z stack-size=65536`). */
const STACK_BYTES = 65536;
const Q8_BLOCK = 32;
const Q8_BLOCK_BYTES = 36;

/** A strided copy of f32 rows between byte addresses (pitches in floats). */
export interface Copy2D {
  src: number;
  dst: number;
  rows: number;
  cols: number;
  srcPitch: number;
  dstPitch: number;
}

/** One thread's share of an op. */
export interface ThreadTask {
  kernel: ThreadKernel;
  args: number[];
  copyIn?: Copy2D;
  copyOut?: Copy2D;
}

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

/** `[lo, hi)` ranges cutting `n` into at most `parts` pieces whose starts are multiples of `align`. */
export function splitRange(n: number, parts: number, align: number): [number, number][] {
  const step = Math.max(align, Math.ceil(n / parts / align) * align);
  const out: [number, number][] = [];
  for (let lo = 0; lo < n; lo += step) out.push([lo, Math.min(n, lo + step)]);
  return out;
}

/**
 * Token ranges of causal attention with about equal work: token t costs `pos0 + t + 1`
 * positions.
 */
export function splitCausal(T: number, pos0: number, parts: number): [number, number][] {
  const total = T * pos0 + (T * (T + 1)) / 2;
  const out: [number, number][] = [];
  let lo = 0, acc = 0;
  for (let t = 0; t < T && out.length < parts - 1; t++) {
    acc += pos0 + t + 1;
    if (acc >= (total * (out.length + 1)) / parts) {
      out.push([lo, t + 1]);
      lo = t + 1;
    }
  }
  if (lo < T) out.push([lo, T]);
  return out;
}

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

/** Dtype-specific sizes of one matrix row or column offset. */
function elemBytes(dt: WeightDType): number {
  return dt === "f16" ? 2 : 4;
}

/** Byte offset of column (element) `m` of a row, `m` a multiple of 32 for q8. */
function colOffset(dt: WeightDType, m: number): number {
  return dt === "q8" ? (m / Q8_BLOCK) * Q8_BLOCK_BYTES : m * elemBytes(dt);
}

/** Bytes between rows of a view with row stride `ws` (elements; q8: blocks). */
function rowBytes(dt: WeightDType, ws: number): number {
  return dt === "q8" ? ws * Q8_BLOCK_BYTES : ws * elemBytes(dt);
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
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
    for (let i = 0; i < n; i++) {
      const at = i * TASK_SLOTS;
      const t = tasks[i];
      if (t.args.length > TASK_MAX_ARGS) throw new Error("wasm threads: too many kernel args");
      F.fill(0, at, at + TASK_SLOTS);
      F[at] = THREAD_KERNELS.indexOf(t.kernel);
      F[at + 1] = t.args.length;
      for (let j = 0; j < t.args.length; j++) F[at + 2 + j] = t.args[j];
      for (const [slot, c] of [[TASK_COPY_IN, t.copyIn], [TASK_COPY_OUT, t.copyOut]] as const) {
        if (!c) continue;
        F.set([c.src, c.dst, c.rows, c.cols, c.srcPitch, c.dstPitch], at + slot);
      }
    }
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
    if (T * R * K < this.minWork || R <= ALIGN_UNITS) return false;
    const parts = splitRange(R, this.maxTasks, ALIGN_UNITS);
    const n0 = parts[0][1] - parts[0][0];
    const kBytes = dt === "q8" ? T * (K / Q8_BLOCK) * 4 + T * K * 2 : dt === "f16" ? 16 * K : 0;
    const scratchBytes = align64(kBytes);
    const slots = this.#slots(scratchBytes + (T > 1 ? T * n0 * 4 : 0));
    const rb = rowBytes(dt, ws);
    const kernel: ThreadKernel = `matmul_${dt}`;
    this.run(parts.map(([lo, hi], i) => {
      const n = hi - lo;
      const wp = rows ? w : w + lo * rb, rp = rows ? rows + 4 * lo : 0;
      const dst = T === 1 ? out + 4 * lo : slots[i] + scratchBytes;
      const args = [x, T, K, wp, ws, rp, n, dst, TB];
      if (dt !== "f32") args.push(slots[i]);
      const copyOut = T === 1
        ? undefined
        : { src: dst, dst: out + 4 * lo, rows: T, cols: n, srcPitch: n, dstPitch: R };
      return { kernel, args, copyOut };
    }));
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
    if (T * R * M < this.minWork || M <= ALIGN_UNITS) return false;
    if (T === 1 && !this.decodeColumnCuts) return false;
    this.#tAdd(dt, a, T, R, w, ws, rows, M, out);
    return true;
  }

  #tAdd(
    dt: WeightDType,
    a: number,
    T: number,
    R: number,
    w: number,
    ws: number,
    rows: number,
    M: number,
    out: number,
  ): void {
    // Columns in one range per thread: a range is a fragment of every row read, and shorter
    // fragments stream worse (bench/ffn_bench.ts).
    const parts = splitRange(M, this.threads, ALIGN_UNITS);
    const n0 = parts[0][1] - parts[0][0];
    const scratchBytes = align64(dt === "q8" ? 32 * n0 * 4 : dt === "f16" ? 16 * n0 : 0);
    const slots = this.#slots(scratchBytes + (T > 1 ? T * n0 * 4 : 0));
    const kernel: ThreadKernel = `matmul_t_add_${dt}`;
    this.run(parts.map(([lo, hi], i) => {
      const n = hi - lo;
      const wp = w + colOffset(dt, lo);
      const dst = T === 1 ? out + 4 * lo : slots[i] + scratchBytes;
      const args = dt === "q8"
        ? [a, T, R, wp, ws, rows, n, dst, slots[i]]
        : [a, T, R, wp, ws, rows, n, dst, TB];
      if (dt === "f16") args.push(slots[i]);
      if (T === 1) return { kernel, args };
      const col = { rows: T, cols: n };
      return {
        kernel,
        args,
        copyIn: { ...col, src: out + 4 * lo, dst, srcPitch: M, dstPitch: n },
        copyOut: { ...col, src: dst, dst: out + 4 * lo, srcPitch: n, dstPitch: M },
      };
    }));
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
    if (T * R * (2 * K + M) < this.minWork || R <= ALIGN_UNITS || M <= ALIGN_UNITS) {
      return false;
    }
    if (T === 1 && !this.decodeColumnCuts) return false;
    const acts = act || this.#actBuf(T * R);
    const parts = splitRange(R, this.maxTasks, ALIGN_UNITS);
    const n0 = parts[0][1] - parts[0][0];
    // The FFN kernels' scratch with M = 0 (wasm.ts sizes the one-thread call the same way).
    let kBytes: number;
    if (dt === "q8") kBytes = T * (K / Q8_BLOCK) * 4 + T * K * 2 + (T > 1 ? 2 * T * 32 * 4 : 0);
    else if (dt === "f16") kBytes = (T > 1 ? 2 * TB * 32 + 32 * 2 * K : K) * 4;
    else kBytes = T > 1 ? 2 * TB * 32 * 4 : 0;
    const scratchBytes = align64(kBytes);
    const slots = this.#slots(scratchBytes + (T > 1 ? T * n0 * 4 : 0));
    const kernel: ThreadKernel = `ffn_${dt}`;
    const grb = rowBytes(dt, gs), urb = rowBytes(dt, us);
    this.run(parts.map(([lo, hi], i) => {
      const n = hi - lo;
      const gp = rows ? gate : gate + lo * grb, upp = rows ? up : up + lo * urb;
      const rp = rows ? rows + 4 * lo : 0;
      const dst = T === 1 ? acts + 4 * lo : slots[i] + scratchBytes;
      const args = [x, T, K, gp, gs, upp, us, down, ds, 0, rp, n, out, dst, TB, slots[i]];
      const copyOut = T === 1
        ? undefined
        : { src: dst, dst: acts + 4 * lo, rows: T, cols: n, srcPitch: n, dstPitch: R };
      return { kernel, args, copyOut };
    }));
    this.#tAdd(dt, acts, T, R, down, ds, rows, M, out);
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
    const work = S * d * (T * pos0 + (T * (T + 1)) / 2) * 2;
    if (work < this.minWork || (T === 1 && S < 2)) return false;
    const slots = this.#slots(maxT * 4);
    const parts = T === 1 ? splitRange(S, this.maxTasks, 1) : splitCausal(T, pos0, this.maxTasks);
    const row = S * d * 4;
    this.run(parts.map(([lo, hi], i) => ({
      kernel: "attention",
      args: T === 1
        ? [
          q + lo * d * 4,
          1,
          hi - lo,
          d,
          kc,
          vc,
          kvOf + 4 * lo,
          maxT,
          pos0,
          scale,
          out + lo * d * 4,
          slots[i],
        ]
        : [
          q + lo * row,
          hi - lo,
          S,
          d,
          kc,
          vc,
          kvOf,
          maxT,
          pos0 + lo,
          scale,
          out + lo * row,
          slots[i],
        ],
    })));
    return true;
  }

  /** Errors workers reported while starting (empty when all started). */
  get startErrors(): readonly string[] {
    return this.#errors;
  }
}
