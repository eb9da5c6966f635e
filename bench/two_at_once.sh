#!/usr/bin/env bash
# Two CIFAR-10 trainings on a 2-core machine: both at once, each pinned to one core with a
# one-threaded XLA:CPU ('together'), against one after the other, each free to use both cores
# ('sequential'). Time the two modes against each other with /usr/bin/time (bench/README.md,
# "Two runs at once"); each training is the dense network of the cpu preset's authors recipe
# (`configs/cifar10_convnet.py:cpu,authors`, width 32, batch 64), STEPS steps, in a fresh run dir.
#   bash bench/two_at_once.sh together|sequential [STEPS]
set -euo pipefail
mode=${1:?usage: bash bench/two_at_once.sh together|sequential [STEPS]}
steps=${2:-400}
data=${DATA:-../shared/data/cifar10-jpeg.tar.gz}
cd "$(dirname "$0")/.."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
train() {  # $1: run name, then any env assignments via the caller.
  python -m lottery_jax.main --config=configs/cifar10_convnet.py:cpu,authors \
    --config.data.source="$data" --config.train.num_steps="$steps" \
    --config.lottery.producers="()" --config.stability.analyses="()" \
    --workdir="$root/$1" > "$root/$1.log" 2>&1
}
case "$mode" in
  together)
    one_thread="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    XLA_FLAGS="$one_thread" taskset -c 0 bash -c "$(declare -f train); root=$root \
      steps=$steps data=$data train a" &
    XLA_FLAGS="$one_thread" taskset -c 1 bash -c "$(declare -f train); root=$root \
      steps=$steps data=$data train b" &
    wait -n && wait -n ;;
  sequential)
    train a
    train b ;;
  *) echo "bench/two_at_once.sh: mode must be 'together' or 'sequential', got '$mode'" >&2
     exit 2 ;;
esac
