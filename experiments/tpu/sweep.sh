#!/usr/bin/env bash
# Many configs x seeds as separate jobs, one after another on the slice (each job uses every
# worker; a finished job is skipped by the next sweep, a killed one resumes). Waits for each
# job by polling its log on worker 0.
#
#   TPU_NAME=lt ZONE=us-central2-b BUCKET=gs://my-bucket \
#     experiments/tpu/sweep.sh "configs/cifar10_convnet.py configs/cifar100_convnet.py" "0 1 2"
#
# Each job NAME is <config basename>-s<seed>, run with every named seed set to <seed>; extra
# arguments after the two lists are passed to every job.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=experiments/tpu/common.sh
source "$HERE/common.sh"
[[ $# -ge 2 ]] || { echo "usage: $0 'CONFIG ...' 'SEED ...' [--config.<field>=value ...]" >&2; exit 2; }
read -r -a configs <<< "$1"
read -r -a seeds <<< "$2"
shift 2
POLL_S="${POLL_S:-120}"

for config in "${configs[@]}"; do
  for seed in "${seeds[@]}"; do
    name="$(basename "$config" .py)-s$seed"
    seed_flags=()
    # Every named seed (lottery_jax/config_blocks.py seeds(); tests/test_tpu_scripts.py checks).
    for s in init data_order augment pruning distill probes split analysis; do
      seed_flags+=("--config.seeds.$s=$seed")
    done
    "$HERE/launch.sh" "$name" "$config" "${seed_flags[@]}" "$@"
    # Done when no worker-0 process of this job is left; its exit status is in the log.
    while on_worker0 "pgrep -f -- '--workdir=$MOUNT/runs/$name( |\$)' >/dev/null"; do
      sleep "$POLL_S"
    done
    if on_worker0 "test -f $MOUNT/runs/$name/results.json"; then
      echo "$name: done ($BUCKET/runs/$name/results.json)"
    else
      echo "$name: FAILED; see ~/$name.log on worker 0:" >&2
      on_worker0 "tail -n 3 ~/$name.log" >&2 || true
    fi
  done
done
