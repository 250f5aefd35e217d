/**
 * Post-link step of the half-precision SIMD kernels (`build.sh "" <target>-fp16` for each of
 * wasm32, wasm64, wasm32-threads and wasm64-threads -> kernels/wasm/seap_kernels_fp16.wasm,
 * seap_kernels64_fp16.wasm, seap_kernels_mt_fp16.wasm, seap_kernels64_mt_fp16.wasm). clang 19 has no builtin for the fp16 proposal's
 * `f32x4.promote_low_f16x8`, so kernels/wasm/common.h (built with -DSEAP_FP16) calls a `const`
 * imported function `seap_fp16.f32x4.promote_low_f16x8 : (v128) -> v128` in its place. This step
 * replaces every call to that import with the opcode (the same stack signature, so the
 * replacement is one instruction for one) and drops the import, through binaryen (npm, pinned in
 * deno.json): read, print as text, rewrite the calls, parse, validate, write. The memory64
 * (i64 addresses) and shared-memory (imported `shared` memory, atomics, exported mutable
 * `__stack_pointer`) builds go through the same text unchanged but for the calls: binaryen reads
 * and prints both with the Memory64 and Atomics features on. Deterministic: the same input bytes
 * give the same output bytes.
 *
 *   deno run --allow-read --allow-write kernels/wasm/fp16_rewrite.ts IN.wasm OUT.wasm
 */

import binaryen from "binaryen";

/** The placeholder import's module and name (kernels/wasm/common.h, SEAP_FP16). */
export const PLACEHOLDER = { module: "seap_fp16", base: "f32x4.promote_low_f16x8" } as const;

/** The instruction that replaces each placeholder call. */
const OPCODE = "f32x4.promote_low_f16x8";

/** Features the kernels use (clang 19's defaults for these flags, plus fp16 for the result). */
function features(): number {
  const F = binaryen.Features;
  return F.MVP | F.SIMD128 | F.RelaxedSIMD | F.FP16 | F.BulkMemory | F.BulkMemoryOpt |
    F.NontrappingFPToInt |
    F.MutableGlobals | F.SignExt | F.Multivalue | F.ReferenceTypes | F.Atomics | F.Memory64;
}

/** Result of {@link rewriteFp16}: the new module and how many calls became the opcode. */
export interface Fp16Rewrite {
  /** The rewritten module (no placeholder import left). */
  bytes: Uint8Array;
  /** Calls replaced by `f32x4.promote_low_f16x8`. */
  calls: number;
}

/**
 * Replace every call of the {@link PLACEHOLDER} import in a linked module by
 * `f32x4.promote_low_f16x8` and drop the import. Throws when the module has no such import or no
 * call to it (a build without -DSEAP_FP16), or when the result does not validate.
 */
export function rewriteFp16(input: Uint8Array): Fp16Rewrite {
  const m = binaryen.readBinary(input);
  try {
    m.setFeatures(features());
    let name: string | null = null;
    for (let i = 0; i < m.getNumFunctions(); i++) {
      const f = binaryen.getFunctionInfo(m.getFunctionByIndex(i));
      if (f.module === PLACEHOLDER.module && f.base === PLACEHOLDER.base) name = f.name;
    }
    if (name === null) {
      throw new Error(
        `fp16_rewrite: no import ${PLACEHOLDER.module}.${PLACEHOLDER.base} (built without -DSEAP_FP16?)`,
      );
    }
    const text = m.emitText();
    // Binaryen's text names are "$" + the internal name.
    const esc = ("$" + name).replace(/[$.*+?^{}()|[\]\\]/g, "\\$&");
    // Binaryen prints folded expressions: "(call $name" then its one operand, then ")".
    const callRe = new RegExp(`\\(call ${esc}(?=\\s)`, "g");
    let calls = 0;
    let out = text.replace(callRe, () => {
      calls++;
      return `(${OPCODE}`;
    });
    if (calls === 0) throw new Error(`fp16_rewrite: no call to ${name}`);
    const importRe = new RegExp(
      `^\\s*\\(import "${PLACEHOLDER.module}" "[^"]*" \\(func ${esc} .*\\)\\s*$`,
      "m",
    );
    if (!importRe.test(out)) {
      throw new Error(`fp16_rewrite: cannot find the import line of ${name}`);
    }
    out = out.replace(importRe, "");
    if (new RegExp(`${esc}(?![\\w$.])`).test(out)) {
      throw new Error(`fp16_rewrite: ${name} is still referenced after the rewrite`);
    }
    const r = binaryen.parseText(out);
    try {
      r.setFeatures(features());
      if (!r.validate()) throw new Error("fp16_rewrite: the rewritten module does not validate");
      return { bytes: r.emitBinary(), calls };
    } finally {
      r.dispose();
    }
  } finally {
    m.dispose();
  }
}

if (import.meta.main) {
  const [inp, outp] = Deno.args;
  if (!inp || !outp) {
    console.error("usage: fp16_rewrite.ts IN.wasm OUT.wasm");
    Deno.exit(2);
  }
  const { bytes, calls } = rewriteFp16(await Deno.readFile(inp));
  await Deno.writeFile(outp, bytes);
  console.error(`fp16_rewrite: ${calls} calls -> ${OPCODE} (${bytes.length} bytes)`);
}
