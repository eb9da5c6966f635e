"""ConvNet-3 on CIFAR-10: distilled pruning against IMP, hybrid and random (paper Fig. 2).

    python -m lottery_jax.main --config=configs/cifar10_convnet.py --workdir=runs/c10

reads CIFAR-10 from TFDS; without TFDS downloads, use the class-folder archive instead:

    python -m lottery_jax.main --config=configs/cifar10_convnet.py \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10

Recipes: `lottery_jax.default_config.cifar_base` (the authors' real-data recipe, 100 epochs =
19,500 steps; dense ConvNet-3 should reach about 86-88%). Distilled pruning trains each round
on the published MTT set (100 images in ZCA space, read from ../shared/data relative to the
repository root) for 1,000 epochs. 10 rounds (89% sparsity), 2 replicates.

A full run trains about 35 real-data networks per replicate (dense, IMP, distilled, hybrid's
IMP rounds, random; 19,500 steps each) and 18 distilled ones (1,000 steps each): roughly 1-2
hours per replicate on one modern GPU (estimated from FLOPs, ~1.5e15 per real training; not
measured). It writes results.json, figures/accuracy_vs_sparsity.png,
figures/data_points_vs_sparsity.png and report.md.

CPU smoke run (one round of each producer; about 5 minutes on 2 cores):
    --config.train.num_steps=20 --config.distilled.train.num_steps=10 \
    --config.lottery.rounds=1 --config.lottery.hybrid_syn_rounds=1 --config.lottery.replicates=1
"""

from lottery_jax import default_config


def get_config():
  c = default_config.cifar_base("cifar10")
  c.distilled.source = "../shared/data/cifar10_ipc10_mtt.npz"
  # The MTT set lives in ZCA space (eps 0.1): the real data must be whitened the same way
  # (checked when the set is loaded; a mismatch is refused).
  c.data.preprocess = "zca"
  c.data.zca_eps = 0.1
  c.lock()
  return c
