/**
 * The WASM thread pool's control block: the layout of the words and task records the caller and
 * the workers share in the backend's `WebAssembly.Memory`, and the generation counter that
 * marks a job (lib/backends/wasm_threads.ts posts jobs, lib/backends/wasm_threads_worker.ts
 * runs them).
 *
 * The block is a header of Int32 words ({@link CTRL}; one claim word and one done word per task)
 * followed by one record of {@link TASK_SLOTS} f64 slots per task: slot 0 the kernel's index in
 * {@link THREAD_KERNELS} (-1: no-op), slot 1 the argument count, slots 2.. the arguments, then
 * the copy-in and copy-out descriptors ({@link TASK_COPY_IN}, {@link TASK_COPY_OUT}).
 *
 * Kept free of imports: it is part of the worker's module graph, which the server's narrow
 * read permissions list file by file (lib/server/permissions.ts).
 */

/** Kernels a task may call, by index (the worker resolves them by name). */
export const THREAD_KERNELS = [
  "matmul_f32",
  "matmul_f16",
  "matmul_q8",
  "matmul_t_add_f32",
  "matmul_t_add_f16",
  "matmul_t_add_f16_tiled",
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
 * Write `tasks` as records into `F` (the f64 view of the control block's task records, at
 * least `tasks.length * TASK_SLOTS` long). Throws on a task with more than
 * {@link TASK_MAX_ARGS} arguments.
 */
export function writeTaskRecords(F: Float64Array, tasks: ThreadTask[]): void {
  for (let i = 0; i < tasks.length; i++) {
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
}
