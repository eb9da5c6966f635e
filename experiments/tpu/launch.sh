#!/usr/bin/env bash
# Start one run on every worker of the slice, detached (it keeps running after this script and
# the ssh sessions end). JAX finds the other workers itself on a TPU slice (no
# --coordinator_address needed); the run directory is $MOUNT/runs/NAME (= $BUCKET/runs/NAME).
#
#   experiments/tpu/launch.sh NAME CONFIG [--config.<field>=value ...]
#   TPU_NAME=lt ZONE=us-central2-b BUCKET=gs://my-bucket \
#     experiments/tpu/launch.sh c10-s0 configs/cifar10_convnet.py --config.seeds.init=0
#
# Rerunning the same command resumes a killed or preempted run. Logs: ~/NAME.log on every
# worker (worker 0's has the progress and the summary); follow with
#   gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE --worker=0 --command='tail -f ~/NAME.log'
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=experiments/tpu/common.sh
source "$HERE/common.sh"
[[ $# -ge 2 ]] || { echo "usage: $0 NAME CONFIG [--config.<field>=value ...]" >&2; exit 2; }
name="$1"
config="$2"
shift 2
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "NAME must be letters, digits, . _ -: $name" >&2; exit 2; }

overrides=""
for arg in "$@"; do
  overrides+=" $(printf '%q' "$arg")"
done
# TFDS configs read the prepared data from the bucket; folder/.tar.gz sources ignore data_dir.
command="cd ~/$REMOTE_DIR && mkdir -p $MOUNT/runs && \
setsid nohup $VENV/bin/python -m lottery_jax.main --config=$(printf '%q' "$config") \
--config.data.data_dir=$TFDS_DIR --workdir=$MOUNT/runs/$name$overrides \
> ~/$name.log 2>&1 < /dev/null &"
on_all_workers "$command"
echo "started $name on every worker of $TPU_NAME; results: $BUCKET/runs/$name/results.json"
