#!/usr/bin/env bash
# Rebuild the kernels into a temp dir and compare bytes with the committed seap_kernels.wasm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/build.sh" "$tmp/seap_kernels.wasm" >/dev/null
if cmp -s "$tmp/seap_kernels.wasm" "$here/seap_kernels.wasm"; then
  echo "seap_kernels.wasm is reproducible ($(wc -c <"$here/seap_kernels.wasm") bytes)"
else
  echo "seap_kernels.wasm differs from a fresh build (clang: $(${CLANG:-clang} --version | head -1))" >&2
  exit 1
fi
