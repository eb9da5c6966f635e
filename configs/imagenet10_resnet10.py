"""ResNet-10 (IDC's ResNetAP-10: average-pool downsampling) on ImageNet-10: distilled pruning
against IMP, hybrid and random (paper Fig. 4, and its ImageNet-10 points of Fig. 6).

    python -m lottery_jax.main --config=configs/imagenet10_resnet10.py \
        --config.data.source=<ImageNet-10 folder or .tar.gz> \
        --config.distilled.source=<IDC ImageNet-10 set as .npz> --workdir=runs/in10

Paper scale only: 13,000 training images of 224 x 224 (see experiments/fig4.py for how to
export the 10 classes from TFDS imagenet2012 into the class-folder layout, and the class
list). Recipes, rounds and analyses as configs/cifar10_convnet.py (presets.cifar_base), with
mean/std normalisation. Without a distilled .npz the distilled producer
prunes on a class-balanced random real subset of 10 images per class (labelled as such in the
report). Not run here; roughly tens of GPU hours (an estimate). Variants `:smoke`, `:rewind`
(configs/presets.py).
"""

import ml_collections

from lottery_jax import config_files

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py

_VARIANTS = {k: presets.LOTTERY_VARIANTS[k] for k in ("smoke", "rewind")}


def get_config(arg=None):
  c = presets.cifar_base("../shared/data/imagenet10")
  c.distilled.source = "random_subset"
  c.model.name = "resnet10_ap"
  c.model.options = ml_collections.ConfigDict(dict(width=64))
  presets.variant(c, arg, _VARIANTS)
  c.lock()
  return c
