"""Dataset distillation on CIFAR-10 with IDC (gradient matching with multi-formation), 10
images per class, on ConvNet-3; the method the distilled-pruning paper uses.

    python -m lottery_jax.main --config=configs/distill_cifar10.py \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/distill_c10

Settings follow IDC's CIFAR-10 recipe where it is public: multi-formation factor 2 (each of
the 10 stored images per class decodes into 4 training images), ZCA whitening, l1 gradient
matching on the conv layers with 64 real images per class, 2,000 iterations, the matching
network trained 50 SGD steps per iteration and re-initialised every 10 iterations; DSA on
both sides. Then 3 fresh ConvNet-3s are trained on the 400 decoded images for 1,000 epochs
(SGD lr 0.01, momentum 0.9, DSA) and compared with random real subsets of 10 images per
class. Write `--config.distill.method=dm` for distribution matching (its block
`config.distill.dm`; the DM paper runs 20,000 iterations at 256 real images per class).

Meant for an accelerator: one iteration is ~10 real gradient evaluations per class plus the
network's SGD steps (bench/distill_step.py measures it). A CPU smoke run: the variant
`configs/distill_cifar10.py:smoke` (configs/presets.py: 4 iterations, 2 network steps, one
evaluation seed of 20 steps).
"""

from lottery_jax import config_files
from lottery_jax import default_config

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py


def get_config(arg=None):
  c = default_config.distill_base()
  c.experiment = "distill"
  c.data.source = "cifar10"
  c.data.preprocess = "zca"
  c.data.zca_eps = 0.1
  d = c.distill
  d.method = "idc"
  d.images_per_class = 10
  d.checkpoint_every = 100
  d.idc.iterations = 2000
  d.idc.learning_rate = 0.005
  d.idc.momentum = 0.5
  d.idc.per_class_real = 64
  d.idc.factor = 2
  d.idc.net_steps = 50
  d.idc.net_batch = 256
  d.idc.reinit_every = 10
  d.eval_train = default_config.distilled_recipe(epochs=1000.0, batch_size=256,
                                                 log_every=100, checkpoint_every=1000)
  presets.variant(c, arg, presets.DISTILL_VARIANTS)
  c.lock()
  return c
