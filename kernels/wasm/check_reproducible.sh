#!/usr/bin/env bash
# Rebuild the kernels into a temp dir and compare bytes with the committed modules
# (seap_kernels.wasm and the shared-memory seap_kernels_mt.wasm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
for pair in seap_kernels.wasm:wasm32 seap_kernels_mt.wasm:wasm32-threads; do
  file="${pair%%:*}"
  "$here/build.sh" "$tmp/$file" "${pair##*:}" >/dev/null
  if cmp -s "$tmp/$file" "$here/$file"; then
    echo "$file is reproducible ($(wc -c <"$here/$file") bytes)"
  else
    echo "$file differs from a fresh build (clang: $(${CLANG:-clang} --version | head -1))" >&2
    status=1
  fi
done
exit "$status"
