"""Evaluate the published MTT set (CIFAR-10, 10 images per class) with the project's
distilled-training recipe, next to random real subsets of the same size.

    python -m lottery_jax.main --config=configs/distill_cifar10_mtt.py --workdir=runs/mtt_eval

Reads ../shared/data/cifar10_ipc10_mtt.npz and the CIFAR-10 JPEG archive beside it (paths
relative to the repository root). The set lives in ZCA space (eps 0.1 on [0, 1] pixels), so
the real train and test images are ZCA-whitened the same way. 3 ConvNet-3s (instance norm)
are trained on the 100 images for 1,000 epochs (SGD lr 0.01, momentum 0.9, weight decay
5e-4, lr x0.1 at half-way, batch 256, DSA colour/crop/cutout/flip/scale/rotate per
example), and 3 on random subsets; expect about the MTT paper's 65.3 +- 0.7% for this set.
Minutes per network on 2 CPU cores. `:smoke`: one evaluation seed of 20 steps.
"""

from lottery_jax import config_files
from lottery_jax import default_config

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py


def get_config(arg=None):
  c = default_config.distill_base()
  c.experiment = "distill"
  c.data.source = "../shared/data/cifar10-jpeg.tar.gz"
  c.data.preprocess = "zca"  # What the set's metadata declares; checked on load.
  c.distilled.source = "../shared/data/cifar10_ipc10_mtt.npz"
  d = c.distill
  d.method = "published"
  d.eval_train = default_config.distilled_recipe(epochs=1000.0, batch_size=256,
                                                 log_every=100, checkpoint_every=250)
  presets.variant(c, arg, presets.DISTILL_VARIANTS)
  c.lock()
  return c
