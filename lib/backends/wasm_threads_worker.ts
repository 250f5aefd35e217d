/**
 * A worker of the WASM backend's thread pool (lib/backends/wasm_threads.ts): instantiates the
 * shared-memory kernels on the pool's memory with a stack of its own, then loops: wait for the
 * control block's generation to move, run this worker's task record, count itself done (the last
 * one wakes the caller). Leaves the loop when the stop word is set.
 */

/// <reference lib="deno.worker" />

import { CTRL, TAKEN, TASK_SLOTS } from "./wasm_threads_control.ts";
import { TaskRunner } from "./wasm_threads_task_runner.ts";

/** The pool's start message. */
interface StartMessage {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Which kernel parameters are i64 (memory64 build), per export. */
  wide: Record<string, boolean[]>;
  /** This worker's thread index (1..threads-1; the caller is 0). */
  index: number;
  threads: number;
  /** Byte address of the control block, and bytes of its header (task records follow). */
  ctrl: number;
  header: number;
  /** Byte address just past this worker's stack block (stacks grow down). */
  stackTop: number;
}

self.onmessage = (e: MessageEvent<StartMessage>) => {
  const { module, memory, wide, index, threads, ctrl, header, stackTop } = e.data;
  let runner: TaskRunner;
  try {
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    const sp = inst.exports.__stack_pointer;
    if (!(sp instanceof WebAssembly.Global)) {
      throw new Error("the kernels do not export __stack_pointer (build.sh wasm32-threads)");
    }
    sp.value = typeof sp.value === "bigint" ? BigInt(stackTop) : stackTop; // i64 on memory64
    runner = new TaskRunner(memory, inst.exports, wide);
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error).message });
    return;
  }
  // The control block never moves, and a shared memory's buffer keeps its bytes when it grows.
  const I = new Int32Array(memory.buffer, ctrl, header / 4);
  // The generation is read before "ready": the pool posts no job until every worker is ready.
  const seen = Atomics.load(I, CTRL.SEQ);
  self.onmessage = null;
  self.postMessage({ type: "ready" });
  loop(I, seen, { ctrl, header, index, threads }, runner);
  self.close();
};

/**
 * Wait for a new generation, then claim and run available tasks (starting at this worker's
 * share, so threads rarely contend for the same one), marking each one done.
 */
function loop(
  I: Int32Array,
  seen: number,
  at: { ctrl: number; header: number; index: number; threads: number },
  runner: TaskRunner,
): void {
  for (;;) {
    Atomics.wait(I, CTRL.SEQ, seen);
    if (Atomics.load(I, CTRL.STOP) !== 0) break;
    const g = Atomics.load(I, CTRL.SEQ);
    if (g === seen) continue; // spurious wake
    seen = g;
    const n = Atomics.load(I, CTRL.NTASKS);
    const first = Math.floor((at.index * n) / at.threads);
    for (let k = 0; k < n; k++) {
      const i = (first + k) % n;
      if (Atomics.compareExchange(I, CTRL.CLAIM + 2 * i, g, g | TAKEN) !== g) continue;
      try {
        runner.run(at.ctrl + at.header + i * TASK_SLOTS * 8);
      } catch (err) {
        console.error(`wasm threads: worker ${at.index}: ${(err as Error).message}`);
        Atomics.compareExchange(I, CTRL.ERR, 0, at.index + 1);
      }
      Atomics.store(I, CTRL.CLAIM + 2 * i + 1, g);
      Atomics.notify(I, CTRL.CLAIM + 2 * i + 1);
    }
  }
  Atomics.add(I, CTRL.EXITED, 1);
  Atomics.notify(I, CTRL.EXITED);
}
