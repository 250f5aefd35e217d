/**
 * Child process of tests/calibration_resume_test.ts: runs the statistics pass of the tiny
 * fixture with a checkpoint every 2 samples, prints `checkpoint <done> <total>` after each
 * write, and after the write at `stopAt` samples stops in place (never returns) so that the
 * parent can kill it with SIGKILL mid-run.
 *
 *   deno run -A tests/helpers/calibration_child.ts <checkpoint path> <stopAt>
 */

import { collectStats } from "../../lib/calibrate/collect_stats.ts";
import { loadModel } from "../../lib/model/model.ts";
import { Tokenizer } from "../../lib/text/tokenizer.ts";
import { resumeGroups } from "./calibration_rows.ts";

const [path, stopAt] = Deno.args;
const dir = new URL("../fixtures/tiny_chat", import.meta.url).pathname;
const model = await loadModel(dir);
const tok = await Tokenizer.load(dir);
const { groups, routerOnly } = resumeGroups(5, 2);
await collectStats(model, tok, groups, {
  maxTokens: 32,
  routerLayer: 1,
  progress: false,
  routerOnly,
  checkpoint: {
    path,
    every: 2,
    async onWrite(done, total) {
      console.log(`checkpoint ${done} ${total}`);
      // Wait here to be killed (the timer keeps the process alive).
      if (done >= Number(stopAt)) await new Promise(() => setInterval(() => {}, 1000));
    },
  },
});
console.log("finished");
