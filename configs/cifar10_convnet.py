"""ConvNet-3 on CIFAR-10: distilled pruning against IMP, hybrid and random (paper Figs. 3, 5,
6 (its ConvNet-3 / CIFAR-10 points) and 7, and the Hessian table).

    python -m lottery_jax.main --config=configs/cifar10_convnet.py --workdir=runs/c10

reads CIFAR-10 from TFDS; without TFDS downloads, use the class-folder archive instead:

    python -m lottery_jax.main --config=configs/cifar10_convnet.py \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10

Recipes: `presets.cifar_base` (configs/presets.py: our Adam base recipe, 100 epochs
= 19,500 steps, no augmentation, mean/std normalisation). The run first distils CIFAR-10 with
DM (10 images per class, 2,500 iterations of 64 real images per class, as
configs/distill_cifar10_dm.py, whose results page gives its accuracy; distilled.npz and
figures/distilled.png in the run directory), then distilled pruning trains each round on it
for 1,000 epochs with DSA. 12 rounds (93% sparsity), hybrid = 8 distilled rounds then IMP,
landscapes and Hessians at 59% and 89%, 4 replicates, each with its LMC copies.

Another set instead of distilling in the run: the project's committed DM set (the same
settings, made with width 128; experiments/results/distilled/README.md)
    --config.distilled.source=experiments/results/distilled/cifar10_dm_ipc10.npz
or the published MTT set (100 images in ZCA space, eps 0.1: the real data must be whitened the
same way, else the run is refused before any work)
    --config.distilled.source=../shared/data/cifar10_ipc10_mtt.npz --config.data.preprocess=zca

A full run trains about 41 real-data networks per replicate (dense, IMP, distilled, hybrid's
IMP rounds, random; 19,500 steps each), as many LMC copies B, and 12 distilled ones (1,000
steps each): expect about an hour and a quarter per replicate on one modern GPU (bench/README.md,
"On a GPU", has the per-network times measured), plus the distillation, and a dense network
whose LMC barrier is clearly above zero at 100 epochs. It writes results.json, figures/ and
report.md.

Variants (configs/presets.py): `:smoke` (a CPU smoke run of every stage: width 32, 10 DM
iterations, one round of each producer, 20 steps; minutes on 2 cores, docs/benchmarks.md), `:cpu`
(the experiments' cpu preset), `:rewind` (IMP with weight rewinding only), `:authors` (real
training as the authors' public code: SGD 0.01, batch 64, 300 epochs, DiffAug + CutMix;
`:cpu,authors` gives it 10 epochs at width 32), comma-separated:
    python -m lottery_jax.main --config=configs/cifar10_convnet.py:smoke \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10_smoke
"""

from lottery_jax import config_files

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py


def get_config(arg=None):
  c = presets.cifar_base("cifar10")
  presets.variant(c, arg, presets.LOTTERY_VARIANTS)
  c.lock()
  return c
