/**
 * Entry point for `deno serve main.ts` (default export `{ fetch }`). The model and masks load
 * once in the background at startup; /healthz answers 503 until they are ready. Settings come
 * from SEAP_* environment variables or flags (lib/server/config.ts).
 *
 * On SIGTERM (Kubernetes rollout) the server drains: /healthz and new requests answer 503,
 * generations in flight finish (up to SEAP_DRAIN_MS, default 25 s), then the process exits.
 */

import { createApp } from "./lib/server/app.ts";
import { readServerConfig } from "./lib/server/config.ts";
import { EngineHandle, loadEngine } from "./lib/server/engine_handle.ts";
import { ServerMetrics } from "./lib/server/metrics.ts";
import { Scheduler } from "./lib/server/scheduler.ts";

const config = readServerConfig();
const handle = new EngineHandle(loadEngine(config));
handle.settled.then(() => {
  if (handle.engine) {
    const e = handle.engine;
    console.log(
      `seap: ready: model ${e.modelId} (${e.backendName}), masks ${e.catalog.source} ` +
        `(${e.catalog.entries.length} incl. dense), context ${e.maxContext}`,
    );
  }
});

const metrics = new ServerMetrics();
const scheduler = new Scheduler(config, metrics);
const app = createApp(handle, { ...config, metrics, scheduler });

function drainMs(): number {
  try {
    const v = Number(Deno.env.get("SEAP_DRAIN_MS") ?? "25000");
    return Number.isFinite(v) && v >= 0 ? v : 25_000;
  } catch {
    return 25_000;
  }
}

if (Deno.build.os !== "windows") {
  Deno.addSignalListener("SIGTERM", async () => {
    if (handle.status === "draining") return;
    handle.drain();
    const deadline = Date.now() + drainMs();
    console.log(`seap: SIGTERM: draining ${scheduler.activeCount + scheduler.queueDepth} requests`);
    while (scheduler.activeCount + scheduler.queueDepth > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    scheduler.shutdown();
    await new Promise((r) => setTimeout(r, 50)); // let the last answers flush
    Deno.exit(0);
  });
}

/** The handler `deno serve` calls for every request. */
export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
