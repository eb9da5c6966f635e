#!/usr/bin/env bash
# One prepared accelerator run (at most ~8 minutes): every bench/ measurement that needs a GPU,
# then a summary. Each part has its own time limit and the script goes on when one fails, so a
# single run always reports what it could measure.
#
#   bash bench/gpu.sh                       # data from ../shared/data, log under bench/gpu_out/
#   OUT=/some/dir DATA=/path/to/data bash bench/gpu.sh
#
# Parts (limits in seconds):
#   1. step      bench/train_step.py: the masked ConvNet-3 step, lottery_jax against PyTorch
#                eager and torch.compile on the same GPU (batch 256)                 (120)
#   2. pruning   bench/pruning_cost.py --scale=1 --rounds=1: one round of IMP (19,500 steps of
#                batch 256 = 100 epochs, a paper-scale ConvNet-3 CIFAR-10 training) and one of
#                distilled pruning (1,000 steps on the 100 MTT images), full schedules  (200)
#   3. analysis  bench/analysis_throughput.py at accelerator size (LMC, landscape, Hutchinson) (60)
#   4. cli       python -m lottery_jax.main, dense ConvNet-3 on CIFAR-10 for 5 epochs (975
#                steps), with data loading, checkpoints and evaluation: the end-to-end path (90)
#   5. paired    bench/paired_training.py: an LMC pair trained together (vmapped) against one
#                after another, batch 256 (what train.pairs_together=auto picks) (60)
#   6. hutch     bench/hutchinson_mlp.py and analysis_throughput.py with the default probe
#                blocking (2,000 probes on a small MLP; ConvNet-3 probe cost)          (60)
# PARTS="step pruning analysis cli paired hutch" (the default) chooses which parts run.
# DATA must hold cifar10-jpeg.tar.gz and cifar10_ipc10_mtt.npz (../shared/data/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/gpu_out}
DATA=${DATA:-../shared/data}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# JAX and torch share the GPU inside bench/train_step.py: let JAX take 40%, not 75%.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.4}
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-5}

PARTS=${PARTS:-"step pruning analysis cli paired hutch"}

part() {  # part NAME LIMIT COMMAND...: run with a time limit, log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  case " $PARTS " in *" $name "*) ;; *) return 0 ;; esac
  echo "=== $name (limit ${limit}s): $*"
  local began=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - began)) s"
  tail -n 25 "$OUT/$name.log"
}

{
  date -u +"date %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  $PY -c "import jax, sys; print('python', sys.version.split()[0], 'jax', jax.__version__, jax.devices())"
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" 2>&1 || true
} | tee "$OUT/machine.log"

part step 120 $PY bench/train_step.py --batch_size 256 --steps 20 --rounds 5 --warmup 3
part pruning 200 $PY bench/pruning_cost.py --scale=1 --rounds=1 \
  --data="$DATA/cifar10-jpeg.tar.gz" --distilled="$DATA/cifar10_ipc10_mtt.npz"
part analysis 60 $PY bench/analysis_throughput.py --num_images 10000 --points 32 \
  --chunk_size 1000 --point_batch 8 --probes 32 --probe_batch 8 --hessian_batch 256
part cli 90 $PY -m lottery_jax.main --config=configs/cifar10_convnet.py \
  --config.data.source="$DATA/cifar10-jpeg.tar.gz" --config.lottery.producers='()' \
  --config.stability.analyses='()' --config.lottery.replicates=1 \
  --config.train.num_steps=975 --workdir="$(mktemp -d)/cli_run"
part paired 60 $PY bench/paired_training.py --batch_size 256 --steps 20 --rounds 5
part hutch 60 bash -c "$PY bench/hutchinson_mlp.py && $PY bench/analysis_throughput.py \
  --num_images 2000 --points 8 --chunk_size 1000 --probes 32 --hessian_batch 256"

echo
echo "=== summary"
grep -h -E "^(machine|python|torch|ratio|lottery_jax |torch |torch.compile |imp |distilled |schedules|\| |cifar10|together|sequential|default)" \
  "$OUT"/*.log 2>/dev/null
grep -h -E "^cifar10" "$OUT"/cli.log 2>/dev/null | tail -n 1 || true
