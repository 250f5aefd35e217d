/**
 * Resumable calibration (issue 14, "Calibration at any size"): the statistics pass writes its
 * partial statistics every N samples to a checkpoint file (the statistics file format of
 * collect_stats.ts plus how many samples are done and a content key), atomically (a temporary
 * file renamed over the old one), so an interrupted run resumes from the last checkpoint and
 * skips the samples already counted. Statistics are float64 running sums restored exactly,
 * so a resumed run ends with the same bytes as an uninterrupted one. The key is a sha256 over
 * everything the statistics depend on: the model's fingerprint, the backend and weight format,
 * the options and every sample's text in order; a checkpoint written for other inputs is refused.
 */

import type { CalibrationSample } from "./calibration_data.ts";

/** Metadata keys a checkpoint adds to a statistics file. */
export const CHECKPOINT_KEYS = { key: "checkpoint_key", done: "checkpoint_done" } as const;

/** What the statistics of a calibration pass depend on (hashed by {@link statsKey}). */
export interface StatsInputs {
  fingerprint: string;
  backend: string;
  weightDType: string;
  maxTokens: number;
  routerLayer: number;
  groups: Map<string, CalibrationSample[]>;
  routerOnly?: Map<string, CalibrationSample[]>;
}

/** sha256 (hex) of the inputs the statistics depend on. */
export async function statsKey(i: StatsInputs): Promise<string> {
  const rows = (g?: Map<string, CalibrationSample[]>) =>
    [...(g ?? new Map<string, CalibrationSample[]>())].map(([task, s]) => [
      task,
      s.map((x) => [x.text, x.prompt, x.heldOutPhrasing]),
    ]);
  const json = JSON.stringify({
    format: "seap-calibration-stats/1",
    fingerprint: i.fingerprint,
    backend: i.backend,
    weightDType: i.weightDType,
    maxTokens: i.maxTokens,
    routerLayer: i.routerLayer,
    groups: rows(i.groups),
    routerOnly: rows(i.routerOnly),
  });
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(json));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Write `bytes` to `path` atomically: a temporary file next to it, then a rename. */
export async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, path);
}

/** The checkpoint's bytes, or null when there is none. */
export async function readCheckpoint(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Error for a checkpoint that belongs to other inputs. */
export class CheckpointMismatchError extends Error {
  override name = "CheckpointMismatchError";
}

/**
 * Check a checkpoint's key and sample count against this run; returns the samples done.
 * Throws {@link CheckpointMismatchError} naming the file when it was written for other inputs.
 */
export function checkpointDone(
  metadata: Record<string, string>,
  key: string,
  total: number,
  path: string,
): number {
  const k = metadata[CHECKPOINT_KEYS.key];
  const done = Number(metadata[CHECKPOINT_KEYS.done]);
  if (k !== key) {
    throw new CheckpointMismatchError(
      `${path}: a calibration checkpoint for other inputs (key ${String(k).slice(0, 12)}…, this ` +
        `run ${key.slice(0, 12)}…: model, backend, weight format, options or calibration rows ` +
        `differ); delete it to start over`,
    );
  }
  if (!(Number.isInteger(done) && done >= 0 && done <= total)) {
    throw new CheckpointMismatchError(`${path}: bad sample count ${done} (of ${total})`);
  }
  return done;
}
