/**
 * Resumable calibration (issue 14, "Calibration at any size"): a statistics pass killed with
 * SIGKILL after a checkpoint, or stopped by its abort signal, and then run again with the same
 * inputs resumes from the checkpoint, skips the samples already counted, and ends with exactly
 * the statistics (every float64 tensor byte for byte, router features, labels, token counts)
 * of an uninterrupted pass. A checkpoint of other inputs is refused with a clear error.
 */

import assert from "node:assert/strict";
import {
  type CalibrationStats,
  collectStats,
  encodeStats,
} from "../lib/calibrate/collect_stats.ts";
import { CheckpointMismatchError } from "../lib/calibrate/stats_checkpoint.ts";
import { decodeTensors } from "../lib/masks/tensor_file.ts";
import { loadModel } from "../lib/model/model.ts";
import { Tokenizer } from "../lib/text/tokenizer.ts";
import { resumeGroups } from "./helpers/calibration_rows.ts";

const DIR = new URL("./fixtures/tiny_chat", import.meta.url).pathname;
const CHILD = new URL("./helpers/calibration_child.ts", import.meta.url).pathname;
const model = await loadModel(DIR);
const tok = await Tokenizer.load(DIR);
const { groups, routerOnly } = resumeGroups(5, 2); // 3 tasks × (5 + 2) = 21 samples
const TOTAL = 21;
const OPTS = { maxTokens: 32, routerLayer: 1, progress: false, routerOnly };

/** Every tensor and count of two statistics, compared byte for byte; returns how many. */
function assertSameStats(got: CalibrationStats, want: CalibrationStats): number {
  const a = decodeTensors(encodeStats(got), "resumed");
  const b = decodeTensors(encodeStats(want), "uninterrupted");
  assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()]);
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!;
    const x = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const y = new Uint8Array(u.data.buffer, u.data.byteOffset, u.data.byteLength);
    const at = x.findIndex((v, i) => v !== y[i]);
    assert.ok(x.length === y.length && at < 0, `${name} differs at byte ${at}`);
  }
  assert.equal(a.metadata.tasks, b.metadata.tasks, "samples and tokens per task");
  assert.equal(got.tokens, want.tokens);
  return a.tensors.size;
}

const reference = await collectStats(model, tok, groups, OPTS);

Deno.test("calibration killed (SIGKILL) after a checkpoint resumes to the uninterrupted statistics", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/stats.partial.safetensors`;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHILD, path, "8"],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/checkpoint 8 /.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await reader.cancel();
    assert.equal(status.signal, "SIGKILL", `child ended by ${status.signal ?? status.code}`);
    assert.match(seen, /checkpoint 8 21/);
    assert.doesNotMatch(seen, /finished/);
    const meta = decodeTensors(await Deno.readFile(path), path).metadata;
    assert.equal(meta.checkpoint_done, "8", "the checkpoint holds 8 of 21 samples");

    const logs: string[] = [];
    let writes = 0;
    const resumed = await collectStats(model, tok, groups, {
      ...OPTS,
      log: (s) => logs.push(s),
      checkpoint: { path, every: 2, onWrite: () => void writes++ },
    });
    assert.match(logs.join("\n"), /resuming from .*: 8 of 21 samples done/);
    // Samples 9..21 only: checkpoints at 10, 12, ..., 20 and the last at 21.
    assert.equal(writes, 7);
    const n = assertSameStats(resumed, reference);
    assert.equal(resumed.router.labels.length, TOTAL);
    console.log(`  ${n} tensors identical after a kill at 8 of ${TOTAL} samples`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("calibration stopped by its signal resumes; a checkpoint of other inputs is refused", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/stats.partial.safetensors`;
  try {
    const stop = new AbortController();
    await assert.rejects(
      () =>
        collectStats(model, tok, groups, {
          ...OPTS,
          signal: stop.signal,
          checkpoint: {
            path,
            every: 3,
            onWrite: (done) => {
              if (done === 12) stop.abort();
            },
          },
        }),
      (e: unknown) => (e as Error).name === "AbortError",
    );
    const resumed = await collectStats(model, tok, groups, {
      ...OPTS,
      log: () => {},
      checkpoint: { path, every: 3 },
    });
    assertSameStats(resumed, reference);
    // Other options (fewer tokens per sample) or other rows: refused, naming the file.
    for (
      const [what, g, o] of [
        ["max tokens", groups, { ...OPTS, maxTokens: 16 }],
        ["rows", resumeGroups(4, 2).groups, OPTS],
      ] as const
    ) {
      await assert.rejects(
        () => collectStats(model, tok, g, { ...o, checkpoint: { path, every: 3 } }),
        (e: unknown) =>
          e instanceof CheckpointMismatchError && e.message.includes(path) &&
          /other inputs/.test(e.message),
        what,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
