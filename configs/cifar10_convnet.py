"""ConvNet-3 on CIFAR-10: distilled pruning against IMP, hybrid and random (paper Figs. 3, 5,
6 (its ConvNet-3 / CIFAR-10 points) and 7, and the Hessian table).

    python -m lottery_jax.main --config=configs/cifar10_convnet.py --workdir=runs/c10

reads CIFAR-10 from TFDS; without TFDS downloads, use the class-folder archive instead:

    python -m lottery_jax.main --config=configs/cifar10_convnet.py \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10

Recipes: `lottery_jax.default_config.cifar_base` (the authors' real-data recipe, 100 epochs =
19,500 steps, no augmentation, mean/std normalisation). The run first distils CIFAR-10 with
DM (10 images per class, 2,500 iterations of 64 real images per class, as
configs/distill_cifar10_dm.py: 47.9% when evaluated alone; distilled.npz and
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
steps each): about 75 minutes per replicate on one H200 (measured: 50 s per 100-epoch real
training, 3.4 s per distilled one without DSA; bench/README.md, "On a GPU"), 5 hours for the
4 replicates, plus the distillation (the committed set's took 20-30 s there). The dense
network's LMC barrier at 100 epochs is 0.46 in train loss there. It writes results.json,
figures/ and report.md.

CPU smoke run of every stage (variant `smoke`, default_config.cpu_smoke: width 32, 10 DM
iterations, one round of each producer, 20 steps; 11:00 min wall and 2.2 GB peak RSS on 2
cores loaded by other jobs, 240 s of CPU, 2026-11-26):
    python -m lottery_jax.main --config=configs/cifar10_convnet.py:smoke \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10_smoke
"""

from lottery_jax import default_config


def get_config(arg=None):
  c = default_config.cifar_base("cifar10")
  default_config.variant(c, arg)
  c.lock()
  return c
