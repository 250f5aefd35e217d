#!/usr/bin/env bash
# Rebuild the kernels into a temp dir and compare bytes with the committed module.
#   check_reproducible.sh [wasm32|wasm64|wasm32-threads|wasm64-threads][-fp16]
#   (seap_kernels.wasm, seap_kernels64.wasm, seap_kernels_mt.wasm, seap_kernels64_mt.wasm; with
#   -fp16 the half-precision SIMD builds seap_kernels_fp16.wasm, seap_kernels64_fp16.wasm,
#   seap_kernels_mt_fp16.wasm, seap_kernels64_mt_fp16.wasm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-wasm32}"
base="${target%-fp16}"
case "$base" in
  wasm32) name=seap_kernels ;;
  wasm64) name=seap_kernels64 ;;
  wasm32-threads) name=seap_kernels_mt ;;
  wasm64-threads) name=seap_kernels64_mt ;;
  *)
    echo "check_reproducible.sh: target must be wasm32, wasm64, wasm32-threads or wasm64-threads, each optionally with -fp16, got $target" >&2
    exit 2
    ;;
esac
[ "$base" = "$target" ] || name="${name}_fp16"
name="$name.wasm"
cc="${CLANG:-$(command -v clang-19 || echo clang)}" # what build.sh uses
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/build.sh" "$tmp/$name" "$target" >/dev/null
if cmp -s "$tmp/$name" "$here/$name"; then
  echo "$name is reproducible ($(wc -c <"$here/$name") bytes, $("$cc" --version | head -1))"
else
  echo "$name differs from a fresh build (clang: $("$cc" --version | head -1))" >&2
  exit 1
fi
