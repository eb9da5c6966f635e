"""Dataset distillation on the bundled digits (the quick one): 10 images per class.

    python -m lottery_jax.main --config=configs/distill_digits.py [--config.distill.method=idc]

Distils the 1,437 real 8x8 training digits into 10 images per class with distribution
matching (DM, matching every conv block's features; `--config.distill.method=idc` for
gradient matching, IDC-I), on ConvNet-3, then trains 3 fresh ConvNet-3s on the set with the
distilled-training recipe (SGD, lr 0.01, momentum 0.9, 1,000 epochs, DSA) and 3 on
class-balanced random real subsets of 10 images per class, and reports their real test
accuracies (the set well above the random subsets). Writes distilled.npz,
figures/distilled.png, results.json and report.md; minutes per method on 2 CPU cores, most of
it the 6 evaluation trainings. `:smoke`: a CPU smoke run (configs/presets.py).
"""

from lottery_jax import config_files
from lottery_jax import default_config

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py


def get_config(arg=None):
  c = default_config.distill_base()
  c.experiment = "distill"
  # Digits are not mirror-symmetric: no flips in DSA. Evaluated with flips, a DM set fell
  # from 98.1% to 96.9% (3 seeds, the set distilled with flips).
  c.distill.dsa.strategy = "color_crop_cutout_scale_rotate"
  # DM's head sees a 1x1 map on 8x8 inputs (three 2x2 pools); matching every block's output
  # keeps the spatial layout: 98.9% against 97.5% for the head alone (300 iterations, lr 1,
  # 3 seeds each; random subsets 96.3%).
  c.distill.dm.layers = "blocks"
  # IDC on 8x8 digits: a factor-2 multi-formation decodes 4x4 patches, too coarse for digits
  # (73.1% test accuracy, 1 seed, 300 evaluation epochs, against 93.6% with factor 1 = IDC-I).
  # lr 0.005 (IDC's CIFAR value) gave 95.6% here, lr 0.001 with clipping 96.7% (3 seeds).
  c.distill.idc.factor = 1
  c.distill.idc.iterations = 200
  c.distill.idc.learning_rate = 0.001
  c.distill.idc.net_steps = 5
  presets.variant(c, arg, presets.DISTILL_VARIANTS)
  c.lock()
  return c
