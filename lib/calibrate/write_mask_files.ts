/**
 * A calibration run's mask files in its output folder: each built mask written as
 * `<name>.safetensors` with its metadata and manifest entry (validation result included), and
 * the files of a previous run's manifest that the new one no longer lists removed.
 */

import {
  encodeMask,
  type Manifest,
  type ManifestMask,
  type ModelIdentity,
  writeListedFile,
} from "../masks/mask_io.ts";
import { type BuiltMask, sparsityTag } from "./mask_methods.ts";
import type { TaskValidation } from "./validate_masks.ts";

/** A mask's manifest entry with the mask it was written from. */
export type WrittenMask = ManifestMask & { built: BuiltMask };

/**
 * Write every mask of `built` into `outDir` (metadata bound to `model`'s fingerprint; a SEAP
 * task mask carries its held-out comparison from `validation`); returns their manifest entries
 * in the same order.
 */
export async function writeMaskFiles(
  outDir: string,
  built: BuiltMask[],
  validation: TaskValidation[],
  model: ModelIdentity,
): Promise<WrittenMask[]> {
  const fp = model.fingerprint;
  const entries: WrittenMask[] = [];
  for (const b of built) {
    const achieved = b.cost.params;
    const cost = {
      params: b.cost.params,
      bytesPerToken: b.cost.bytesPerToken,
      flopsPerToken: b.cost.flopsPerToken,
      context: b.cost.context,
    };
    const v = b.method === "seap" && b.task
      ? validation.find((x) =>
        x.task === b.task && sparsityTag(x.share) === sparsityTag(b.sparsity)
      )
      : undefined;
    const vEntry = v
      ? {
        heldOutSamples: v.samples,
        heldOutTokens: v.tokens,
        metric: "held-out answers reproduced by greedy choice (accuracy, correct), then mean " +
          "NLL per answer token (nats)",
        own: v.own,
        generic: v.generic,
        blends: v.blends,
        choice: v.choice,
        genericWeight: v.genericWeight,
        raw: `${b.task}.raw@${sparsityTag(b.sparsity)}`,
      }
      : undefined;
    const meta = {
      fingerprint: fp,
      model: model.name,
      method: b.method,
      task: b.task ?? "",
      sparsity: b.sparsity,
      achieved,
      cost,
      nominal: b.nominal,
      schedule: b.schedule,
      params: b.params,
    };
    const f = await writeListedFile(
      outDir,
      `${b.mask.name}.safetensors`,
      encodeMask(b.mask, meta),
    );
    entries.push({
      ...f,
      name: b.mask.name,
      method: b.method,
      task: b.task,
      sparsity: b.sparsity,
      achieved,
      cost,
      nominal: b.nominal,
      ...(vEntry ? { validation: vEntry } : {}),
      params: b.params,
      built: b,
    });
  }
  return entries;
}

/** Files that the manifest already in `outDir` lists (none when there is no manifest). */
export async function listedFiles(outDir: string): Promise<string[]> {
  try {
    const old = JSON.parse(await Deno.readTextFile(`${outDir}/manifest.json`)) as Manifest;
    return [...old.masks.map((m) => m.file), old.router?.file, old.stats?.file].filter(
      (f): f is string => typeof f === "string" && !f.includes("/"),
    );
  } catch { /* no previous manifest */ }
  return [];
}

/** Remove each of `oldFiles` from `outDir` that `keep` does not hold (missing ones ignored). */
export async function removeUnlisted(
  outDir: string,
  oldFiles: string[],
  keep: Set<string>,
): Promise<void> {
  for (const f of oldFiles) {
    if (!keep.has(f)) await Deno.remove(`${outDir}/${f}`).catch(() => {});
  }
}
