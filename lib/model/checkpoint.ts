/**
 * Reading a Hugging Face checkpoint folder's tensors: `model.safetensors`, or shards listed in
 * `model.safetensors.index.json`. Gives float32 host arrays by HF tensor name.
 */

import {
  parseSafetensors,
  type SafeTensor,
  SafetensorsError,
  toFloat32,
} from "../formats/safetensors.ts";

/** Error for a checkpoint folder that cannot be loaded; the message names the file. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** All tensors of a checkpoint, by HF name, plus the raw bytes of every file (for hashing). */
export interface Checkpoint {
  /** Names of the weight files, in load order. */
  files: string[];
  /** Raw bytes of each weight file (same order as `files`). */
  fileBytes: Uint8Array[];
  tensors: Map<string, SafeTensor & { file: string }>;
}

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Load every safetensors file of a model folder (single file or sharded). */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const indexPath = `${dir}/model.safetensors.index.json`;
  let files: string[];
  if (await exists(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(new TextDecoder().decode(await readFile(indexPath)));
    } catch (e) {
      throw new CheckpointError(`${indexPath}: not valid JSON (${(e as Error).message})`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") {
      throw new CheckpointError(`${indexPath}: missing "weight_map"`);
    }
    files = [...new Set(Object.values(index.weight_map))].sort();
  } else if (await exists(`${dir}/model.safetensors`)) {
    files = ["model.safetensors"];
  } else {
    throw new CheckpointError(
      `${dir}: no model.safetensors or model.safetensors.index.json found`,
    );
  }
  const tensors = new Map<string, SafeTensor & { file: string }>();
  const fileBytes: Uint8Array[] = [];
  for (const f of files) {
    if (f.includes("/") || f.includes("..")) {
      throw new CheckpointError(`${indexPath}: refusing shard path "${f}"`);
    }
    const bytes = await readFile(`${dir}/${f}`);
    fileBytes.push(bytes);
    let parsed;
    try {
      parsed = parseSafetensors(bytes, `${dir}/${f}`);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
      throw e;
    }
    for (const [name, t] of parsed.tensors) tensors.set(name, { ...t, file: f });
  }
  return { files, fileBytes, tensors };
}

/**
 * A float32 copy of tensor `name`, checked against the expected shape.
 * Throws {@link CheckpointError} naming the tensor when it is missing or mis-shaped.
 */
export function tensorF32(ckpt: Checkpoint, name: string, shape: number[]): Float32Array {
  const t = ckpt.tensors.get(name);
  if (!t) throw new CheckpointError(`checkpoint: tensor "${name}" is missing`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new CheckpointError(
      `checkpoint ${t.file}: tensor "${name}" has shape [${t.shape}], expected [${shape}]`,
    );
  }
  try {
    return toFloat32(t);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${t.file}: tensor "${name}": ${(e as Error).message}`);
  }
}

/** Whether the checkpoint holds a tensor. */
export function hasTensor(ckpt: Checkpoint, name: string): boolean {
  return ckpt.tensors.has(name);
}
