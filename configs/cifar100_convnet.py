"""ConvNet-3 on CIFAR-100: distilled pruning against IMP, hybrid and random.

    python -m lottery_jax.main --config=configs/cifar100_convnet.py --workdir=runs/c100

Needs CIFAR-100 from TFDS (or --config.data.source=<folder or .tar.gz of class folders>) and a
distilled CIFAR-100 set: --config.distilled.source=<file.npz> (make one with
configs/distill_*.py once available). Until then the default is a class-balanced random real
subset of 10 images per class, labelled as such in the report. Recipes and schedule as
configs/cifar10_convnet.py: roughly 1-2 hours per replicate on one modern GPU (estimate).
"""

from lottery_jax import default_config


def get_config(arg=None):
  c = default_config.cifar_base("cifar100")
  c.distilled.source = "random_subset"
  default_config.variant(c, arg)
  c.lock()
  return c
