#!/usr/bin/env bash
# Build the WASM SIMD kernels into one module.
#   build.sh [out] [wasm32|wasm64|wasm32-threads|wasm64-threads]
# wasm32 (default): kernels/wasm/seap_kernels.wasm, built with $CLANG (default clang).
# wasm64: kernels/wasm/seap_kernels64.wasm (memory64: pointers and size_t are i64), built with
# $CLANG64 (default clang-19: clang 14 crashes selecting SIMD lane extracts for wasm64).
# *-threads: seap_kernels_mt.wasm / seap_kernels64_mt.wasm, the same sources linked for a
# shared imported memory (atomics; SEAP_THREADS > 1, lib/backends/wasm_threads.ts): every
# instance gets its own stack, so __stack_pointer is exported for the host to point at one.
# Reproducible: no debug info, no paths, custom sections stripped; same clang -> same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${2:-wasm32}"
threads=(-matomics -mmutable-globals -Wl,--shared-memory -Wl,--export=__stack_pointer)
extra=()
case "$target" in
  wasm32) arch=wasm32; cc="${CLANG:-clang}"; default_out="$here/seap_kernels.wasm" ;;
  wasm64) arch=wasm64; cc="${CLANG64:-clang-19}"; default_out="$here/seap_kernels64.wasm" ;;
  wasm32-threads)
    arch=wasm32; cc="${CLANG:-clang}"; default_out="$here/seap_kernels_mt.wasm"
    extra=("${threads[@]}" -Wl,--max-memory=4294967296)
    ;;
  wasm64-threads)
    arch=wasm64; cc="${CLANG64:-clang-19}"; default_out="$here/seap_kernels64_mt.wasm"
    extra=("${threads[@]}" -Wl,--max-memory=17179869184)
    ;;
  *)
    echo "build.sh: target must be wasm32, wasm64, wasm32-threads or wasm64-threads, got $target" >&2
    exit 2
    ;;
esac
out="${1:-$default_out}"
[ -n "$out" ] || out="$default_out"
cd "$here"
"$cc" --target="$arch" -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint \
  -ffreestanding -nostdlib -fno-ident -ffp-contract=off \
  -Wall -Wextra -Wno-unused-function \
  -Wl,--no-entry -Wl,--import-memory -Wl,--export=__heap_base \
  -Wl,--strip-all -Wl,-z,stack-size=65536 ${extra[@]+"${extra[@]}"} \
  -o "$out" matmul.c matmul_q8.c attention.c elementwise.c
echo "built $out ($(wc -c <"$out") bytes, $target, $("$cc" --version | head -1))"
