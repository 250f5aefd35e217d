#!/usr/bin/env bash
# Build the WASM SIMD kernels into one module.
#   build.sh [out] [wasm32|wasm64|wasm32-threads|wasm64-threads][-fp16]
# wasm32 (default): kernels/wasm/seap_kernels.wasm.
# wasm64: kernels/wasm/seap_kernels64.wasm (memory64: pointers and size_t are i64; clang 14
# also crashes selecting SIMD lane extracts for wasm64).
# *-threads: seap_kernels_mt.wasm / seap_kernels64_mt.wasm, the same sources linked for a
# shared imported memory (atomics; SEAP_THREADS > 1, lib/backends/wasm_threads.ts): every
# instance gets its own stack, so __stack_pointer is exported for the host to point at one.
# *-fp16 (a modifier of any of the four): the same build with -DSEAP_FP16 (f16 converted by the
# half-precision SIMD instruction f32x4.promote_low_f16x8; V8: --experimental-wasm-fp16), written
# as <name>_fp16.wasm: seap_kernels_fp16.wasm, seap_kernels64_fp16.wasm, seap_kernels_mt_fp16.wasm,
# seap_kernels64_mt_fp16.wasm. clang emits calls to a placeholder import and
# kernels/wasm/fp16_rewrite.ts (deno + binaryen from npm, pinned in deno.json) turns them into the
# opcode after linking.
# Reproducible: no debug info, no paths, custom sections stripped; same clang -> same bytes.
# Needs clang >= 16 for relaxed SIMD (f32x4.relaxed_madd, i32x4.relaxed_dot_i8x16_i7x16_add):
# Debian's clang-19 + lld-19 (the committed module is built with Debian clang 19). $CLANG
# overrides the compiler; clang-19 is preferred when it is on the PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${2:-wasm32}"
threads=(-matomics -mmutable-globals -Wl,--shared-memory -Wl,--export=__stack_pointer)
extra=()
base="$target"
fp16=0
if [ "${target%-fp16}" != "$target" ]; then
  base="${target%-fp16}"
  fp16=1
fi
case "$base" in
  wasm32) arch=wasm32; name=seap_kernels ;;
  wasm64) arch=wasm64; name=seap_kernels64 ;;
  wasm32-threads)
    arch=wasm32; name=seap_kernels_mt
    extra=("${threads[@]}" -Wl,--max-memory=4294967296)
    ;;
  wasm64-threads)
    arch=wasm64; name=seap_kernels64_mt
    extra=("${threads[@]}" -Wl,--max-memory=17179869184)
    ;;
  *)
    echo "build.sh: target must be wasm32, wasm64, wasm32-threads or wasm64-threads, each optionally with -fp16, got $target" >&2
    exit 2
    ;;
esac
if [ "$fp16" = 1 ]; then
  name="${name}_fp16"
  extra+=(-DSEAP_FP16)
fi
default_out="$here/$name.wasm"
out="${1:-$default_out}"
[ -n "$out" ] || out="$default_out"
cc="${CLANG:-$(command -v clang-19 || echo clang)}"
major="$("$cc" --version | sed -nE 's/.*clang version ([0-9]+).*/\1/p' | head -1)"
if [ -z "$major" ] || [ "$major" -lt 16 ]; then
  echo "build.sh: $cc is clang ${major:-?}; relaxed SIMD needs clang >= 16 (apt install clang-19 lld-19)" >&2
  exit 1
fi
cd "$here"
link_out="$out"
if [ "$fp16" = 1 ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  link_out="$tmp/linked.wasm"
fi
# clang runs any `wasm-opt` it finds on the PATH after linking (binaryen's npm package puts one in
# node_modules/.bin, which `deno task` adds to the PATH), and clang 19's --no-wasm-opt writes no
# output at all: so clang runs with the PATH's wasm-opt directories left out.
clang_path=""
IFS=: read -ra path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
  [ -x "$d/wasm-opt" ] || clang_path="${clang_path:+$clang_path:}$d"
done
cc="$(command -v "$cc")"
PATH="$clang_path" "$cc" --target="$arch" -O3 -msimd128 -mrelaxed-simd -mbulk-memory -mnontrapping-fptoint \
  -ffreestanding -nostdlib -fno-ident -ffp-contract=off \
  -Wall -Wextra -Wno-unused-function ${EXTRA_CFLAGS:-} \
  -Wl,--no-entry -Wl,--import-memory -Wl,--export=__heap_base \
  -Wl,--strip-all -Wl,-z,stack-size=65536 ${extra[@]+"${extra[@]}"} \
  -o "$link_out" matmul.c matmul_q8.c attention.c elementwise.c
if [ "$fp16" = 1 ]; then
  # $DENO overrides the deno binary (the reproducibility test passes its own).
  "${DENO:-deno}" run --quiet --allow-read --allow-write="$(dirname "$out")" --allow-env \
    "$here/fp16_rewrite.ts" "$link_out" "$out"
fi
echo "built $out ($(wc -c <"$out") bytes, $target, $("$cc" --version | head -1))"
