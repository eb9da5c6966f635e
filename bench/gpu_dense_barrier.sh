#!/usr/bin/env bash
# The dense network's linear-mode-connectivity barrier against training length (GPU, ~4 min).
#
# The paper's LMC claims need the regime where two copies of the dense ConvNet-3 trained from
# one init on two data orders are NOT linearly connected; a CPU calibration at 2 epochs found
# every network connected. This measures the dense barrier of configs/cifar10_convnet.py's
# real-data recipe (Adam, lr schedule scaled to the length) at several lengths, with and
# without the pad-4 crop + flip augmentation, one replicate each.
#
#   DATA=../shared/data OUT=/tmp/out bash bench/gpu_dense_barrier.sh
#   (env RUNS="epochs:augment ..." overrides the default grid "10:0 30:0 100:0 30:1")
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/gpu_out}
DATA=${DATA:-../shared/data}
PY=${PYTHON:-python3}
RUNS=${RUNS:-"10:0 30:0 100:0 30:1"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-5}
root=$(mktemp -d)
for run in $RUNS; do
  epochs=${run%%:*}; augment=${run##*:}
  pad=0; flip=False; if [ "$augment" = 1 ]; then pad=4; flip=True; fi
  began=$SECONDS
  timeout --signal=INT 150 $PY -m lottery_jax.main --config=configs/cifar10_convnet.py \
    --config.data.source="$DATA/cifar10-jpeg.tar.gz" --config.lottery.producers='()' \
    --config.stability.analyses='("lmc",)' --config.lottery.replicates=1 \
    --config.train.epochs="$epochs" --config.data.crop_padding=$pad --config.data.flip=$flip \
    --config.data.preprocess=standardize \
    --config.stability.point_batch=16 --workdir="$root/e${epochs}_a${augment}" \
    >"$OUT/dense_e${epochs}_a${augment}.log" 2>&1
  echo "epochs $epochs augment $augment: exit $? after $((SECONDS - began)) s"
done
echo
echo "| epochs | crop+flip | test accuracy (A) | train loss barrier (max) | train loss barrier (midpoint) | test error barrier (max, points) |"
echo "|---:|---|---:|---:|---:|---:|"
for run in $RUNS; do
  epochs=${run%%:*}; augment=${run##*:}
  $PY - "$root/e${epochs}_a${augment}/results.json" "$epochs" "$augment" <<'PYEOF' || echo "| $epochs | $augment | (no results) | | | |"
import json, sys
r = json.load(open(sys.argv[1]))
d = r["stability"]["lmc"]["dense"][0]
acc = r["producers"]["dense"][0]["accuracy_mean"]
print(f"| {sys.argv[2]} | {'yes' if sys.argv[3] == '1' else 'no'} | {100 * acc:.2f} | "
      f"{d['train_loss_barrier']:.4f} | {d['train_loss_midpoint_barrier']:.4f} | "
      f"{100 * d['test_error_barrier']:.2f} |")
PYEOF
done
