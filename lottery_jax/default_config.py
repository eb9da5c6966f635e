"""Experiment bases and the quickstart config: ConvNet-3 on the bundled scikit-learn digits,
minutes on a CPU.

    python -m lottery_jax.main

trains ConvNet-3 (width 32) on 1,437 real 8x8 digits, prunes it with IMP, distilled and
random pruning to 89% sparsity, runs the stability analyses and prints the test accuracies on
the 360 held-out digits (see `get_config`). Every config starts from the base of its
experiment, `lottery_base()` (width 128, 3 rounds of 20%) or `distill_base()`, built from
the blocks of lottery_jax.config_blocks, and changes a few fields. The paper's presets and
the named variants of `configs/X.py:<variant>` are configs too: configs/presets.py.
"""

import ml_collections

from lottery_jax import config_blocks
# Recipe helpers config files use.
from lottery_jax.config_blocks import distilled_recipe, dsa_config, train_config  # noqa: F401


def lottery_base() -> ml_collections.ConfigDict:
  """The lottery experiment (dense training, mask producers, stability analyses) with the
  quickstart's values, unlocked. `distill` holds the settings of a distillation made in the
  run (distilled.source 'dm' or 'idc')."""
  c = ml_collections.ConfigDict()
  c.experiment = "lottery"  # Which runner runs the config: 'lottery' or 'distill'.
  c.seeds = config_blocks.seeds()
  c.data = config_blocks.data()
  c.model = config_blocks.model()
  # Training on real data (Adam with the CIFAR base's schedule; the quickstart uses a higher lr).
  c.train = config_blocks.real_train(optimizer="adam", learning_rate=0.01, weight_decay=8e-4,
                                     schedule="step", epochs=20.0, batch_size=128)
  c.lottery = config_blocks.lottery()
  c.distilled = config_blocks.distilled()
  c.distill = config_blocks.distillation()
  c.stability = config_blocks.stability()
  return c


def distill_base() -> ml_collections.ConfigDict:
  """The distill experiment (make or take a distilled set, evaluate it against random real
  subsets) with the digits values, unlocked. distilled.source names the set that method
  'published' evaluates."""
  c = ml_collections.ConfigDict()
  c.experiment = "distill"  # Which runner runs the config: 'lottery' or 'distill'.
  c.seeds = config_blocks.seeds()
  c.data = config_blocks.data()
  c.model = config_blocks.model()
  c.distill = config_blocks.distill_config()
  c.distilled = ml_collections.ConfigDict(dict(source=""))  # A .npz for method 'published'.
  return c


def get_config() -> ml_collections.ConfigDict:
  """Quickstart: `python -m lottery_jax.main` (see docs/benchmarks.md).

  lottery_base() shrunk so that every part of the report appears within minutes on a CPU and the
  producers separate: ConvNet-3 of width 32 (19,338 params; dense test accuracy about 98%),
  distilled first with DM in the run (10 images per class, 300 iterations matching every
  block's features, DSA without flips: digits are not mirror-symmetric; as
  configs/distill_digits.py, on the run's width-32 network), 20 epochs of real training (220
  steps), 5 rounds pruning 36% of the remaining weights each (= two rounds of 20%;
  lottery.fraction) to 89% sparsity, 2 replicates; stability on replicate 0: LMC with 21
  alphas for every round, landscapes (15 x 15 grid) and Hessian tables (8 probes) at rounds 2
  and 5 (59% and 89% sparse), mask statistics.
  """
  c = lottery_base()
  c.distilled.source = "dm"
  c.distill.dm.layers = "blocks"
  c.distill.dsa.strategy = "color_crop_cutout_scale_rotate"
  c.model.options.width = 32
  c.lottery.rounds = 5
  c.lottery.fraction = 0.36
  c.stability.num_alphas = 21
  c.stability.grid_size = 15
  c.stability.detail_rounds = (2, 5)
  c.lock()
  return c
