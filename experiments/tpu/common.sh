# Shared settings of the TPU scripts (sourced, not run). Override any of them in the
# environment, e.g. `TPU_NAME=lt-v4-32 ZONE=us-central2-b BUCKET=gs://my-bucket ./launch.sh ...`.
# shellcheck shell=bash

: "${TPU_NAME:?set TPU_NAME, the TPU VM (slice) name}"
: "${ZONE:?set ZONE, the zone of the TPU (e.g. us-central2-b)}"
: "${BUCKET:?set BUCKET, a gs:// bucket holding TFDS data and (mounted) run directories}"
PROJECT="${PROJECT:-$(gcloud config get-value project 2>/dev/null)}"
ACCELERATOR_TYPE="${ACCELERATOR_TYPE:-v4-32}"           # v4-32: 4 hosts x 4 chips.
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"  # v5e: v2-alpha-tpuv5-lite.
REMOTE_DIR="${REMOTE_DIR:-lottery_jax}"                 # Project checkout on every worker (~/).
VENV="${VENV:-\$HOME/lottery_venv}"                     # Virtual environment on every worker.
MOUNT="${MOUNT:-/mnt/lottery}"                          # Where every worker mounts $BUCKET.
TFDS_DIR="${TFDS_DIR:-$BUCKET/tensorflow_datasets}"     # data.data_dir of TFDS configs.

# Run a command on every worker of the slice at once.
on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" \
    --worker=all --command="$1"
}

# Run a command on worker 0 only.
on_worker0() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" \
    --worker=0 --command="$1"
}
