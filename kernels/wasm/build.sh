#!/usr/bin/env bash
# Build the WASM SIMD kernels into one module.
#   build.sh [out] [wasm32|wasm32-threads]
# wasm32 (default): kernels/wasm/seap_kernels.wasm, a private imported memory (one thread).
# wasm32-threads: kernels/wasm/seap_kernels_mt.wasm, the same sources linked for a shared
# imported memory (atomics, SEAP_THREADS > 1, lib/backends/wasm_threads.ts): every instance
# gets its own stack, so __stack_pointer is exported for the host to point at a per-thread one.
# Reproducible: no debug info, no paths, custom sections stripped; same clang -> same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${2:-wasm32}"
extra=()
case "$target" in
  wasm32) default_out="$here/seap_kernels.wasm" ;;
  wasm32-threads)
    default_out="$here/seap_kernels_mt.wasm"
    extra=(-matomics -mmutable-globals -Wl,--shared-memory -Wl,--max-memory=4294967296
      -Wl,--export=__stack_pointer)
    ;;
  *) echo "build.sh: target must be wasm32 or wasm32-threads, got $target" >&2; exit 2 ;;
esac
out="${1:-$default_out}"
[ -n "$out" ] || out="$default_out"
CLANG="${CLANG:-clang}"
cd "$here"
"$CLANG" --target=wasm32 -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint \
  -ffreestanding -nostdlib -fno-ident -ffp-contract=off \
  -Wall -Wextra -Wno-unused-function \
  -Wl,--no-entry -Wl,--import-memory -Wl,--export=__heap_base \
  -Wl,--strip-all -Wl,-z,stack-size=65536 ${extra[@]+"${extra[@]}"} \
  -o "$out" matmul.c matmul_q8.c attention.c elementwise.c
echo "built $out ($(wc -c <"$out") bytes, $target)"
