#!/usr/bin/env bash
# Regenerates docs/results/ (the numbers and plots of docs/results.md) on the default model.
#
#   bash tools/make_results.sh [part ...]     parts: equal_cost curve transfer ablation why50
#                                             clusters (default: all, in that order)
#
# Every part is deterministic (seeded row samples, seeded calibration): running it twice gives
# the same numbers. Intermediate mask sets go to tmp/results/ (ignored by git). Times on the
# shared 2-core box: equal_cost ~10 min, curve ~25 min, transfer ~13 min, ablation ~10 min,
# why50 ~12 min, clusters ~1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
deno="${DENO:-deno}"
out=docs/results
tmp=tmp/results
stats=masks/seap-tiny-skills/stats.safetensors
mkdir -p "$out" "$tmp"

# Every method at exactly 20% and 50% of decoder parameters removed, the committed mask set,
# the whole held-out split (1,996 rows).
equal_cost() {
  "$deno" run -A tools/eval.ts --shares 0.2,0.5 --no-progress --out "$out/equal_cost"
}

# Accuracy against share removed, 10% to 60%: a fresh calibration (same seed and data as the
# committed one, with validation and router) at six shares, then every method on 100 rows per
# task. At 60% UL-LD must empty a layer (the most it reaches otherwise is 57%).
curve() {
  "$deno" run -A tools/calibrate.ts --quiet --sparsity 0.1,0.2,0.3,0.4,0.5,0.6 \
    --allow-empty-layers --out "$tmp/curve_masks"
  "$deno" run -A tools/eval.ts --mask-set "$tmp/curve_masks" --limit 100 --no-progress \
    --out "$out/curve"
}

# Every task's mask on every task's rows (40 per task), at 20% and 50%.
transfer() {
  "$deno" run -A tools/eval.ts --transfer --shares 0.2,0.5 --limit 40 --no-progress \
    --out "$out/transfer"
}

# At 50%: WIFV vs WIFN vs Wanda scores (UL-LD), UL-LD vs UL-UM vs AL-AM (WIFV), with and
# without bias compensation; generic and task (oracle) masks, unvalidated, 100 rows per task.
ablation() {
  local name args
  for spec in "wifv_ul-ld_bias:" "wifn_ul-ld_bias:--score wifn" \
    "wanda_ul-ld_bias:--score wanda-sp" "wifv_ul-um_bias:--structure ul-um" \
    "wifv_al-am_bias:--structure al-am" "wifv_ul-ld_nobias:--bias-compensation off"; do
    name=${spec%%:*}
    args=${spec#*:}
    # shellcheck disable=SC2086
    "$deno" run -A tools/calibrate.ts --quiet --from-stats "$stats" --sparsity 0.5 \
      --no-baselines --validate-samples 0 $args --out "$tmp/ablation/$name"
    "$deno" run -A tools/eval.ts --mask-set "$tmp/ablation/$name" --no-dense --limit 100 \
      --masks 'method=seap-generic|seap-task,share=0.5' --no-progress \
      --out "$out/ablation/$name"
  done
}

# Why 50% misses its goal: the same 50% masks (generic and task oracle, unvalidated, 100 rows per
# task) under other schedule parameters (k, x0) and calibration sizes (samples per task).
why50() {
  local name args
  for spec in "k0.6:--from-stats $stats --logistic-k 0.6" "k2.4:--from-stats $stats --logistic-k 2.4" \
    "x0_0.0:--from-stats $stats --logistic-x0 0" "x0_0.6:--from-stats $stats --logistic-x0 0.6" \
    "samples32:--samples 32" "samples128:--samples 128"; do
    name=${spec%%:*}
    args=${spec#*:}
    # shellcheck disable=SC2086
    "$deno" run -A tools/calibrate.ts --quiet --sparsity 0.5 --no-baselines \
      --validate-samples 0 $args --out "$tmp/why50/$name"
    "$deno" run -A tools/eval.ts --mask-set "$tmp/why50/$name" --no-dense --limit 100 \
      --masks 'method=seap-generic|seap-task,share=0.5' --no-progress --out "$out/why50/$name"
  done
}

# How calibration samples cluster by task, layer by layer (the router's feature).
clusters() {
  "$deno" run -A tools/task_clusters.ts --per-task 24 --out "$out/clusters"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(equal_cost curve transfer ablation why50 clusters)
for p in "${parts[@]}"; do
  echo "== $p ($(date -u +%H:%M:%S))" >&2
  "$p"
done
