/**
 * The V8 flags the server is started with, next to its permissions (permissions.ts):
 * `--experimental-wasm-fp16` lets the WASM backend run f16 weights on WebAssembly's
 * half-precision SIMD (kernels/wasm/seap_kernels_fp16.wasm; docs/design.md, Backends and
 * kernels). Without it, e.g. on hosts that take no V8 flags, the backend detects that and runs the
 * portable f16 kernels; nothing else depends on it. `deno task serve` (tools/serve.ts), the
 * container recipes and the Kubernetes manifests pass exactly these (tests/server_deploy_test.ts).
 */
export const SERVE_V8_FLAGS: readonly string[] = ["--v8-flags=--experimental-wasm-fp16"];
