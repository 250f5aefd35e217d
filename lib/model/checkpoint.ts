/**
 * Reading a Hugging Face checkpoint folder's tensors: `model.safetensors`, or shards listed in
 * `model.safetensors.index.json`. Only the headers are read up front; each tensor is read from
 * its file when asked for, so loading never holds a whole weight file in memory.
 */

import { createHash } from "node:crypto";
import {
  headerSize,
  parseSafetensorsHeader,
  SafetensorsError,
  type TensorLocation,
  toFloat32,
} from "../formats/safetensors.ts";

/** Error for a checkpoint folder that cannot be loaded; the message names the file. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** The tensors of a checkpoint, by HF name, with where each one lives. */
export interface Checkpoint {
  dir: string;
  /** Names of the weight files, in load order. */
  files: string[];
  tensors: Map<string, TensorLocation & { file: string }>;
}

function fail(e: unknown, path: string): never {
  if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
  throw new CheckpointError(`cannot read ${path}: ${(e as Error).message}`);
}

function readAt(path: string, start: number, length: number): Uint8Array {
  const f = Deno.openSync(path, { read: true });
  try {
    const out = new Uint8Array(length);
    f.seekSync(start, Deno.SeekMode.Start);
    let got = 0;
    while (got < length) {
      const n = f.readSync(out.subarray(got));
      if (n === null || n === 0) {
        throw new CheckpointError(`${path}: unexpected end of file at byte ${start + got}`);
      }
      got += n;
    }
    return out;
  } finally {
    f.close();
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

/** Names of a folder's weight files (single file or the shards of the index). */
export async function weightFiles(dir: string): Promise<string[]> {
  const indexPath = `${dir}/model.safetensors.index.json`;
  if (await exists(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await Deno.readTextFile(indexPath));
    } catch (e) {
      throw new CheckpointError(`${indexPath}: not valid JSON (${(e as Error).message})`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") {
      throw new CheckpointError(`${indexPath}: missing "weight_map"`);
    }
    const files = [...new Set(Object.values(index.weight_map))].sort();
    for (const f of files) {
      if (f.includes("/") || f.includes("..")) {
        throw new CheckpointError(`${indexPath}: refusing shard path "${f}"`);
      }
    }
    return files;
  }
  if (await exists(`${dir}/model.safetensors`)) return ["model.safetensors"];
  throw new CheckpointError(`${dir}: no model.safetensors or model.safetensors.index.json found`);
}

/** Read the headers of every safetensors file of a model folder. */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const files = await weightFiles(dir);
  const tensors = new Map<string, TensorLocation & { file: string }>();
  for (const f of files) {
    const path = `${dir}/${f}`;
    try {
      const size = (await Deno.stat(path)).size;
      const first = readAt(path, 0, Math.min(8, size));
      const head = readAt(path, 0, headerSize(first, size, path));
      const parsed = parseSafetensorsHeader(head, size, path);
      for (const [name, t] of parsed.tensors) tensors.set(name, { ...t, file: f });
    } catch (e) {
      fail(e, path);
    }
  }
  return { dir, files, tensors };
}

/**
 * sha256 (hex) over config.json and every weight file in order, streamed in chunks: the
 * identity masks are bound to.
 */
export async function fingerprintFolder(dir: string): Promise<string> {
  const h = createHash("sha256");
  const buf = new Uint8Array(8 << 20);
  for (const f of ["config.json", ...await weightFiles(dir)]) {
    const file = await Deno.open(`${dir}/${f}`, { read: true });
    try {
      for (;;) {
        const n = await file.read(buf);
        if (n === null) break;
        h.update(buf.subarray(0, n));
      }
    } finally {
      file.close();
    }
  }
  return h.digest("hex");
}

/**
 * A float32 copy of tensor `name`, read from its file and checked against the expected shape.
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
  const path = `${ckpt.dir}/${t.file}`;
  try {
    return toFloat32({
      dtype: t.dtype,
      shape: t.shape,
      bytes: readAt(path, t.start, t.end - t.start),
    });
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`checkpoint ${t.file}: tensor "${name}": ${(e as Error).message}`);
  }
}

/** Whether the checkpoint holds a tensor. */
export function hasTensor(ckpt: Checkpoint, name: string): boolean {
  return ckpt.tensors.has(name);
}
