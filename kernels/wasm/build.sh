#!/usr/bin/env bash
# Build the WASM SIMD kernels into one module: kernels/wasm/seap_kernels.wasm (or $1).
# Reproducible: no debug info, no paths, custom sections stripped; same clang -> same bytes.
# Needs clang >= 16 for relaxed SIMD (f32x4.relaxed_madd, i32x4.relaxed_dot_i8x16_i7x16_add):
# Debian's clang-19 + lld-19 (the committed module is built with Debian clang 19). $CLANG
# overrides the compiler; clang-19 is preferred when it is on the PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/seap_kernels.wasm}"
CLANG="${CLANG:-$(command -v clang-19 || echo clang)}"
major="$("$CLANG" --version | sed -nE 's/.*clang version ([0-9]+).*/\1/p' | head -1)"
if [ -z "$major" ] || [ "$major" -lt 16 ]; then
  echo "build.sh: $CLANG is clang ${major:-?}; relaxed SIMD needs clang >= 16 (apt install clang-19 lld-19)" >&2
  exit 1
fi
cd "$here"
"$CLANG" --target=wasm32 -O3 -msimd128 -mrelaxed-simd -mbulk-memory -mnontrapping-fptoint \
  -ffreestanding -nostdlib -fno-ident -ffp-contract=off \
  -Wall -Wextra -Wno-unused-function ${EXTRA_CFLAGS:-} \
  -Wl,--no-entry -Wl,--import-memory -Wl,--export=__heap_base \
  -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -o "$out" matmul.c matmul_q8.c attention.c elementwise.c
echo "built $out ($(wc -c <"$out") bytes)"
