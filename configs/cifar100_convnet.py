"""ConvNet-3 on CIFAR-100: distilled pruning against IMP, hybrid and random.

    python -m lottery_jax.main --config=configs/cifar100_convnet.py --workdir=runs/c100

Needs CIFAR-100 from TFDS (or --config.data.source=<folder or .tar.gz of class folders>). The
run first distils CIFAR-100 with DM in the run directory (10 images per class, the DM settings
of configs/cifar10_convnet.py; --config.distilled.source=<file.npz> prunes with another set).
Recipes and schedule as configs/cifar10_convnet.py: roughly 1-2 hours per replicate on one
modern GPU (estimate), plus the distillation.
"""

from lottery_jax import default_config


def get_config(arg=None):
  c = default_config.cifar_base("cifar100")
  default_config.variant(c, arg)
  c.lock()
  return c
