/**
 * Masks and router on disk: one safetensors file per mask (kept indices + bias vectors,
 * metadata naming the method and its parameters), `router.safetensors`, and `manifest.json`
 * binding every file to the exact model (fingerprint, sizes) with a sha256 and byte size per
 * file. {@link loadMaskSet} refuses anything that does not match, saying which check failed
 * ({@link MaskModelMismatchError} for another model's masks, {@link MaskSetError} otherwise).
 * Written by calibration, read by the server, evaluation, export and benchmarks.
 */

import { type Mask, MaskError, validateMask } from "../model/mask.ts";
import type { ModelConfig } from "../model/config.ts";
import { MaskModelMismatchError, MaskSetError } from "./errors.ts";
import type { Router } from "./router.ts";
import { decodeTensors, encodeTensors, need, type TensorEntry } from "./tensor_file.ts";

/** What the loader needs to know about the model the masks are for. */
export interface ModelIdentity {
  /** Short name, e.g. the folder name. */
  name: string;
  /** sha256 hex over config.json + weights. */
  fingerprint: string;
  config: ModelConfig;
}

/** Manifest format tag. */
export const MANIFEST_FORMAT = "seap-masks/1";

/** One file listed in the manifest. */
export interface ManifestFile {
  file: string;
  sha256: string;
  bytes: number;
}

/** A mask entry of the manifest. */
export interface ManifestMask extends ManifestFile {
  /** e.g. "reverse@0.5", "generic@0.2", "wanda-sp@0.2", "flap@0.5". */
  name: string;
  /** "seap" | "seap-task-raw" | "seap-generic" | "wanda-sp" | "flap". */
  method: string;
  /** Task for task masks (validated and raw), null otherwise. */
  task: string | null;
  /** Requested share of decoder-layer parameters removed (the number in the name). */
  sparsity: number;
  /** Achieved share of decoder-layer parameters removed (= cost.params). */
  achieved: number;
  /**
   * What the mask removes as shares of the dense model (lib/model/mask.ts `maskCost`):
   * decoder-layer parameters, weight bytes read per decoded token, FLOPs per decoded token.
   */
  cost?: { params: number; bytesPerToken: number; flopsPerToken: number; context: number };
  /** The method's knob that achieved the share (UL-LD target G, UL-UM ratio, AL-AM share). */
  nominal?: number;
  /** For validated task masks: the held-out comparison and the choice made. */
  validation?: Record<string, unknown>;
  params: Record<string, unknown>;
}

/** manifest.json */
export interface Manifest {
  format: string;
  model: {
    name: string;
    fingerprint: string;
    numLayers: number;
    hiddenSize: number;
    intermediateSize: number;
    numHeads: number;
    headDim: number;
  };
  created: string;
  masks: ManifestMask[];
  router:
    | (ManifestFile & {
      tasks: string[];
      layer: number;
      threshold: number;
      /** The OOD test and its P(other) threshold; absent for routers without one. */
      ood?: { method: string; threshold: number; [k: string]: unknown };
    })
    | null;
  stats: ManifestFile | null;
  /** Free-form calibration parameters (score, structure, ...). */
  params: Record<string, unknown>;
}

/** sha256 hex of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A mask as safetensors bytes; `meta` lands in the file's metadata (values JSON-encoded). */
export function encodeMask(mask: Mask, meta: Record<string, unknown>): Uint8Array {
  const t: Record<string, TensorEntry> = {};
  mask.layers.forEach((lm, l) => {
    t[`layers.${l}.neurons`] = { dtype: "I32", shape: [lm.neurons.length], data: lm.neurons };
    t[`layers.${l}.heads`] = { dtype: "I32", shape: [lm.heads.length], data: lm.heads };
    if (lm.biasAttn) {
      t[`layers.${l}.bias_attn`] = { dtype: "F32", shape: [lm.biasAttn.length], data: lm.biasAttn };
    }
    if (lm.biasFfn) {
      t[`layers.${l}.bias_ffn`] = { dtype: "F32", shape: [lm.biasFfn.length], data: lm.biasFfn };
    }
  });
  const md: Record<string, string> = {
    format: MANIFEST_FORMAT,
    name: mask.name,
    num_layers: String(mask.layers.length),
  };
  for (const [k, v] of Object.entries(meta)) md[k] = typeof v === "string" ? v : JSON.stringify(v);
  return encodeTensors(t, md);
}

/** Parse mask bytes back into a {@link Mask} plus its metadata. */
export function decodeMask(
  bytes: Uint8Array,
  what = "mask file",
): { mask: Mask; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeTensors(bytes, what);
  const L = Number(metadata.num_layers);
  if (!Number.isInteger(L) || L <= 0) throw new MaskSetError(`${what}: metadata lacks num_layers`);
  const layers = Array.from({ length: L }, (_, l) => ({
    neurons: need(tensors, `layers.${l}.neurons`, what).data as Int32Array,
    heads: need(tensors, `layers.${l}.heads`, what).data as Int32Array,
    biasAttn: (tensors.get(`layers.${l}.bias_attn`)?.data ?? null) as Float32Array | null,
    biasFfn: (tensors.get(`layers.${l}.bias_ffn`)?.data ?? null) as Float32Array | null,
  }));
  return { mask: { name: metadata.name ?? "?", layers }, metadata };
}

