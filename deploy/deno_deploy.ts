/**
 * Deno Deploy entry: the WASM backend with the model and masks deployed beside the code
 * (models/<name>/, masks/<name>/ in the uploaded project). Before loading anything it checks
 * the model's estimated footprint (lib/server/memory_fit.ts) against the platform's memory
 * limit (SEAP_MEMORY_LIMIT_MB, default 512: a Deno Deploy isolate's limit) and, when it does
 * not fit, says so and refuses to start instead of dying mid-request.
 *
 *   deployctl deploy --project=<name> --entrypoint=deploy/deno_deploy.ts \
 *     --include=deploy,lib,kernels/wasm,models/seap-tiny-skills,masks/seap-tiny-skills,deno.json
 */

import { createApp } from "../lib/server/app.ts";
import { readServerConfig, type ServerConfig } from "../lib/server/config.ts";
import { EngineHandle, loadEngine } from "../lib/server/engine_handle.ts";
import { checkMemoryFit, estimateFootprint } from "../lib/server/memory_fit.ts";
import { ServerMetrics } from "../lib/server/metrics.ts";
import { Scheduler } from "../lib/server/scheduler.ts";
import { readConfig } from "../lib/model/model.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";

/** Default memory of one Deno Deploy isolate. */
export const DEPLOY_MEMORY_MB = 512;

/**
 * Check that `cfg`'s model fits `limitMb`; returns the message to log, throws when it does
 * not fit (the deployment then fails at start with that message).
 */
export async function checkDeployFit(cfg: ServerConfig, limitMb: number): Promise<string> {
  const dir = cfg.modelDir ?? DEFAULT_MODEL_DIR;
  const { config } = await readConfig(dir);
  const context = Math.min(
    cfg.maxContext ?? config.maxPositionEmbeddings,
    config.maxPositionEmbeddings,
  );
  const fp = estimateFootprint(config, {
    weights: cfg.weights,
    maxConcurrent: cfg.maxConcurrent,
    context,
  });
  const fit = checkMemoryFit(fp, limitMb * 2 ** 20, `model ${dir.split("/").pop()}`, cfg.weights);
  if (!fit.fits) throw new Error(`seap (Deno Deploy): ${fit.message}`);
  return fit.message;
}

if (import.meta.main) {
  const cfg: ServerConfig = { ...readServerConfig(undefined, []), backend: "wasm" };
  const limit = Number(Deno.env.get("SEAP_MEMORY_LIMIT_MB") ?? DEPLOY_MEMORY_MB);
  console.log(`seap (Deno Deploy): ${await checkDeployFit(cfg, limit)}`);
  const handle = new EngineHandle(loadEngine(cfg));
  const metrics = new ServerMetrics();
  const scheduler = new Scheduler(cfg, metrics);
  const app = createApp(handle, { ...cfg, metrics, scheduler });
  // Deno Deploy picks the address; Deno.serve without hostname/port is its documented form.
  Deno.serve(app.fetch);
}
