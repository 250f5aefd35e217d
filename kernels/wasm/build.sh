#!/usr/bin/env bash
# Build the WASM SIMD kernels into one module: kernels/wasm/seap_kernels.wasm (or $1).
# Reproducible: no debug info, no paths, custom sections stripped; same clang -> same bytes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/seap_kernels.wasm}"
CLANG="${CLANG:-clang}"
cd "$here"
"$CLANG" --target=wasm32 -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint \
  -ffreestanding -nostdlib -fno-ident -ffp-contract=off \
  -Wall -Wextra -Wno-unused-function \
  -Wl,--no-entry -Wl,--import-memory -Wl,--export=__heap_base \
  -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -o "$out" matmul.c matmul_q8.c attention.c elementwise.c
echo "built $out ($(wc -c <"$out") bytes)"
