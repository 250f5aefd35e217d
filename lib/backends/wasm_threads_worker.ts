/**
 * A worker of the WASM backend's thread pool (lib/backends/wasm_threads.ts): instantiates the
 * shared-memory kernels on the pool's memory with a stack of its own, then loops: wait for the
 * control block's generation to move, run this worker's task record, count itself done (the last
 * one wakes the caller). Leaves the loop when the stop word is set.
 */

/// <reference lib="deno.worker" />

import { CTRL, CTRL_HEADER_BYTES, TASK_SLOTS, TaskRunner } from "./wasm_threads.ts";

/** The pool's start message. */
interface StartMessage {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** This worker's thread index (1..threads-1; the caller is 0). */
  index: number;
  /** Byte address of the control block. */
  ctrl: number;
  /** Byte address just past this worker's stack block (stacks grow down). */
  stackTop: number;
}

self.onmessage = (e: MessageEvent<StartMessage>) => {
  const { module, memory, index, ctrl, stackTop } = e.data;
  let runner: TaskRunner;
  try {
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    const sp = inst.exports.__stack_pointer;
    if (!(sp instanceof WebAssembly.Global)) {
      throw new Error("the kernels do not export __stack_pointer (build.sh wasm32-threads)");
    }
    sp.value = stackTop;
    runner = new TaskRunner(memory, inst.exports);
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error).message });
    return;
  }
  // The control block never moves, and a shared memory's buffer keeps its bytes when it grows.
  const I = new Int32Array(memory.buffer, ctrl, CTRL_HEADER_BYTES / 4);
  // The generation is read before "ready": the pool posts no job until every worker is ready.
  const seq = Atomics.load(I, CTRL.SEQ);
  self.onmessage = null;
  self.postMessage({ type: "ready" });
  loop(I, seq, ctrl, index, runner);
  self.close();
};

function loop(I: Int32Array, seq: number, ctrl: number, index: number, runner: TaskRunner): void {
  const rec = ctrl + CTRL_HEADER_BYTES + index * TASK_SLOTS * 8;
  for (;;) {
    Atomics.wait(I, CTRL.SEQ, seq);
    const now = Atomics.load(I, CTRL.SEQ);
    if (now === seq) continue; // spurious wake
    seq = now;
    if (Atomics.load(I, CTRL.STOP) !== 0) break;
    try {
      runner.run(rec);
    } catch (err) {
      console.error(`wasm threads: worker ${index}: ${(err as Error).message}`);
      Atomics.compareExchange(I, CTRL.ERR, 0, index + 1);
    }
    if (Atomics.sub(I, CTRL.LEFT, 1) === 1) Atomics.notify(I, CTRL.LEFT);
  }
  Atomics.add(I, CTRL.EXITED, 1);
}