/** The router as safetensors bytes. */
export function encodeRouter(r: Router, meta: Record<string, unknown> = {}): Uint8Array {
  const H = r.mean.length;
  const C = r.tasks.length;
  const md: Record<string, string> = {
    format: MANIFEST_FORMAT,
    kind: "router",
    tasks: JSON.stringify(r.tasks),
    layer: String(r.layer),
    threshold: String(r.threshold),
  };
  const t: Record<string, TensorEntry> = {
    mean: { dtype: "F32", shape: [H], data: r.mean },
    std: { dtype: "F32", shape: [H], data: r.std },
    weight: { dtype: "F32", shape: [C, H], data: r.weight },
    bias: { dtype: "F32", shape: [C], data: r.bias },
  };
  if (r.ood) {
    // The OOD test: the "other" class's weights [H] and bias, and its P(other) threshold.
    md.ood_method = "other-class";
    md.ood_threshold = String(r.ood.threshold);
    t.ood_weight = { dtype: "F32", shape: [H], data: r.ood.weight };
    t.ood_bias = { dtype: "F32", shape: [1], data: Float32Array.of(r.ood.bias) };
  }
  for (const [k, v] of Object.entries(meta)) md[k] = typeof v === "string" ? v : JSON.stringify(v);
  return encodeTensors(t, md);
}

/**
 * Parse router bytes. A router written before the OOD test existed (no `ood_method`) loads
 * with `ood: null` and routes by confidence alone; an unknown `ood_method` is refused.
 */
export function decodeRouter(bytes: Uint8Array, what = "router file"): Router {
  const { tensors, metadata } = decodeTensors(bytes, what);
  const tasks = JSON.parse(metadata.tasks ?? "null") as string[] | null;
  if (!Array.isArray(tasks)) throw new MaskSetError(`${what}: metadata lacks the task list`);
  let ood: Router["ood"] = null;
  if (metadata.ood_method !== undefined) {
    if (metadata.ood_method !== "other-class") {
      throw new MaskSetError(
        `${what}: unknown out-of-distribution test "${metadata.ood_method}" (this server knows ` +
          `"other-class"); recalibrate with this version (deno task calibrate)`,
      );
    }
    const threshold = Number(metadata.ood_threshold);
    if (!(threshold >= 0 && threshold <= 1)) {
      throw new MaskSetError(`${what}: ood_threshold "${metadata.ood_threshold}" not in [0, 1]`);
    }
    ood = {
      weight: need(tensors, "ood_weight", what).data as Float32Array,
      bias: (need(tensors, "ood_bias", what).data as Float32Array)[0],
      threshold,
    };
  }
  const r: Router = {
    ood,
    tasks,
    layer: Number(metadata.layer),
    threshold: Number(metadata.threshold),
    mean: need(tensors, "mean", what).data as Float32Array,
    std: need(tensors, "std", what).data as Float32Array,
    weight: need(tensors, "weight", what).data as Float32Array,
    bias: need(tensors, "bias", what).data as Float32Array,
  };
  const H = r.mean.length;
  if (
    r.std.length !== H || r.weight.length !== tasks.length * H ||
    r.bias.length !== tasks.length || (ood !== null && ood.weight.length !== H)
  ) {
    throw new MaskSetError(`${what}: tensor sizes do not agree with ${tasks.length} tasks`);
  }
  return r;
}

/** Manifest `model` block for a model. */
export function modelBlock(m: ModelIdentity): Manifest["model"] {
  return {
    name: m.name,
    fingerprint: m.fingerprint,
    numLayers: m.config.numLayers,
    hiddenSize: m.config.hiddenSize,
    intermediateSize: m.config.intermediateSize,
    numHeads: m.config.numHeads,
    headDim: m.config.headDim,
  };
}

