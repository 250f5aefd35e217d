/**
 * Entry point for `deno serve main.ts` (default export `{ fetch }`). The model and masks load
 * once in the background at startup; /healthz answers 503 until they are ready. Settings come
 * from SEAP_* environment variables or flags (lib/server/config.ts).
 */

import { createApp } from "./lib/server/app.ts";
import { readServerConfig } from "./lib/server/config.ts";
import { EngineHandle, loadEngine } from "./lib/server/engine_handle.ts";

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

const app = createApp(handle, config);

/** The handler `deno serve` calls for every request. */
export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
