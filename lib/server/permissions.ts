/**
 * The narrowest Deno permissions the server runs with: read the code's runtime files
 * (kernels, and with SEAP_THREADS > 1 the worker module of the WASM thread pool, which Deno
 * loads at run time), the model and the masks; listen on the configured address; read the SEAP_*
 * variables. Nothing else: no write, no subprocess, no FFI, no outbound network, no other
 * environment. `deno task serve` (tools/serve.ts), the end-to-end test, the container
 * recipes and the compiled binary all use these flags.
 */

import { fileURLToPath } from "node:url";
import type { ServerConfig } from "./config.ts";

/** The repository root (this file is lib/server/permissions.ts). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(
  /\/$/,
  "",
);

/** Folders and files the server reads at run time when given `cfg` (absolute paths). */
export function readPaths(
  cfg: Pick<ServerConfig, "modelDir" | "masksDir"> & { threads?: number },
): string[] {
  const abs = (p: string) => (p.startsWith("/") ? p : `${Deno.cwd()}/${p}`);
  const paths = [
    `${REPO_ROOT}/kernels`, // WASM kernels and WGSL shaders
    cfg.modelDir ? abs(cfg.modelDir) : `${REPO_ROOT}/models`,
    cfg.masksDir ? abs(cfg.masksDir) : `${REPO_ROOT}/masks`,
  ];
  if ((cfg.threads ?? 1) > 1) {
    // A worker's module graph is loaded (and permission-checked) when the worker starts.
    paths.push(
      `${REPO_ROOT}/lib/backends/wasm_threads_worker.ts`,
      `${REPO_ROOT}/lib/backends/wasm_threads_control.ts`,
      `${REPO_ROOT}/lib/backends/wasm_threads_task_runner.ts`,
    );
  }
  return [...new Set(paths)];
}

/** The `--allow-net` value of a listen address (IPv6 literals in brackets). */
export function listenAddress(host: string, port: number): string {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${h}:${port}`;
}

/**
 * `deno run` permission flags for serving `cfg`: `--allow-read` of the code's kernels, the
 * model and the masks, `--allow-net` of the listen address only, `--allow-env` of SEAP_*.
 */
export function servePermissionFlags(
  cfg: Pick<ServerConfig, "modelDir" | "masksDir" | "host" | "port"> & { threads?: number },
): string[] {
  return [
    `--allow-read=${readPaths(cfg).join(",")}`,
    `--allow-net=${listenAddress(cfg.host, cfg.port)}`,
    "--allow-env=SEAP_*",
  ];
}
