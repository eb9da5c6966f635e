#!/usr/bin/env bash
# Prepare TFDS datasets once into $TFDS_DIR (gs://) from worker 0, so that every worker of
# every run only reads them (preparing from several workers at once would race).
#
#   TPU_NAME=lt ZONE=us-central2-b BUCKET=gs://my-bucket experiments/tpu/prepare_data.sh cifar10 cifar100
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=experiments/tpu/common.sh
source "$HERE/common.sh"
[[ $# -ge 1 ]] || { echo "usage: $0 DATASET [DATASET ...] (TFDS names, e.g. cifar10)" >&2; exit 2; }

for name in "$@"; do
  on_worker0 "$VENV/bin/python -c \"import tensorflow_datasets as tfds; tfds.builder('$name', data_dir='$TFDS_DIR').download_and_prepare()\""
done
