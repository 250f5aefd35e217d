/**
 * An on/off setting's text as a boolean: 1/0, true/false or yes/no (any case); undefined for
 * anything else, so each caller words its own error. Used by the server's settings
 * (lib/server/config.ts) and the WASM backend's SEAP_FP16_SIMD (lib/backends/wasm_kernels.ts).
 */
export function parseSwitch(raw: string): boolean | undefined {
  const SWITCH: Record<string, boolean> = {
    "1": true,
    "true": true,
    "yes": true,
    "0": false,
    "false": false,
    "no": false,
  };
  return SWITCH[raw.trim().toLowerCase()];
}
