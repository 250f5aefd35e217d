/**
 * The server process: `deno run <narrow permissions> main.ts [--host H] [--port P] ...`
 * (`deno task serve` starts it with exactly those permissions, see tools/serve.ts and
 * lib/server/permissions.ts). Settings come from SEAP_* environment variables or flags
 * (lib/server/config.ts); it listens on 127.0.0.1:8000 unless told otherwise.
 *
 * The model and masks load once in the background; /healthz answers 503 until they are ready.
 * On SIGTERM (Kubernetes rollout) the server drains: the listener stays open so that new
 * requests and /healthz get a 503 (not "connection refused"), generations in flight finish (up
 * to SEAP_DRAIN_MS, default 25 s), then the listener closes and the process exits.
 */

import { createApp } from "./lib/server/app.ts";
import { readServerConfig, type ServerConfig, ServerConfigError } from "./lib/server/config.ts";
import { EngineHandle, loadEngine } from "./lib/server/engine_handle.ts";
import { ServerMetrics } from "./lib/server/metrics.ts";
import { Scheduler } from "./lib/server/scheduler.ts";

/** Start serving `config`; resolves once the listener is up. */
export function startServer(config: ServerConfig): Deno.HttpServer<Deno.NetAddr> {
  const handle = new EngineHandle(loadEngine(config));
  handle.settled.then(() => {
    if (handle.status === "failed") {
      // Corrupt, truncated, tampered or mismatched files: refuse to start, say why.
      console.error(`seap: cannot start: ${handle.error}`);
      Deno.exit(1);
    }
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
  // HTTP requests whose handler has not returned yet (e.g. a body still uploading): a drain
  // waits for them as well as for the scheduler's generations.
  let inflight = 0;
  const fetch = async (req: Request) => {
    inflight++;
    try {
      return await app.fetch(req);
    } finally {
      inflight--;
    }
  };
  const busy = () => inflight + scheduler.activeCount + scheduler.queueDepth;
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => console.log(`seap: listening on http://${hostname}:${port}`),
  }, fetch);

  if (Deno.build.os !== "windows") {
    Deno.addSignalListener("SIGTERM", async () => {
      if (handle.status === "draining") return;
      handle.drain();
      const deadline = Date.now() + config.drainMs;
      console.log(`seap: SIGTERM: draining ${busy()} requests`);
      while (busy() > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      scheduler.shutdown();
      // Let the last answers (and their stream ends) flush, then stop listening and exit.
      await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 2000))]);
      await handle.engine?.model.backend.close?.(); // the WASM worker threads (SEAP_THREADS)
      Deno.exit(0);
    });
  }
  return server;
}

if (import.meta.main) {
  let config: ServerConfig;
  try {
    config = readServerConfig();
  } catch (e) {
    if (!(e instanceof ServerConfigError)) throw e;
    console.error(`seap: ${e.message}`);
    Deno.exit(2);
  }
  startServer(config);
}
