#!/usr/bin/env bash
# Train candidate default models side by side on one CUDA GPU, evaluate each with the
# trainer's own eval, and pack each exported folder into $OUT (xz, split into 15 MB parts).
# Used once on the device machine (H200) to train models/seap-tiny-skills; see its RESULTS.md.
#
#   OUT=/tmp/out BUDGET=6 DATA=.gpu/data bash tools/gpu_train_sweep.sh
#
# DATA holds train_ids.jsonl[.xz], eval_ids.jsonl and meta.json from `deno task data`.
# BUDGET is each run's wall-clock schedule in minutes; DEVICE=cpu STEPS=20 tries it here.
set -u
OUT=${OUT:?set OUT}
BUDGET=${BUDGET:-6}
DATA=${DATA:-.gpu/data}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-1000000}
RUNS=${RUNS:-a b c} # a: 2.1M params (8 x 128, I 512); b: 4.5M (8 x 192, I 768); c: a, seed 7
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv

run() {
  local name=$1
  shift
  python3 tools/train_default_model.py --device "$DEVICE" --data-dir "$DATA" \
    --work-dir "/tmp/sweep_$name" --out "/tmp/sweep_$name/model" --steps "$STEPS" \
    --time-budget-min "$BUDGET" --eval-every 4000 --ckpt-every 2000 --log-every 500 "$@" \
    >"/tmp/sweep_$name.log" 2>&1
  python3 tools/eval_default_model.py --device "$DEVICE" --model "/tmp/sweep_$name/model" \
    --data-dir "$DATA" >>"/tmp/sweep_$name.log" 2>&1
}

for n in $RUNS; do
  case $n in
    a) run a --seed 1234 --batch 512 --lr 2e-3 --warmup 300 & ;;
    b) run b --seed 1234 --batch 512 --lr 1.5e-3 --warmup 300 --hidden 192 --heads 6 --inter 768 & ;;
    c) run c --seed 7 --batch 1024 --lr 3e-3 --warmup 300 & ;;
    *) echo "unknown run $n" ;;
  esac
done
wait

for n in $RUNS; do
  cp "/tmp/sweep_$n.log" "$OUT/$n.log"
  [ -d "/tmp/sweep_$n/model" ] || continue
  tar -C "/tmp/sweep_$n" -cf - model | xz -1 -T4 | split -b 15M - "$OUT/$n.tar.xz.part-"
done
for n in $RUNS; do
  echo "== $n"
  grep -E "^params|^device|^train rows" "/tmp/sweep_$n.log"
  grep -E "^step" "/tmp/sweep_$n.log" | tail -2
  grep -E "^done|Error|error" "/tmp/sweep_$n.log" | tail -3
  sed -n '/^task/,$p' "/tmp/sweep_$n.log"
done
ls -la "$OUT"
