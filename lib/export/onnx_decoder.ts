/**
 * Runs an exported ONNX decoder (see onnx_export.ts) with onnxruntime-web: prefill, then
 * token-by-token decode feeding the present KV back as the past. Used to check the export
 * against the engine and as the dense peer in benchmarks.
 */

import * as ort from "onnxruntime-web";
import type { OnnxExport } from "./onnx_export.ts";

/** One onnxruntime-web session over an exported decoder, holding one sequence's KV cache. */
export class OnnxDecoder {
  #session: ort.InferenceSession;
  #exp: OnnxExport;
  #past = new Map<string, ort.Tensor>();
  #length = 0;

  private constructor(session: ort.InferenceSession, exp: OnnxExport) {
    this.#session = session;
    this.#exp = exp;
    this.reset();
  }

  /** Create a session (wasm execution provider, single thread by default). */
  static async create(exp: OnnxExport, threads = 1): Promise<OnnxDecoder> {
    ort.env.wasm.numThreads = threads;
    const s = await ort.InferenceSession.create(exp.bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    return new OnnxDecoder(s, exp);
  }

  /** Forget the sequence. */
  reset(): void {
    const d = this.#exp.config.headDim;
    this.#past.clear();
    for (const { layer, kvHeads } of this.#exp.cacheLayers) {
      for (const kind of ["key", "value"]) {
        this.#past.set(
          `past_key_values.${layer}.${kind}`,
          new ort.Tensor("float32", new Float32Array(0), [1, kvHeads, 0, d]),
        );
      }
    }
    this.#length = 0;
  }

  /** Feed tokens; returns logits of every fed position `[T * V]`. */
  async forward(ids: ArrayLike<number>): Promise<Float32Array> {
    const T = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(Array.from(ids, BigInt)), [1, T]),
      attention_mask: new ort.Tensor(
        "int64",
        new BigInt64Array(this.#length + T).fill(1n),
        [1, this.#length + T],
      ),
      position_ids: new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: T }, (_, i) => BigInt(this.#length + i)),
        [1, T],
      ),
    };
    for (const [k, v] of this.#past) feeds[k] = v;
    const out = await this.#session.run(feeds);
    for (const k of this.#past.keys()) {
      this.#past.set(k, out[k.replace("past_key_values.", "present.")]);
    }
    this.#length += T;
    return out.logits.data as Float32Array;
  }

  /** Release the session. */
  async release(): Promise<void> {
    await this.#session.release();
  }
}
