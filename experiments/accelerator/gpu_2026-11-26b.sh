#!/usr/bin/env bash
# Second accelerator call (2026-11-26, H200): the dense network's LMC barrier against the
# cpu preset's knobs (width, train subset, epochs, batch size), DM settings for ipc 10 and the
# ipc 1 / 50 sets with the chosen method (head matching), and the main cpu-preset run with
# batch 64. Same packing as gpu_2026-11-26.sh (results only: no checkpoints, no eval dirs).
set -uo pipefail
. "$(dirname "$0")/common.sh"  # Repository root, OUT, DATA, PY, C10, machine.log, run, pack.
LIMIT=${LIMIT:-400}
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
MTT="--config.distilled.source=$DATA/cifar10_ipc10_mtt.npz"  # Before the ZCA default.
DENSE="--config=configs/cifar10_convnet.py:cpu $C10 $MTT --config.lottery.producers=() --config.stability.analyses=('lmc',)"
lane1() {  # Dense LMC pairs: barrier against the preset's knobs.
  run lane1 lane1_w32_n20k_e10_b256 $DENSE
  run lane1 lane1_w32_n20k_e10_b64 $DENSE --config.train.batch_size=64
  run lane1 lane1_w32_n20k_e20_b128 $DENSE --config.train.batch_size=128 --config.train.epochs=20
  run lane1 lane1_w32_n50k_e10_b256 $DENSE --config.data.train_examples=0
  run lane1 lane1_w64_n20k_e10_b256 $DENSE --config.model.options.width=64
  run lane1 lane1_w128_n20k_e10_b256 $DENSE --config.model.options.width=128
  run lane1 lane1_w32_n20k_e30_b256 $DENSE --config.train.epochs=30
  run lane1 lane1_w32_n20k_e10_b256_aug $DENSE --config.data.crop_padding=4 --config.data.flip=True
}
DM="--config=configs/distill_cifar10_dm.py $C10 --config.distill.dm.layers=head"
lane2() {
  run lane2 lane2_dm_ipc1_head $DM --config.distill.images_per_class=1
  run lane2 lane2_dm_ipc10_head_standardize $DM --config.data.preprocess=standardize
}
lane3() {
  run lane3 lane3_dm_ipc50_head $DM --config.distill.images_per_class=50
  run lane3 lane3_dm_ipc10_head_lr3 $DM --config.distill.dm.learning_rate=3.0
}
lane4() {  # The cpu preset with batch 64 (4x the steps of batch 256 per epoch).
  run lane4 lane4_c10_cpu_b64 --config=configs/cifar10_convnet.py:cpu $C10 $MTT \
      --config.train.batch_size=64
}
export -f pack run lane1 lane2 lane3 lane4; export OUT DATA PY C10 MTT DENSE DM
for l in lane1 lane2 lane3 lane4; do timeout --kill-after=5 "$LIMIT" bash -c $l & done
wait
for l in lane1 lane2 lane3 lane4; do pack $l; grep "^===" "/tmp/runs/$l.log"; done
du -sh "$OUT"/*
