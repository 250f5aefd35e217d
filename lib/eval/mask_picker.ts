/**
 * How an evaluation chooses a row's mask (one fixed mask, the row's task's own mask, or the
 * router's choice as the server makes it) and how it starts a sequence under that choice.
 */

import type { Model } from "../model/model.ts";
import type { PreparedMask } from "../model/prepared_mask.ts";
import { Sequence } from "../model/sequence.ts";

/** How a row's mask is chosen. */
export type MaskPicker =
  | { kind: "fixed"; mask: PreparedMask | null }
  | { kind: "per-task"; masks: Map<string, PreparedMask>; fallback: PreparedMask | null }
  | {
    kind: "routed";
    /** Protected layers the router reads after. */
    layer: number;
    /** Mask for a router feature `[H]`. */
    choose(feature: Float32Array): PreparedMask | null;
  };

/** The router feature `[H]` of a prompt: mean hidden state after `layer` layers (dense). */
export async function routeFeature(
  model: Model,
  ids: Int32Array,
  layer: number,
): Promise<Float32Array> {
  const s = new Sequence(model, { maxTokens: ids.length + 1 });
  try {
    return await s.prefillHead(ids, layer);
  } finally {
    s.free();
  }
}

/** The mask `pick` gives a row of `task` whose prompt is `ids` (routed: runs the router). */
export async function maskFor(
  model: Model,
  pick: MaskPicker,
  task: string,
  ids: Int32Array,
): Promise<PreparedMask | null> {
  if (pick.kind === "fixed") return pick.mask;
  if (pick.kind === "per-task") return pick.masks.get(task) ?? pick.fallback;
  return pick.choose(await routeFeature(model, ids, pick.layer));
}

/**
 * A sequence of capacity `maxTokens` with `ids` prefilled under the mask `pick` gives; returns
 * the last token's logits `[V]`. Routed picks use the server's path: dense head layers, the
 * router's mask chosen on their output, then the tail (no second pass over the head layers
 * unless the chosen mask prunes them).
 */
export async function startSequence(
  model: Model,
  pick: MaskPicker,
  task: string,
  ids: Int32Array,
  maxTokens: number,
): Promise<{ seq: Sequence; logits: Float32Array }> {
  const seq = new Sequence(model, { maxTokens });
  try {
    if (pick.kind === "routed") {
      const feat = await seq.prefillHead(ids, pick.layer);
      seq.setMask(pick.choose(feat));
      return { seq, logits: await seq.prefillTail() };
    }
    seq.setMask(await maskFor(model, pick, task, ids));
    return { seq, logits: await seq.prefill(ids) };
  } catch (e) {
    seq.free();
    throw e;
  }
}
