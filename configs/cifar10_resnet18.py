"""ResNet-18 (CIFAR stem) on CIFAR-10: distilled pruning against IMP and random (paper Fig. 2).

    python -m lottery_jax.main --config=configs/cifar10_resnet18.py \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10_r18

Same recipes and rounds as configs/cifar10_convnet.py; distilled pruning uses the project's DM
set distilled with ConvNet-3 (experiments/results/distilled/cifar10_dm_ipc10.npz, committed in
the repository; mean/std normalisation), so this also tests its transfer across architectures
(--config.distilled.source=dm distils with ResNet-18 in the run instead); Fig. 2 averages the 4
replicates. A full run trains about 35
ResNet-18s per replicate for 19,500 steps each: roughly 5-10 hours per replicate on one modern
GPU (estimated from ~0.56 GFLOP per image forward; not measured). Dense ResNet-18 with this
recipe should reach about 92-94%. Variants as configs/cifar10_convnet.py: `:smoke`, `:cpu`,
`:rewind`.
"""

import ml_collections

from lottery_jax import config_files

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py


def get_config(arg=None):
  c = presets.cifar_base("cifar10")
  c.distilled.source = presets.COMMITTED_DM_SET
  c.model.name = "resnet18"
  c.model.options = ml_collections.ConfigDict(dict(width=64))
  presets.variant(c, arg, presets.LOTTERY_VARIANTS)
  c.lock()
  return c
