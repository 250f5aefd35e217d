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
  toFloat32Into,
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

function readAt(path: string, start: number, length: number, into?: Uint8Array): Uint8Array {
  const f = Deno.openSync(path, { read: true });
  try {
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
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
  const buf = new Uint8Array(1 << 20);
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

/** Reused raw bytes of {@link rowsF32} pieces read into a caller's buffer. */
let rawScratch = new Uint8Array(0);

function locate(ckpt: Checkpoint, name: string, shape: number[]) {
  const t = ckpt.tensors.get(name);
  if (!t) throw new CheckpointError(`checkpoint: tensor "${name}" is missing`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new CheckpointError(
      `checkpoint ${t.file}: tensor "${name}" has shape [${t.shape}], expected [${shape}]`,
    );
  }
  return t;
}

/**
 * A float32 copy of tensor `name`, read from its file and checked against the expected shape.
 * Throws {@link CheckpointError} naming the tensor when it is missing or mis-shaped.
 */
export function tensorF32(ckpt: Checkpoint, name: string, shape: number[]): Float32Array {
  const rows = shape.length === 0 ? 1 : shape[0];
  return rowsF32(ckpt, name, shape, 0, rows);
}

/**
 * A float32 copy of rows `[r0, r1)` of tensor `name` (along its first dimension; a 1-D
 * tensor's rows are its values), read from its file alone, so a large tensor is converted
 * piece by piece. Checked like {@link tensorF32}. With `out` the values go into (the start
 * of) `out` and the raw bytes into a reused buffer, so converting piece by piece allocates
 * nothing; the returned array is then a view of `out`.
 */
export function rowsF32(
  ckpt: Checkpoint,
  name: string,
  shape: number[],
  r0: number,
  r1: number,
  out?: Float32Array,
): Float32Array {
  const t = locate(ckpt, name, shape);
  const total = t.shape.reduce((a, b) => a * b, 1);
  const rows = t.shape.length === 0 ? 1 : t.shape[0];
  const rowBytes = rows === 0 ? 0 : (t.end - t.start) / rows;
  if (!(Number.isInteger(r0) && Number.isInteger(r1) && 0 <= r0 && r0 <= r1 && r1 <= rows)) {
    throw new RangeError(`checkpoint: rows [${r0}, ${r1}) of "${name}" outside [0, ${rows})`);
  }
  const path = `${ckpt.dir}/${t.file}`;
  const n = (r1 - r0) * (rows === 0 ? 0 : total / rows);
  try {
    if (!out) {
      return toFloat32({
        dtype: t.dtype,
        shape: [n],
        bytes: readAt(path, t.start + r0 * rowBytes, (r1 - r0) * rowBytes),
      });
    }
    const nBytes = (r1 - r0) * rowBytes;
    if (rawScratch.length < nBytes) rawScratch = new Uint8Array(nBytes);
    const bytes = readAt(path, t.start + r0 * rowBytes, nBytes, rawScratch);
    const dst = out.subarray(0, n);
    toFloat32Into({ dtype: t.dtype, shape: [n], bytes }, dst);
    return dst;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`checkpoint ${t.file}: tensor "${name}": ${(e as Error).message}`);
  }
}

/** Whether the checkpoint holds a tensor. */
export function hasTensor(ckpt: Checkpoint, name: string): boolean {
  return ckpt.tensors.has(name);
}
