"""ConvNet-3 on CIFAR-100: distilled pruning against IMP, hybrid and random.

    python -m lottery_jax.main --config=configs/cifar100_convnet.py --workdir=runs/c100

Needs CIFAR-100 from TFDS (or --config.data.source=<folder or .tar.gz of class folders>). The
run first distils CIFAR-100 with DM in the run directory (10 images per class, the DM settings
of configs/cifar10_convnet.py; --config.distilled.source=<file.npz> prunes with another set).
Recipes and schedule as configs/cifar10_convnet.py: roughly 1-2 hours per replicate on one
modern GPU (estimate), plus the distillation. Variants (configs/presets.py): `:smoke`,
`:rewind` (the `:cpu` preset prunes with the CIFAR-10 set, so it is not offered here).
"""

from lottery_jax import config_files

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py


_VARIANTS = {k: presets.LOTTERY_VARIANTS[k] for k in ("smoke", "rewind")}


def get_config(arg=None):
  c = presets.cifar_base("cifar100")
  presets.variant(c, arg, _VARIANTS)
  c.lock()
  return c
