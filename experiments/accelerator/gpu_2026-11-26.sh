#!/usr/bin/env bash
# One accelerator session (2026-11-26, ~9 minutes on one H200): the CIFAR-10 cpu-preset
# lottery runs that experiments/ draws from, and the DM settings tried for the committed
# distilled sets, in three lanes on one GPU. Each run's directory (without checkpoints) is
# packed into $OUT/<lane>.tar.gz after every run, so a time-out keeps what finished.
#
#   OUT=/tmp/out DATA=.gpu bash experiments/accelerator/gpu_2026-11-26.sh
#
# DATA holds cifar10-jpeg.tar.gz and cifar10_ipc10_mtt.npz (../shared/data/README.md).
set -uo pipefail
. "$(dirname "$0")/common.sh"  # Repository root, OUT, DATA, PY, C10, machine.log, run, pack.
LIMIT=${LIMIT:-530}
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.28

run() {  # run LANE NAME ARGS...: one lottery_jax.main run into /tmp/runs/NAME, then pack LANE
  local lane=$1 name=$2; shift 2
  local began=$SECONDS
  echo "=== $name: $*" >> "/tmp/runs/$lane.log"
  $PY -m lottery_jax.main "$@" --workdir="/tmp/runs/$name" >> "/tmp/runs/$lane.log" 2>&1
  echo "=== $name: exit $? after $((SECONDS - began)) s" >> "/tmp/runs/$lane.log"
  tar -C /tmp/runs --exclude=checkpoints --exclude=lock -czf "$OUT/$lane.tar.gz" \
    $(cd /tmp/runs && ls -d ${lane}_* "$lane.log" 2>/dev/null)
}

lane1() {  # The cpu preset (experiments/ 'cpu'): main run, then IMP with rewinding.
  run lane1 lane1_c10_cpu --config=configs/cifar10_convnet.py:cpu $C10 \
      --config.distilled.source=$DATA/cifar10_ipc10_mtt.npz
  run lane1 lane1_c10_cpu_rewind --config=configs/cifar10_convnet.py:cpu,rewind $C10 \
      --config.distilled.source=$DATA/cifar10_ipc10_mtt.npz
}
DM="--config=configs/distill_cifar10_dm.py $C10"
lane2() {  # DM as committed (zca, blocks, lr 1, 64 real/class, 2,500 its), head-only, ipc 1.
  run lane2 lane2_dm_ipc10_blocks $DM
  run lane2 lane2_dm_ipc10_head $DM --config.distill.dm.layers=head
  run lane2 lane2_dm_ipc1_blocks $DM --config.distill.images_per_class=1
}
lane3() {  # DM in DM's own space (mean/std), with more real images per iteration, ipc 50.
  run lane3 lane3_dm_ipc10_standardize $DM --config.data.preprocess=standardize
  run lane3 lane3_dm_ipc10_real128 $DM --config.distill.dm.per_class_real=128 \
      --config.distill.dm.iterations=1250
  run lane3 lane3_dm_ipc50_blocks $DM --config.distill.images_per_class=50
}
export -f run lane1 lane2 lane3; export OUT DATA PY C10 DM
timeout --kill-after=5 "$LIMIT" bash -c lane1 & timeout --kill-after=5 "$LIMIT" bash -c lane2 &
timeout --kill-after=5 "$LIMIT" bash -c lane3 &
wait
for lane in lane1 lane2 lane3; do  # Pack again: a lane cut off mid-run keeps its partial dir.
  tar -C /tmp/runs --exclude=checkpoints --exclude=lock -czf "$OUT/$lane.tar.gz" \
    $(cd /tmp/runs && ls -d ${lane}_* "$lane.log" 2>/dev/null)
  grep "^===" "/tmp/runs/$lane.log"
done
du -sh "$OUT"/*
