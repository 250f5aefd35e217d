/**
 * `deno task serve [--host H] [--port P] [other SEAP flags]`: starts main.ts in a child
 * process with the narrowest permissions that work for the configured model, masks and listen
 * address (lib/server/permissions.ts): read of the kernels, model and masks, net of the
 * listen address, env of SEAP_*. This launcher only reads the settings and starts the child;
 * SIGTERM / SIGINT are passed on so that the server drains.
 */

import { readServerConfig, ServerConfigError } from "../lib/server/config.ts";
import { REPO_ROOT, servePermissionFlags } from "../lib/server/permissions.ts";
import { SERVE_V8_FLAGS } from "../lib/server/runtime_flags.ts";

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
  ...SERVE_V8_FLAGS,
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
