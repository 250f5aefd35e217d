/**
 * Corrupt, truncated, tampered and mismatched model and mask files are refused when the
 * server loads them, with a message that names the file and says what is wrong. Each case is
 * a copy of the default model and its masks with one defect written in by hand.
 */

import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../lib/server/config.ts";
import { loadEngine } from "../lib/server/engine_handle.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { TINY_CHAT } from "./server_helpers.ts";

const MASKS = new URL("../masks/seap-tiny-skills", import.meta.url).pathname;

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** A fresh copy of the default model (folder name kept) and its masks, then `defect`. */
async function broken(
  defect: (model: string, masks: string) => Promise<void>,
): Promise<{ model: string; masks: string; root: string }> {
  const root = await Deno.makeTempDir({ prefix: "seap_files_" });
  const model = `${root}/seap-tiny-skills`;
  const masks = `${root}/masks`;
  await copyDir(DEFAULT_MODEL_DIR, model);
  await copyDir(MASKS, masks);
  await defect(model, masks);
  return { model, masks, root };
}

async function patch(path: string, f: (b: Uint8Array) => Uint8Array): Promise<void> {
  await Deno.writeFile(path, f(await Deno.readFile(path)));
}

const cases: [string, (model: string, masks: string) => Promise<void>, RegExp][] = [
  [
    "truncated weights",
    (m) => patch(`${m}/model.safetensors`, (b) => b.subarray(0, b.length >> 1)),
    /model\.safetensors/,
  ],
  [
    "corrupt safetensors header",
    (m) =>
      patch(`${m}/model.safetensors`, (b) => {
        const c = b.slice();
        c.fill(0x7b, 8, 40); // "{{{{..." where the JSON header starts
        return c;
      }),
    /model\.safetensors/,
  ],
  [
    "header length beyond the file",
    (m) =>
      patch(`${m}/model.safetensors`, (b) => {
        const c = b.slice();
        new DataView(c.buffer).setBigUint64(0, 1n << 40n, true);
        return c;
      }),
    /model\.safetensors/,
  ],
  [
    "tampered weights (same size, one value changed)",
    (m) =>
      patch(`${m}/model.safetensors`, (b) => {
        const c = b.slice();
        c[c.length - 3] ^= 0x40;
        return c;
      }),
    /fingerprint/i,
  ],
  [
    "corrupt config.json",
    (m) => Deno.writeTextFile(`${m}/config.json`, '{"hidden_size": 64,'),
    /config\.json/,
  ],
  [
    "config that does not match the weights",
    async (m) => {
      const c = JSON.parse(await Deno.readTextFile(`${m}/config.json`));
      c.intermediate_size *= 2;
      await Deno.writeTextFile(`${m}/config.json`, JSON.stringify(c));
    },
    /fingerprint|shape|intermediate|mlp/i,
  ],
  [
    "corrupt tokenizer.json",
    (m) => Deno.writeTextFile(`${m}/tokenizer.json`, "[1, 2"),
    /tokenizer\.json/,
  ],
  [
    "truncated mask file",
    (_m, k) => patch(`${k}/reverse@0.5.safetensors`, (b) => b.subarray(0, b.length - 100)),
    /reverse@0\.5\.safetensors/,
  ],
  [
    "tampered mask file",
    (_m, k) =>
      patch(`${k}/generic@0.5.safetensors`, (b) => {
        const c = b.slice();
        c[c.length - 1] ^= 1;
        return c;
      }),
    /generic@0\.5\.safetensors.*sha256/,
  ],
  [
    "tampered router",
    (_m, k) =>
      patch(`${k}/router.safetensors`, (b) => {
        const c = b.slice();
        c[c.length - 5] ^= 2;
        return c;
      }),
    /router\.safetensors/,
  ],
  [
    "corrupt manifest",
    (_m, k) => Deno.writeTextFile(`${k}/manifest.json`, '{"masks": ['),
    /manifest\.json/,
  ],
  [
    "masks of another model",
    async (m, k) => {
      // The tiny fixture's files under the default model's name: its masks do not fit it.
      for (
        const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
      ) {
        await Deno.copyFile(`${TINY_CHAT}/${f}`, `${m}/${f}`);
      }
      void k;
    },
    /fingerprint|another model|does not match/i,
  ],
];

for (const [name, defect, message] of cases) {
  Deno.test(`startup files: ${name} is refused with a clear message`, async () => {
    const { model, masks, root } = await broken(defect);
    try {
      await assert.rejects(
        () =>
          loadEngine({ ...DEFAULT_CONFIG, backend: "reference", modelDir: model, masksDir: masks }),
        (e: Error) => {
          assert.match(e.message, message, `${name}: "${e.message}"`);
          assert.ok(e.message.length < 600, "one readable line, not a dump");
          return true;
        },
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

Deno.test("startup files: the intact copy loads (the defects above are the only difference)", async () => {
  const { model, masks, root } = await broken(() => Promise.resolve());
  try {
    const e = await loadEngine({
      ...DEFAULT_CONFIG,
      backend: "reference",
      modelDir: model,
      masksDir: masks,
    });
    assert.equal(e.modelId, "seap-tiny-skills");
    assert.ok(e.catalog.entries.length > 10);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
