#!/usr/bin/env bash
# Create the TPU slice (unless it exists), copy this checkout to every worker, install the
# project with JAX for TPU in a virtual environment, and mount $BUCKET at $MOUNT on every
# worker with gcsfuse (run directories must be visible to all workers: orbax writes each
# checkpoint from every process and reads it back from every process on resume). Orbax
# finishes a checkpoint by renaming its temporary directory, which gcsfuse refuses on a flat
# bucket unless --rename-dir-limit allows it (a bucket with hierarchical namespace renames
# natively). A preempted spot VM is deleted and created again: rerun this script, then the
# launch command, after a preemption.
#
#   TPU_NAME=lt ZONE=us-central2-b BUCKET=gs://my-bucket experiments/tpu/setup.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=experiments/tpu/common.sh
source "$HERE/common.sh"
ROOT="$(cd "$HERE/../.." && pwd)"

# A preempted (spot) or terminated VM cannot be restarted: delete it, then create it again.
state="$(gcloud compute tpus tpu-vm describe "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" \
  --format='value(state)' 2>/dev/null || true)"
if [[ "$state" == PREEMPTED || "$state" == TERMINATED ]]; then
  echo "$TPU_NAME is $state: deleting it to create it again" >&2
  gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" --quiet
  state=""
fi
if [[ -z "$state" ]]; then
  gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" \
    --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION" \
    ${SPOT:+--spot}
fi

# The committed tree of this checkout (no run directories, caches or virtual environments).
archive="$(mktemp --suffix=.tar.gz)"
trap 'rm -f "$archive"' EXIT
git -C "$ROOT" archive --format=tar.gz --prefix="$REMOTE_DIR/" -o "$archive" HEAD
gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:lottery_jax.tar.gz" --zone="$ZONE" \
  --project="$PROJECT" --worker=all

on_all_workers "set -e
rm -rf ~/$REMOTE_DIR && tar -xzf ~/lottery_jax.tar.gz -C ~
python3 -m venv $VENV
$VENV/bin/pip install -q -U pip
$VENV/bin/pip install -q -U 'jax[tpu]'
$VENV/bin/pip install -q -e ~/$REMOTE_DIR'[tfds]'
if ! command -v gcsfuse >/dev/null; then
  echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-\$(lsb_release -c -s) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null
  sudo apt-get update -q && sudo apt-get install -y -q gcsfuse
fi
sudo mkdir -p $MOUNT && sudo chown \$USER $MOUNT
mountpoint -q $MOUNT || gcsfuse --implicit-dirs --rename-dir-limit=200000 ${BUCKET#gs://} $MOUNT
$VENV/bin/python -c 'import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count())'"
echo "ready: $TPU_NAME ($ACCELERATOR_TYPE); runs go to $BUCKET/runs (mounted at $MOUNT/runs)"
