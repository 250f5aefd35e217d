/**
 * `deno task serve [--host H] [--port P] [other SEAP flags]`: starts main.ts in a child
 * process with the narrowest permissions that work for the configured model, masks and listen
 * address (lib/server/permissions.ts): read of the kernels, model and masks, net of the
 * listen address, env of SEAP_*. This launcher only reads the settings and starts the child;
 * SIGTERM / SIGINT are passed on so that the server drains.
 */

import { readServerConfig, ServerConfigError } from "../lib/server/config.ts";
import { REPO_ROOT, servePermissionFlags } from "../lib/server/permissions.ts";

let cfg;
try {
  cfg = readServerConfig();
} catch (e) {
  if (!(e instanceof ServerConfigError)) throw e;
  console.error(`seap: ${e.message}`);
  Deno.exit(2);
}
const args = [
  "run",
  "--unstable-no-legacy-abort",
  // WebAssembly half-precision SIMD for f16 weights (lib/backends/wasm.ts, fp16Simd).
  "--v8-flags=--experimental-wasm-fp16",
  ...servePermissionFlags(cfg),
  `${REPO_ROOT}/main.ts`,
  ...Deno.args,
];
console.log(`seap: deno ${args.slice(0, -Deno.args.length || undefined).join(" ")}`);
const child = new Deno.Command(Deno.execPath(), { args }).spawn();
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(sig, () => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  });
}
const status = await child.status;
Deno.exit(status.code);