/** Write `bytes` to `dir/file` and return its manifest entry (sha256, size). */
export async function writeListedFile(
  dir: string,
  file: string,
  bytes: Uint8Array,
): Promise<ManifestFile> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/${file}`, bytes);
  return { file, sha256: await sha256Hex(bytes), bytes: bytes.length };
}

/** Write manifest.json. */
export async function writeManifest(dir: string, m: Manifest): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(m, null, 2) + "\n");
}

/** Read a file listed in the manifest, refusing a missing, truncated or tampered one. */
export async function readListedFile(dir: string, f: ManifestFile): Promise<Uint8Array> {
  if (f.file.includes("/") || f.file.includes("\\") || f.file.startsWith(".")) {
    throw new MaskSetError(`${dir}/manifest.json: file name "${f.file}" is not a plain name`);
  }
  const path = `${dir}/${f.file}`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    throw new MaskSetError(`${path}: listed in manifest.json but cannot be read`);
  }
  if (bytes.length < f.bytes) {
    throw new MaskSetError(
      `${path}: truncated (${bytes.length} bytes, manifest.json says ${f.bytes})`,
    );
  }
  if (bytes.length !== f.bytes) {
    throw new MaskSetError(
      `${path}: size ${bytes.length} bytes differs from manifest.json (${f.bytes}): tampered`,
    );
  }
  const h = await sha256Hex(bytes);
  if (h !== f.sha256) {
    throw new MaskSetError(
      `${path}: sha256 ${h.slice(0, 12)}… does not match manifest.json (${
        f.sha256.slice(0, 12)
      }…): the file was modified (tampered or corrupt)`,
    );
  }
  return bytes;
}

/** A loaded, verified mask set. */
export interface MaskSet {
  manifest: Manifest;
  masks: Map<string, Mask>;
  router: Router | null;
}

/**
 * The masks of a set the server lays the FFN neurons out by (lib/model/neuron_order.ts): the SEAP
 * task and generic masks it serves by default, not the baselines (Wanda-sp, FLAP) or the
 * unvalidated `.raw` task masks. Benches use it too, so that they time the server's layout.
 */
export function layoutMasks(set: MaskSet): Mask[] {
  return set.manifest.masks
    .filter((e) => e.method === "seap" || e.method === "seap-generic")
    .map((e) => set.masks.get(e.name)!);
}

/** Check the manifest's model block against the loaded model ({@link MaskModelMismatchError}). */
export function checkModel(dir: string, mb: Manifest["model"], model: ModelIdentity): void {
  const c = model.config;
  if (mb.fingerprint !== model.fingerprint) {
    throw new MaskModelMismatchError(
      `${dir}: masks were made for model "${mb.name}" (fingerprint ${
        mb.fingerprint.slice(0, 12)
      }…), the loaded model "${model.name}" has fingerprint ${
        model.fingerprint.slice(0, 12)
      }…: recalibrate (deno task calibrate --model ${model.name})`,
    );
  }
  const pairs: [string, number, number][] = [
    ["layer count", mb.numLayers, c.numLayers],
    ["hidden size", mb.hiddenSize, c.hiddenSize],
    ["intermediate size", mb.intermediateSize, c.intermediateSize],
    ["head count", mb.numHeads, c.numHeads],
    ["head size", mb.headDim, c.headDim],
  ];
  for (const [what, a, b] of pairs) {
    if (a !== b) {
      throw new MaskModelMismatchError(`${dir}: masks have ${what} ${a}, the model has ${b}`);
    }
  }
}

/**
 * Load every mask and the router of `dir` for `model`. Refuses (with {@link MaskSetError})
 * a manifest for another model (fingerprint, layer count or sizes), a missing, truncated or
 * tampered file (size and sha256 from the manifest), and a mask that does not fit the model.
 */
export async function loadMaskSet(dir: string, model: ModelIdentity): Promise<MaskSet> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  } catch (e) {
    throw new MaskSetError(`${dir}/manifest.json: cannot be read (${(e as Error).message})`);
  }
  if (manifest.format !== MANIFEST_FORMAT) {
    throw new MaskSetError(
      `${dir}/manifest.json: format "${manifest.format}", expected ${MANIFEST_FORMAT}`,
    );
  }
  checkModel(dir, manifest.model, model);
  const masks = new Map<string, Mask>();
  for (const e of manifest.masks) {
    const bytes = await readListedFile(dir, e);
    const what = `${dir}/${e.file}`;
    const { mask, metadata } = decodeMask(bytes, what);
    if (metadata.fingerprint !== model.fingerprint) {
      throw new MaskModelMismatchError(`${what}: fingerprint in the file does not match the model`);
    }
    if (mask.name !== e.name) {
      throw new MaskSetError(`${what}: holds mask "${mask.name}", manifest.json says "${e.name}"`);
    }
    try {
      validateMask(mask, model.config);
    } catch (err) {
      if (err instanceof MaskError) throw new MaskSetError(`${what}: ${err.message}`);
      throw err;
    }
    masks.set(e.name, mask);
  }
  let router: Router | null = null;
  if (manifest.router) {
    const what = `${dir}/${manifest.router.file}`;
    router = decodeRouter(await readListedFile(dir, manifest.router), what);
    if (router.mean.length !== model.config.hiddenSize) {
      throw new MaskSetError(
        `${what}: router feature size ${router.mean.length}, the model's hidden size is ${model.config.hiddenSize}`,
      );
    }
  }
  return { manifest, masks, router };
}
