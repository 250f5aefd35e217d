/**
 * Bench driver (`deno task bench`). Parts live in their own files and are called from here:
 *   gemv: masked GEMV GB/s (bench/gemv_bench.ts);
 *   ffn: one masked SwiGLU FFN layer, four ops vs the fused op (bench/ffn_bench.ts).
 * Flags: `--only=gemv,ffn` (comma list of parts), `--quick` (shorter timed runs).
 * More parts (decode tokens/s once the engine exists) are added as further entries of PARTS.
 */

import { formatFfnTable, runFfnBench } from "./ffn_bench.ts";
import { formatGemvTable, runGemvBench } from "./gemv_bench.ts";

/** One bench part: runs and returns its markdown report. */
type Part = (quick: boolean) => Promise<string>;

const PARTS: Record<string, Part> = {
  gemv: async (quick) => {
    const results = await runGemvBench(quick ? { minMs: 40, reps: 2 } : {});
    return "## Masked GEMV (single thread, weights out of cache)\n\n" + formatGemvTable(results);
  },
  ffn: async (quick) => {
    const results = await runFfnBench(quick ? { minMs: 40, reps: 2 } : {});
    return "## Masked FFN layer, SmolLM2-135M, decode (bundled [I, 3H])\n\n" +
      formatFfnTable(results);
  },
};

if (import.meta.main) {
  const only = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
  const quick = Deno.args.includes("--quick");
  for (const [name, part] of Object.entries(PARTS)) {
    if (only && !only.includes(name)) continue;
    console.log(await part(quick));
    console.log();
  }
}
