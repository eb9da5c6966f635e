# Shared set-up of the scripts in experiments/accelerator/ (source it first):
#
#   . "$(dirname "$0")/common.sh"
#
# Moves to the repository root and sets OUT (what comes back from the machine, default
# /tmp/gpu_out), DATA (cifar10-jpeg.tar.gz and cifar10_ipc10_mtt.npz, default ../shared/data),
# PY (python3), RUNS (/tmp/runs: run directories), C10 (the CIFAR-10 archive and a decode
# cache) and MTT (the published MTT set in its ZCA space); writes $OUT/machine.log. Functions:
#   run LANE NAME ARGS...   one `python -m lottery_jax.main ARGS` into $RUNS/NAME, logged with
#                           its exit status and seconds in $RUNS/LANE.log, then `pack LANE`
#   pack LANE               the results of $RUNS/LANE_* (no checkpoints) into $OUT/LANE.tar.gz
#                           (a script may define its own pack after sourcing this file)
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
OUT=${OUT:-/tmp/gpu_out}; DATA=${DATA:-../shared/data}; PY=${PYTHON:-python3}
RUNS=${RUNS:-/tmp/runs}
export OUT DATA PY RUNS  # For lanes run as `bash -c lane` (functions exported by the script).
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=15
{ date -u +"date %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  $PY -c "import jax, sys; print('python', sys.version.split()[0], 'jax', jax.__version__, jax.devices())"
} > "$OUT/machine.log" 2>&1
C10="--config.data.source=$DATA/cifar10-jpeg.tar.gz --config.data.cache_dir=/tmp/ljcache"
MTT="--config.distilled.source=$DATA/cifar10_ipc10_mtt.npz --config.data.preprocess=zca --config.data.zca_eps=0.1"

pack() {
  (cd "$RUNS" && find ${1}_* \( -name 'result*.json' -o -name report.md -o -name distilled.npz \
     -o -name '*.png' -o -name 'seed_*.json' -o -name config.json -o -name 'lmc.json' \
     -o -name 'hessian.json' -o -name 'landscape.npz' -o -name 'mask*.json' -o -name mask.npz \
     -o -name metrics.jsonl \) -not -path '*/checkpoints/*' 2>/dev/null \
     | tar -czf "$OUT/$1.tar.gz" -T - "$1.log")
}

run() {
  local lane=$1 name=$2; shift 2
  local began=$SECONDS
  echo "=== $name: $*" >> "$RUNS/$lane.log"
  $PY -m lottery_jax.main "$@" --workdir="$RUNS/$name" >> "$RUNS/$lane.log" 2>&1
  echo "=== $name: exit $? after $((SECONDS - began)) s" >> "$RUNS/$lane.log"
  pack "$lane"
}
